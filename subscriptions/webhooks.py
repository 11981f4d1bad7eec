"""The webhook dispatcher: copies feed events into each subscription's deliveries and POSTs them, signed.

Per subscription, deliveries go out one at a time in feed order: a failed delivery waits for its next try
(growing backoff, persisted in the delivery log) and holds back the ones after it, until it succeeds or is
parked after the last try; then the queue moves on. An operator can replay a parked delivery. Receivers
get every event at least once (a lost answer means a repeat) and deduplicate on X-Yekuo-Event-Id.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx2
from sqlalchemy.engine import Engine

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


class WebhookDispatcher:
    """One step serves every active subscription this process can lease; run it as a hub loop."""

    def __init__(
        self,
        engine: Engine,
        settings: SubscriptionSettings,
        *,
        client: httpx2.Client | None = None,
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._client = client or httpx2.Client(timeout=settings.webhook_timeout_s, follow_redirects=False)
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
            if not outcome.delivered:
                break
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
        started = time.perf_counter()
        try:
            # Streamed and closed unread: a receiver's answer body is never needed, whatever its size.
            with self._client.stream("POST", subscription.url, content=body, headers=headers) as response:
                status = response.status_code
        except httpx2.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        duration_ms = int((time.perf_counter() - started) * 1000)
        delivered = status is not None and 200 <= status < 300
        if status is not None and not delivered:
            error = f"HTTP {status}"
        attempt = delivery.attempts + 1
        next_attempt_at = None
        if not delivered and attempt < self._settings.webhook_max_attempts:
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

    def _prune_when_due(self) -> None:
        now = self._clock()
        if self._next_prune is not None and now < self._next_prune:
            return
        deleted = self._pruner.prune()
        if deleted:
            log.info("event feed: pruned %d events past their retention", deleted)
        self._next_prune = now + timedelta(seconds=self._settings.prune_interval_s)
