"""The webhook dispatcher: copies feed events into each subscription's deliveries and POSTs them, signed.

Per subscription, deliveries go out one at a time in feed order: a failed delivery waits for its next try
(growing backoff, persisted in the delivery log) and holds back the ones after it, until it succeeds or is
parked after the last try; then the queue moves on. An operator can replay a parked delivery. Receivers
get every event at least once (a lost answer means a repeat) and deduplicate on X-Yekuo-Event-Id.

Before each attempt the subscription's URL is vetted again (subscriptions/destinations.py) and the POST
goes to the address that passed, never to a fresh resolution of the name. A delivery whose destination is
refused is parked at once with the reason in its log (retrying cannot help until the allowlist or the DNS
changes; then it can be replayed); other subscriptions are served as usual.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx2
from sqlalchemy.engine import Engine

from ground.errors import DestinationRefusedError, DestinationUnresolvedError
from ground.settings import WebhookSettings
from store.database import utcnow
from store.event_feed import FeedEntry, last_feed_id, read_feed
from store.webhooks import (
    AttemptOutcome,
    Delivery,
    Subscription,
    active_subscription_ids,
    add_deliveries,
    head_delivery,
    leased_subscription,
    record_attempt,
    take_lease,
)
from subscriptions.destinations import Destination, DestinationPolicy, Resolver
from subscriptions.feed import FeedPruner, public_event
from subscriptions.settings import SubscriptionSettings
from subscriptions.signing import SIGNATURE_HEADER, signature_header

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
MAX_ERROR_CHARS = 500


def backoff(attempt: int, settings: SubscriptionSettings) -> timedelta:
    """The wait after the attempt-th failed try: doubling from the initial wait, capped."""
    seconds = settings.webhook_initial_backoff_s * 2 ** (attempt - 1)
    return timedelta(seconds=min(seconds, settings.webhook_max_backoff_s))


def delivery_body(entry: FeedEntry, subscription: Subscription) -> str:
    """The JSON a subscription receives for a feed event; personal data masked unless it may have it."""
    event = public_event(entry.event, can_read_pii=subscription.include_pii)
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def delivery_client(settings: SubscriptionSettings, *, verify: ssl.SSLContext | bool = True) -> httpx2.Client:
    """The HTTP client deliveries go out with; verify is what checks receivers' certificates.

    It keeps no connection alive: the pool knows connections by address, so a TLS connection opened for
    one host name could carry a delivery for another name on the same address, whose certificate nobody
    checked.
    """
    return httpx2.Client(
        timeout=settings.webhook_timeout_s,
        follow_redirects=False,
        verify=verify,
        limits=httpx2.Limits(max_keepalive_connections=0),
    )


class WebhookDispatcher:
    """One step serves every active subscription this process can lease; run it as a hub loop.

    webhooks holds the destination allowlist (default: none, public addresses only); resolver resolves
    host names before each attempt (default: socket.getaddrinfo).
    """

    def __init__(
        self,
        engine: Engine,
        settings: SubscriptionSettings,
        *,
        webhooks: WebhookSettings | None = None,
        resolver: Resolver = socket.getaddrinfo,
        client: httpx2.Client | None = None,
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._destinations = DestinationPolicy(webhooks or WebhookSettings(), resolver=resolver)
        self._client = client or delivery_client(settings)
        self._clock = clock
        self._owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._pruner = FeedPruner(engine, settings, clock=clock)
        self._next_prune: datetime | None = None

    def step(self) -> bool:
        """Take new events into deliveries and send what is due; whether anything was done."""
        with self._engine.connect() as conn:
            subscription_ids = active_subscription_ids(conn)
        busy = False
        for subscription_id in subscription_ids:
            busy = self._serve(subscription_id) or busy
        self._prune_when_due()
        return busy

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def _lease(self, subscription_id: str) -> Subscription | None:
        now = self._clock()
        until = now + timedelta(seconds=self._settings.webhook_lease_s)
        with self._engine.begin() as conn:
            if not take_lease(conn, subscription_id, self._owner, now, until):
                return None
            return leased_subscription(conn, subscription_id)

    def _serve(self, subscription_id: str) -> bool:
        subscription = self._lease(subscription_id)
        if subscription is None:
            return False
        took = self._take_new_events(subscription)
        sent = self._send_due(subscription)
        return took or sent

    def _take_new_events(self, subscription: Subscription) -> bool:
        limit = self._settings.webhook_batch
        with self._engine.begin() as conn:
            end = last_feed_id(conn)
            if end <= subscription.cursor:
                return False
            entries = read_feed(
                conn, after=subscription.cursor, types=subscription.event_types, limit=limit, until=end
            )
            # A full page may stop short of the end; the next step continues after its last event.
            cursor = entries[-1].id if len(entries) == limit else end
            rows = [(entry, delivery_body(entry, subscription)) for entry in entries]
            add_deliveries(conn, subscription.id, rows, cursor, self._clock())
        return bool(rows)

    def _send_due(self, subscription: Subscription) -> bool:
        sent = False
        for _ in range(self._settings.webhook_batch):
            if self._lease(subscription.id) is None:
                break  # deleted, deactivated, or taken over by another process after a long pause
            with self._engine.connect() as conn:
                delivery = head_delivery(conn, subscription.id)
            now = self._clock()
            if delivery is None or (delivery.next_attempt_at is not None and delivery.next_attempt_at > now):
                break
            outcome = self._attempt(subscription, delivery, now)
            with self._engine.begin() as conn:
                record_attempt(conn, delivery, outcome)
            sent = True
            if outcome.next_attempt_at is not None:
                break  # it waits for its next try, and everything after it waits too
        return sent

    def _attempt(self, subscription: Subscription, delivery: Delivery, now: datetime) -> AttemptOutcome:
        body = delivery.body.encode("utf-8")
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": CONTENT_TYPE,
            SIGNATURE_HEADER: signature_header(subscription.secret, timestamp, body),
            "X-Yekuo-Delivery": str(delivery.id),
            "X-Yekuo-Event-Id": delivery.event_id,
            "X-Yekuo-Event-Type": delivery.event_type,
            "User-Agent": "yekuo-hub-webhooks",
        }
        status: int | None = None
        error: str | None = None
        refused = False
        started = time.perf_counter()
        try:
            destination = self._destinations.vet(subscription.url)
        except DestinationRefusedError as exc:
            error, refused = f"destination refused: {exc}"[:MAX_ERROR_CHARS], True
        except DestinationUnresolvedError as exc:
            error = f"destination unresolved: {exc}"[:MAX_ERROR_CHARS]
        else:
            status, error = self._post(destination, body, headers)
        duration_ms = int((time.perf_counter() - started) * 1000)
        delivered = status is not None and 200 <= status < 300
        if status is not None and not delivered:
            error = f"HTTP {status}"
        attempt = delivery.attempts + 1
        next_attempt_at = None
        if not delivered and not refused and attempt < self._settings.webhook_max_attempts:
            next_attempt_at = now + backoff(attempt, self._settings)
        if not delivered:
            log.warning(
                "webhook %s: delivery %s (event %s) attempt %d failed: %s; %s",
                subscription.id,
                delivery.id,
                delivery.event_id,
                attempt,
                error,
                f"next try at {next_attempt_at.isoformat()}" if next_attempt_at else "parked",
            )
        return AttemptOutcome(now, status, error, duration_ms, delivered, next_attempt_at)

    def _post(
        self, destination: Destination, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None]:
        """POST to the first vetted address taking a connection: (HTTP status, None) or (None, why not)."""
        error: str | None = None
        for address in destination.addresses:
            try:
                # Streamed and closed unread: a receiver's answer body is never needed, whatever its size.
                # Redirects are not followed, whatever the client says: their Location was never vetted.
                with self._client.stream(
                    "POST",
                    destination.pinned_url(address),
                    content=body,
                    headers={**headers, "Host": destination.host_header},
                    extensions=destination.extensions,
                    follow_redirects=False,
                ) as response:
                    return response.status_code, None
            except httpx2.ConnectError as exc:
                # Nothing was sent: the host's next address may take it.
                error = f"{type(exc).__name__}: {exc} ({address})"[:MAX_ERROR_CHARS]
            except httpx2.HTTPError as exc:
                return None, f"{type(exc).__name__}: {exc} ({address})"[:MAX_ERROR_CHARS]
        return None, error

    def _prune_when_due(self) -> None:
        now = self._clock()
        if self._next_prune is not None and now < self._next_prune:
            return
        deleted = self._pruner.prune()
        if deleted:
            log.info("event feed: pruned %d events past their retention", deleted)
        self._next_prune = now + timedelta(seconds=self._settings.prune_interval_s)
