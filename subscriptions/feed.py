"""The event_feed consumer, the PII view of feed events, and the feed's retention.

The consumer binds every topic another consumer binds, so each canonical event that reaches any part of
the hub also reaches the feed, while an unbound routing key stays an error at publish time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Connection, Engine

from canonical_model.pii import mask_document
from canonical_model.registry import MODELS, schema_uri
from pipeline.decoded import DecodedEvent
from store.database import utcnow
from store.event_feed import append_event, prune_feed
from store.webhooks import prune_delivered, webhook_subscriptions
from subscriptions.settings import SubscriptionSettings


def record_feed_event(conn: Connection, decoded: DecodedEvent) -> None:
    """Append one bus event to the feed as it came, whatever its type (the inbox makes it once; a known
    event id is skipped too)."""
    append_event(conn, decoded.event.model_dump(mode="json"), utcnow())


def feed_topics(topics: Iterable[str]) -> tuple[str, ...]:
    """The given binding patterns without those another one already covers (case.x.# under case.#)."""
    unique = sorted(set(topics))
    wide = [topic.removesuffix("#") for topic in unique if topic.endswith(".#") or topic == "#"]
    return tuple(
        topic
        for topic in unique
        if not any(topic != prefix + "#" and topic.startswith(prefix) for prefix in wide)
    )


@cache
def _models_by_schema() -> dict[str, type[BaseModel]]:
    return {schema_uri(name): model for model, name in MODELS.values()}


def public_event(event: dict[str, Any], *, can_read_pii: bool) -> dict[str, Any]:
    """The event as a caller may see it: data with its personal fields masked unless it may read them.

    Data of a schema the hub does not know cannot be masked field by field, so it is withheld.
    """
    if can_read_pii:
        return event
    model = _models_by_schema().get(str(event.get("dataschema")))
    data = event.get("data")
    if model is None or not isinstance(data, dict):
        return {**event, "data": None}
    return {**event, "data": mask_document(data, model)}


class FeedPruner:
    """Deletes events past their retention, sparing those a webhook subscription has not taken yet.

    Delivered webhook deliveries and their attempt logs follow the same retention; parked ones stay until
    they are replayed or their subscription is deleted.
    """

    def __init__(
        self, engine: Engine, settings: SubscriptionSettings, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._clock = clock

    def prune(self) -> int:
        """Prune once; return how many events were deleted."""
        cutoff = self._clock() - timedelta(days=self._settings.feed_retention_days)
        with self._engine.begin() as conn:
            pending = conn.execute(
                sa.select(sa.func.min(webhook_subscriptions.c.cursor)).where(webhook_subscriptions.c.active)
            ).scalar_one()
            prune_delivered(conn, delivered_before=cutoff)
            return prune_feed(
                conn,
                received_before=cutoff,
                keep_rows=self._settings.feed_max_rows,
                keep_after=None if pending is None else int(pending),
            )
