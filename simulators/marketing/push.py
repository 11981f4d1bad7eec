"""The marketing system's side of push: it sends an "application changed" notification for every change.

The notification follows the hub's push WSDL (GET /soap/marketing?wsdl on the hub): ApplicationChanged
carries the whole application record and its customer, so the hub needs no call back. A Pusher sends from
a background thread in change order and retries a notification the hub did not acknowledge (connection
refused, soap:Server fault) with exponential backoff, as a marketing system's message queue would.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from types import TracebackType

import httpx2
import tenacity
from lxml import etree

from ground.errors import MalformedInputError, SourceRejectedError, SourceUnavailableError
from ground.soap import (
    SOAP_CONTENT_TYPE,
    SOAP_ENV_NS,
    FaultCode,
    build_envelope,
    fault_code,
    parse_envelope,
)
from simulators.marketing.service import append_record
from simulators.marketing.world import APPLICATION_FIELDS, CUSTOMER_FIELDS, ApplicationRow, MarketingWorld

PUSH_NAMESPACE = "urn:yekuo:hub:marketing-push:v1"
PUSH_ACTION = f"{PUSH_NAMESPACE}#ApplicationChanged"
API_KEY_HEADER = "X-API-Key"  # the hub's header for legacy systems' keys

log = logging.getLogger(__name__)


def notification(row: ApplicationRow, world: MarketingWorld, notification_id: str | None = None) -> bytes:
    """The SOAP request telling the hub that this application changed, with its customer if known."""
    request = etree.Element(f"{{{PUSH_NAMESPACE}}}ApplicationChanged", nsmap={"push": PUSH_NAMESPACE})
    etree.SubElement(request, f"{{{PUSH_NAMESPACE}}}notificationId").text = (
        notification_id or uuid.uuid4().hex
    )
    append_record(request, "application", row, APPLICATION_FIELDS, PUSH_NAMESPACE)
    customer = world.customer(row["CONS_NO"])
    if customer is not None:
        append_record(request, "customer", customer, CUSTOMER_FIELDS, PUSH_NAMESPACE)
    return build_envelope(request)


def send(client: httpx2.Client, url: str, body: bytes, api_key: str | None = None) -> bool:
    """Post one notification, with the hub's API key if given; return whether the hub called it a duplicate.

    Raises SourceUnavailableError when the hub did not take it (worth sending again) and
    SourceRejectedError when the hub refused it (soap:Client fault).
    """
    headers = {"Content-Type": SOAP_CONTENT_TYPE, "SOAPAction": f'"{PUSH_ACTION}"'}
    if api_key is not None:
        headers[API_KEY_HEADER] = api_key
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx2.HTTPError as exc:
        raise SourceUnavailableError(f"push to {url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code in (401, 403):
        # The hub refused the caller, not the record: sending it again will not help.
        raise SourceRejectedError(f"push to {url}: HTTP {response.status_code}: {response.text[:200]}")
    try:
        answer = parse_envelope(response.content)
    except MalformedInputError as exc:
        raise SourceUnavailableError(f"push to {url}: HTTP {response.status_code}: {exc}") from exc
    if answer.tag == f"{{{SOAP_ENV_NS}}}Fault":
        message = f"push to {url}: {answer.findtext('faultcode')}: {answer.findtext('faultstring')}"
        if fault_code(answer.findtext("faultcode")) is FaultCode.CLIENT:
            raise SourceRejectedError(message)
        raise SourceUnavailableError(message)
    return bool(answer.findtext(f"{{{PUSH_NAMESPACE}}}duplicate") == "true")


class Pusher:
    """Sends a notification for every change of the world to url, in order, from a daemon thread.

    attempts bounds the tries per notification; one the hub refuses or never takes is logged and counted
    in failed, and the next one goes out. api_key is the key the hub issued to the marketing system.
    """

    def __init__(
        self,
        url: str,
        world: MarketingWorld,
        *,
        timeout_s: float = 5.0,
        attempts: int = 8,
        max_backoff_s: float = 10.0,
        api_key: str | None = None,
    ) -> None:
        self.url = url
        self.api_key = api_key
        self.world = world
        self.sent = 0
        self.failed = 0
        self._queue: queue.Queue[ApplicationRow | None] = queue.Queue()
        self._client = httpx2.Client(timeout=timeout_s)
        self._retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(SourceUnavailableError),
            wait=tenacity.wait_exponential_jitter(multiplier=0.2, max=max_backoff_s, jitter=0.2),
            stop=tenacity.stop_after_attempt(attempts),
            reraise=True,
        )
        self._thread = threading.Thread(target=self._run, name="marketing pusher", daemon=True)

    def start(self) -> Pusher:
        """Subscribe to the world's changes and start sending."""
        self.world.subscribe(self.notify)
        self._thread.start()
        return self

    def notify(self, row: ApplicationRow) -> None:
        """Queue a notification for a changed application."""
        self._queue.put(row)

    def drain(self) -> None:
        """Wait until every queued notification was sent or given up."""
        self._queue.join()

    def stop(self) -> None:
        """Send what is queued, then stop."""
        self._queue.put(None)
        self._thread.join()
        self._client.close()

    def __enter__(self) -> Pusher:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        while True:
            row = self._queue.get()
            try:
                if row is None:
                    return
                body = notification(row, self.world)
                try:
                    self._retrying(send, self._client, self.url, body, self.api_key)
                except (SourceRejectedError, SourceUnavailableError) as exc:
                    self.failed += 1
                    log.error("notification of %s was not taken: %s", row["APP_NO"], exc)
                else:
                    self.sent += 1
            finally:
                self._queue.task_done()
