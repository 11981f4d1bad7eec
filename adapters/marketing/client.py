"""Client of the marketing system's SOAP service: zeep underneath, legacy dicts and yekuo errors on top.

Records come back as plain dicts with the legacy SG186 field names: str for codes and text, float for
decimals, None for absent fields and lists of dicts for repeating groups (DOCUMENTS, CONTACTS).
Errors: a soap:Client fault or an HTTP 4xx is a SourceRejectedError; a soap:Server fault, HTTP 5xx, a
refused or reset connection or a timeout is a SourceUnavailableError; a response that is not well-formed
XML, is no SOAP envelope, declares a DTD, nests too deep, is too large, or holds unexpected elements or
values that do not convert is a MalformedInputError; an unusable WSDL URL or document is a ConfigError.

Every call passes a circuit breaker and is retried, with exponential backoff and jitter and a bounded
number of attempts, when it failed for a transient reason (SourceUnavailableError); a business refusal or
an unreadable answer is not retried here. Writes carry a request id, so a retried write takes effect once.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
import tenacity
import zeep
import zeep.exceptions
import zeep.helpers
from lxml import etree

from adapters.marketing.breaker import CircuitBreaker, CircuitOpenError
from adapters.marketing.legacy import zeep_arguments
from adapters.marketing.transport import DEFAULT_MAX_RESPONSE_BYTES, BoundedTransport, wsdl_cache
from ground.errors import (
    ConfigError,
    MalformedInputError,
    SourceRejectedError,
    SourceUnavailableError,
    YekuoError,
)
from ground.soap import SOAP_ENV_NS, FaultCode, fault_code, parse_envelope, parse_xml

# The service refuses more customers per GetCustomers call (maxOccurs in its WSDL).
MAX_CUSTOMERS_PER_CALL = 100
LEGACY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_LEGACY_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_GROUPS = {"DOCUMENTS": "DOCUMENT", "CONTACTS": "CONTACT"}
_MESSAGE_LIMIT = 300
# An answer nests Envelope/Body/Response/record/group/item/field: 7 levels; leave room, refuse bombs.
MAX_ANSWER_DEPTH = 24
_MALFORMED_RESPONSE = (
    zeep.exceptions.XMLSyntaxError,
    zeep.exceptions.XMLParseError,
    zeep.exceptions.UnexpectedElementError,
    zeep.exceptions.DTDForbidden,
    zeep.exceptions.EntitiesForbidden,
    zeep.exceptions.ExternalReferenceForbidden,
    etree.LxmlError,
)
_BAD_URL = (
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidURL,
)


def _is_legacy_time(text: str) -> bool:
    if not _LEGACY_TIME.fullmatch(text):
        return False
    try:
        datetime.strptime(text, LEGACY_TIME_FORMAT)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Watermark:
    """How far the marketing system has been read: the last (UPDATE_TIME, APP_NO) seen, in that order.

    Several applications can share one UPDATE_TIME, so the key breaks ties; the next read starts strictly
    after this pair. changed_at is legacy local time "YYYY-MM-DD HH:MM:SS".
    """

    changed_at: str
    key: str

    def __post_init__(self) -> None:
        if not isinstance(self.changed_at, str) or not _is_legacy_time(self.changed_at):
            raise MalformedInputError(
                f"watermark changed_at must be 'YYYY-MM-DD HH:MM:SS', got {self.changed_at!r}"
            )
        if not isinstance(self.key, str) or not self.key:
            raise MalformedInputError(f"watermark key must be a non-empty string, got {self.key!r}")

    def to_dict(self) -> dict[str, str]:
        """The JSON form the hub stores."""
        return {"changed_at": self.changed_at, "key": self.key}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Watermark:
        """Read the stored JSON form back; MalformedInputError names a missing or bad field."""
        missing = [name for name in ("changed_at", "key") if name not in data]
        if missing:
            raise MalformedInputError(f"watermark lacks {', '.join(missing)}: {dict(data)!r}")
        return cls(changed_at=data["changed_at"], key=data["key"])


@dataclass(frozen=True)
class ApplicationPage:
    """One page of changed applications, in (UPDATE_TIME, APP_NO) order."""

    applications: list[dict[str, Any]]
    has_more: bool


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _record(value: Any) -> dict[str, Any]:
    """A zeep record as a plain dict; each repeating group's wrapper becomes the list of its items."""
    record: dict[str, Any] = _plain(zeep.helpers.serialize_object(value, dict))  # type: ignore[no-untyped-call]
    for group, item in _GROUPS.items():
        if group in record:
            wrapper = record[group]
            record[group] = list(wrapper.get(item) or []) if isinstance(wrapper, dict) else []
    return record


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 3] + "..."


def _http_error(what: str, status: int, text: str) -> YekuoError:
    message = f"{what}: HTTP {status}: {_short(text)}"
    if status >= 500 or status in (408, 429):
        return SourceUnavailableError(message)
    if status >= 400:
        return SourceRejectedError(message)
    return MalformedInputError(f"{what}: response is not well-formed XML: {_short(text)}")


def _translate(exc: Exception, what: str) -> YekuoError:
    """The yekuo error for a zeep, requests or lxml exception raised while doing `what`."""
    if isinstance(exc, zeep.exceptions.Fault):
        message = f"{what}: SOAP fault {exc.code}: {exc.message}"
        if fault_code(exc.code) is FaultCode.CLIENT:
            return SourceRejectedError(message)
        return SourceUnavailableError(message)
    if isinstance(exc, zeep.exceptions.TransportError):
        # zeep reports a body that is not XML as a TransportError carrying the HTTP status.
        return _http_error(what, exc.status_code, exc.message)
    if isinstance(exc, _MALFORMED_RESPONSE):
        return MalformedInputError(f"{what}: malformed response: {_short(str(exc))}")
    if isinstance(exc, ValueError | ArithmeticError):
        # zeep converts element text with int(), Decimal() and the like while it reads the response.
        return MalformedInputError(f"{what}: response value of the wrong type: {type(exc).__name__}: {exc}")
    if isinstance(exc, zeep.exceptions.ValidationError):
        return SourceRejectedError(f"{what}: request does not fit the WSDL: {_short(str(exc))}")
    if isinstance(exc, zeep.exceptions.Error):
        return ConfigError(f"{what}: the WSDL cannot be used: {_short(str(exc))}")
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return _http_error(what, exc.response.status_code, str(exc))
    if isinstance(exc, _BAD_URL):
        return ConfigError(f"{what}: bad URL: {_short(str(exc))}")
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
        return ConfigError(f"{what}: {_short(str(exc))}")
    # Whatever else the network stack raised (reset, refused, timed out) is worth another try.
    return SourceUnavailableError(f"{what}: {type(exc).__name__}: {_short(str(exc))}")


def _is_soap_fault(content: bytes) -> bool:
    try:
        return bool(parse_envelope(content).tag == f"{{{SOAP_ENV_NS}}}Fault")
    except MalformedInputError:
        return False


class _HttpStatusCheck:
    """Wraps a zeep transport: checks every answer before zeep reads it.

    An HTTP error answered with anything but a SOAP Fault is judged by its status: zeep itself would read an
    error page by its body, so an HTML page that parses as XML would become an "unknown fault" and one with
    a DOCTYPE a forbidden DTD, and the status would be lost. A successful answer must pass the hardened
    parser (no DTD, no entities, at most max_bytes and MAX_ANSWER_DEPTH levels) before zeep parses it.
    """

    def __init__(self, transport: Any, max_bytes: int) -> None:
        self._transport = transport
        self._max_bytes = max_bytes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def post_xml(self, address: str, envelope: Any, headers: Mapping[str, str]) -> Any:
        response = self._transport.post_xml(address, envelope, headers)
        status = int(response.status_code)
        content = bytes(response.content)
        if status >= 400 and not _is_soap_fault(content):
            raise _http_error(f"call to {address}", status, response.text)
        if status < 300 and content:
            parse_xml(content, max_bytes=self._max_bytes, max_depth=MAX_ANSWER_DEPTH)
        return response


def _service_proxy(wsdl_url: str, transport: _HttpStatusCheck, endpoint_url: str | None) -> Any:
    settings = zeep.Settings(
        strict=True, xml_huge_tree=False, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    client = zeep.Client(wsdl_url, transport=transport, settings=settings)  # type: ignore[no-untyped-call]
    if endpoint_url is None:
        return client.service
    ports = [port for service in client.wsdl.services.values() for port in service.ports.values()]
    if not ports:
        raise ConfigError(f"marketing WSDL {wsdl_url} defines no service port")
    return client.create_service(ports[0].binding.name, endpoint_url)  # type: ignore[no-untyped-call]


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except (zeep.exceptions.Error, etree.LxmlError, OSError, ValueError, ArithmeticError) as exc:
        raise _translate(exc, what) from exc


@dataclass(frozen=True)
class CallPolicy:
    """How a call is retried: at most `attempts` tries, waits growing from initial_backoff_s to
    max_backoff_s (doubling) plus up to jitter_s of random jitter."""

    attempts: int = 3
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 5.0
    jitter_s: float = 0.5

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"marketing call attempts must be at least 1, got {self.attempts}")
        if min(self.initial_backoff_s, self.max_backoff_s, self.jitter_s) < 0:
            raise ConfigError("marketing call backoff and jitter must not be negative")


@dataclass(frozen=True)
class CreatedApplication:
    """What CreateApplication answered: the application number, its customer and whether it is new."""

    app_no: str
    cons_no: str
    created: bool


def _retryable(error: BaseException) -> bool:
    # An open circuit is the breaker's answer: retrying at once would defeat it.
    return isinstance(error, SourceUnavailableError) and not isinstance(error, CircuitOpenError)


class MarketingClient:
    """Calls the marketing system's SOAP operations.

    wsdl_url: where the WSDL is (http(s) URL or file path); it is loaded on the first call, so the hub can
    start while the marketing system is down.
    transport: the zeep transport; by default a BoundedTransport with timeout_s for loading and for every
    call, answers up to max_response_bytes and the WSDL cached in wsdl_cache_path (SQLite; None: memory).
    endpoint_url: send calls here instead of the WSDL's soap:address (useful behind NAT or a proxy).
    policy: the retries of transient failures; breaker: the circuit breaker the calls pass (default: 5
    failures in a row open it for 30 s); sleep: how to wait between tries (tests pass a fake).
    """

    def __init__(
        self,
        wsdl_url: str,
        *,
        transport: zeep.Transport | None = None,
        timeout_s: float = 10.0,
        endpoint_url: str | None = None,
        policy: CallPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        wsdl_cache_path: Path | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not wsdl_url:
            raise ConfigError("marketing WSDL URL is empty")
        if timeout_s <= 0:
            raise ConfigError(f"marketing timeout must be positive, got {timeout_s}")
        self.wsdl_url = wsdl_url
        self.endpoint_url = endpoint_url
        self.policy = policy or CallPolicy()
        self.breaker = breaker or CircuitBreaker("marketing")
        self._transport = transport
        self._timeout_s = timeout_s
        self._wsdl_cache_path = wsdl_cache_path
        self._max_response_bytes = max_response_bytes
        self._sleep = sleep
        self._service: Any = None
        self._owned_transport: zeep.Transport | None = None
        self._lock = threading.Lock()

    def _proxy(self) -> Any:
        with self._lock:
            if self._service is None:
                with _translated(f"loading the marketing WSDL {self.wsdl_url}"):
                    transport = self._transport
                    if transport is None:
                        transport = self._owned_transport = BoundedTransport(
                            timeout_s=self._timeout_s,
                            max_response_bytes=self._max_response_bytes,
                            cache=wsdl_cache(self._wsdl_cache_path),
                        )
                    checked = _HttpStatusCheck(transport, self._max_response_bytes)
                    self._service = _service_proxy(self.wsdl_url, checked, self.endpoint_url)
            return self._service

    def close(self) -> None:
        """Close the connections of a transport this client made itself; a passed-in one is the caller's."""
        with self._lock:
            if self._owned_transport is not None:
                self._owned_transport.session.close()
            self._owned_transport = None
            self._service = None

    def _attempt(self, operation: str, arguments: Mapping[str, Any]) -> Any:
        self.breaker.before_call()
        what = f"marketing {operation}"
        try:
            proxy = self._proxy()
            with _translated(what):
                result = getattr(proxy, operation)(**arguments)
        except SourceRejectedError:
            self.breaker.succeeded()
            raise
        except (SourceUnavailableError, MalformedInputError) as exc:
            self.breaker.failed(exc)
            if str(exc).startswith(what):
                raise
            # Raised by the transport, which does not know the operation.
            raise type(exc)(f"{what}: {exc}") from exc
        self.breaker.succeeded()
        return result

    def _call(self, operation: str, **arguments: Any) -> Any:
        policy = self.policy
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_retryable),
            wait=tenacity.wait_exponential_jitter(
                multiplier=policy.initial_backoff_s, max=policy.max_backoff_s, jitter=policy.jitter_s
            ),
            stop=tenacity.stop_after_attempt(policy.attempts),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(self._attempt, operation, arguments)

    def list_changed_applications(self, since: Watermark | None, page_size: int) -> ApplicationPage:
        """Applications changed strictly after since (all of them when None), at most page_size."""
        arguments: dict[str, Any] = {"pageSize": page_size}
        if since is not None:
            arguments.update(sinceTime=since.changed_at, sinceKey=since.key)
        response = self._call("ListChangedApplications", **arguments)
        return ApplicationPage(
            applications=[_record(item) for item in response.application or []],
            has_more=bool(response.hasMore),
        )

    def get_application(self, app_no: str) -> dict[str, Any]:
        """One application; SourceRejectedError when the marketing system does not know it."""
        return _record(self._call("GetApplication", appNo=app_no))

    def get_customer(self, cons_no: str) -> dict[str, Any]:
        """One customer; SourceRejectedError when the marketing system does not know it."""
        return _record(self._call("GetCustomer", consNo=cons_no))

    def get_customers(self, cons_nos: Sequence[str]) -> list[dict[str, Any]]:
        """The known customers among cons_nos, each once, in the order asked; unknown ones are left out.

        Asks for MAX_CUSTOMERS_PER_CALL customers per call.
        """
        unique = list(dict.fromkeys(cons_nos))
        customers: list[dict[str, Any]] = []
        for start in range(0, len(unique), MAX_CUSTOMERS_PER_CALL):
            batch = unique[start : start + MAX_CUSTOMERS_PER_CALL]
            customers.extend(_record(item) for item in self._call("GetCustomers", consNo=batch) or [])
        return customers

    def write(self, operation: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Call a write operation with plain arguments (groups as lists); its answer as a plain dict.

        The arguments must carry a requestId, which makes a repeated call take effect once.
        """
        if not arguments.get("requestId"):
            raise ConfigError(f"marketing {operation}: a write needs a requestId")
        answer = self._call(operation, **zeep_arguments(arguments))
        plain: dict[str, Any] = _plain(zeep.helpers.serialize_object(answer, dict))  # type: ignore[no-untyped-call]
        return plain

    def create_application(
        self,
        request_id: str,
        application: Mapping[str, Any],
        customer: Mapping[str, Any] | None = None,
    ) -> CreatedApplication:
        """Register an application submitted online (a new customer with it, when given)."""
        arguments: dict[str, Any] = {"requestId": request_id, "application": application}
        if customer is not None:
            arguments["customer"] = customer
        answer = self.write("CreateApplication", arguments)
        return CreatedApplication(str(answer["appNo"]), str(answer["consNo"]), bool(answer["created"]))

    def update_application_stage(
        self,
        request_id: str,
        app_no: str,
        status_code: str,
        changed_at: str,
        *,
        remark: str | None = None,
        operator: str | None = None,
    ) -> bool:
        """Report that an application entered a step; whether the marketing system moved it."""
        answer = self.write(
            "UpdateApplicationStage",
            {
                "requestId": request_id,
                "appNo": app_no,
                "statusCode": status_code,
                "changedAt": changed_at,
                "remark": remark,
                "operator": operator,
            },
        )
        return bool(answer["applied"])

    def record_feasibility_result(
        self,
        request_id: str,
        app_no: str,
        verdict_code: str,
        assessed_at: str,
        *,
        supply_volt_code: str | None = None,
        remark: str | None = None,
    ) -> bool:
        """Record a feasibility result; False when this request id was recorded already."""
        answer = self.write(
            "RecordFeasibilityResult",
            {
                "requestId": request_id,
                "appNo": app_no,
                "verdict": verdict_code,
                "supplyVoltCode": supply_volt_code,
                "assessedAt": assessed_at,
                "remark": remark,
            },
        )
        return bool(answer["applied"])
