"""Webhook subscriptions, their deliveries (one per subscription and event) and the log of every attempt.

A subscription's cursor is the last feed id it has taken: the dispatcher copies newer matching feed events
into webhook_deliveries (body as it will be sent) and moves the cursor in one transaction, so the feed can
be pruned behind it without losing a delivery. A lease (owner, until) lets one hub process at a time work
on a subscription, which keeps its deliveries in order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.encrypted import SealedText
from store.event_feed import FEED_ID, FeedEntry, last_feed_id
from store.schema import KEY, UtcDateTime, metadata

PENDING = "pending"
DELIVERED = "delivered"
PARKED = "parked"

webhook_subscriptions = sa.Table(
    "webhook_subscriptions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column(
        "event_types", sa.JSON, nullable=False, comment="type filters: exact or dotted prefix; [] = all"
    ),
    sa.Column("secret", SealedText("webhook_subscriptions.secret"), nullable=False, comment="HMAC key"),
    sa.Column("include_pii", sa.Boolean, nullable=False, comment="send personal data unmasked"),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("cursor", FEED_ID, nullable=False, comment="last feed id copied into deliveries"),
    sa.Column("lease_owner", KEY, nullable=True),
    sa.Column("lease_until", UtcDateTime(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("subscription_id", sa.String(36), nullable=False),
    sa.Column("feed_id", FEED_ID, nullable=False),
    sa.Column("event_id", KEY, nullable=False),
    sa.Column("event_type", KEY, nullable=False),
    # Sealed whole: the body is the CloudEvent, possibly with personal data.
    sa.Column("body", SealedText("webhook_deliveries.body"), nullable=False, comment="exactly what is sent"),
    sa.Column("status", sa.String(16), nullable=False, comment="pending | delivered | parked"),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column(
        "next_attempt_at",
        UtcDateTime(),
        nullable=True,
        comment="when a pending delivery is due; None: at once",
    ),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("delivered_at", UtcDateTime(), nullable=True),
    sa.UniqueConstraint("subscription_id", "event_id", name="uq_webhook_deliveries_event"),
    sa.Index("ix_webhook_deliveries_queue", "subscription_id", "status", "id"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.BigInteger, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("attempted_at", UtcDateTime(), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True, comment="None: no HTTP answer"),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=True, comment="None: delivered or parked"),
    sa.Index("ix_webhook_attempts_delivery", "delivery_id", "id"),
)

_PUBLIC_COLUMNS = (
    webhook_subscriptions.c.id,
    webhook_subscriptions.c.url,
    webhook_subscriptions.c.event_types,
    webhook_subscriptions.c.include_pii,
    webhook_subscriptions.c.active,
    webhook_subscriptions.c.description,
    webhook_subscriptions.c.cursor,
    webhook_subscriptions.c.created_at,
)


@dataclass(frozen=True)
class Subscription:
    """What the dispatcher needs of a subscription."""

    id: str
    url: str
    event_types: list[str]
    secret: str
    include_pii: bool
    cursor: int


@dataclass(frozen=True)
class Delivery:
    """The delivery at the head of a subscription's queue."""

    id: int
    event_id: str
    event_type: str
    body: str
    attempts: int
    next_attempt_at: datetime | None


def create_subscription(
    conn: Connection,
    *,
    url: str,
    event_types: list[str],
    secret: str,
    include_pii: bool,
    description: str | None,
    now: datetime,
) -> dict[str, Any]:
    """A new active subscription that takes events newer than the feed's current end."""
    subscription_id = str(uuid.uuid4())
    conn.execute(
        webhook_subscriptions.insert().values(
            id=subscription_id,
            url=url,
            event_types=event_types,
            secret=secret,
            include_pii=include_pii,
            active=True,
            description=description,
            cursor=last_feed_id(conn),
            created_at=now,
        )
    )
    created = get_subscription(conn, subscription_id)
    assert created is not None
    return created


def list_subscriptions(conn: Connection) -> list[dict[str, Any]]:
    """Every subscription, oldest first, without secrets."""
    rows = conn.execute(
        sa.select(*_PUBLIC_COLUMNS).order_by(webhook_subscriptions.c.created_at, webhook_subscriptions.c.id)
    ).all()
    return [dict(row._mapping) for row in rows]


def get_subscription(conn: Connection, subscription_id: str) -> dict[str, Any] | None:
    """One subscription without its secret, with its deliveries counted by status; None if unknown."""
    row = conn.execute(
        sa.select(*_PUBLIC_COLUMNS).where(webhook_subscriptions.c.id == subscription_id)
    ).first()
    if row is None:
        return None
    counts = conn.execute(
        sa.select(webhook_deliveries.c.status, sa.func.count())
        .where(webhook_deliveries.c.subscription_id == subscription_id)
        .group_by(webhook_deliveries.c.status)
    ).all()
    deliveries = {PENDING: 0, DELIVERED: 0, PARKED: 0} | {status: int(count) for status, count in counts}
    return {**row._mapping, "deliveries": deliveries}


def delete_subscription(conn: Connection, subscription_id: str) -> bool:
    """Remove a subscription with its deliveries and their attempts; False if it was not there."""
    delivery_ids = sa.select(webhook_deliveries.c.id).where(
        webhook_deliveries.c.subscription_id == subscription_id
    )
    conn.execute(webhook_attempts.delete().where(webhook_attempts.c.delivery_id.in_(delivery_ids)))
    conn.execute(webhook_deliveries.delete().where(webhook_deliveries.c.subscription_id == subscription_id))
    deleted = conn.execute(
        webhook_subscriptions.delete().where(webhook_subscriptions.c.id == subscription_id)
    )
    return bool(deleted.rowcount)


def active_subscription_ids(conn: Connection) -> list[str]:
    """Ids of the subscriptions the dispatcher serves."""
    query = sa.select(webhook_subscriptions.c.id).where(webhook_subscriptions.c.active)
    return list(conn.execute(query.order_by(webhook_subscriptions.c.id)).scalars())


def take_lease(conn: Connection, subscription_id: str, owner: str, now: datetime, until: datetime) -> bool:
    """Own (or keep owning) a subscription until the given time; False if another owner's lease runs."""
    table = webhook_subscriptions
    taken = conn.execute(
        table.update()
        .where(
            table.c.id == subscription_id,
            table.c.active,
            sa.or_(table.c.lease_owner.is_(None), table.c.lease_owner == owner, table.c.lease_until < now),
        )
        .values(lease_owner=owner, lease_until=until)
    )
    return bool(taken.rowcount)


def leased_subscription(conn: Connection, subscription_id: str) -> Subscription:
    """The subscription a lease was just taken on."""
    row = conn.execute(
        sa.select(webhook_subscriptions).where(webhook_subscriptions.c.id == subscription_id)
    ).one()
    return Subscription(row.id, row.url, list(row.event_types), row.secret, row.include_pii, row.cursor)


def add_deliveries(
    conn: Connection, subscription_id: str, rows: list[tuple[FeedEntry, str]], cursor: int, now: datetime
) -> None:
    """Queue the bodies of the given feed events for a subscription and move its cursor to `cursor`."""
    if rows:
        conn.execute(
            webhook_deliveries.insert(),
            [
                {
                    "subscription_id": subscription_id,
                    "feed_id": entry.id,
                    "event_id": entry.event["id"],
                    "event_type": entry.event_type,
                    "body": body,
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": None,
                    "created_at": now,
                }
                for entry, body in rows
            ],
        )
    conn.execute(
        webhook_subscriptions.update()
        .where(webhook_subscriptions.c.id == subscription_id)
        .values(cursor=cursor)
    )


def head_delivery(conn: Connection, subscription_id: str) -> Delivery | None:
    """The oldest pending delivery of a subscription: nothing later is sent before it."""
    row = conn.execute(
        sa.select(webhook_deliveries)
        .where(
            webhook_deliveries.c.subscription_id == subscription_id, webhook_deliveries.c.status == PENDING
        )
        .order_by(webhook_deliveries.c.id)
        .limit(1)
    ).first()
    if row is None:
        return None
    return Delivery(row.id, row.event_id, row.event_type, row.body, row.attempts, row.next_attempt_at)


@dataclass(frozen=True)
class AttemptOutcome:
    """What one attempt came to; next_attempt_at None with delivered False parks the delivery."""

    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    delivered: bool
    next_attempt_at: datetime | None


def record_attempt(conn: Connection, delivery: Delivery, outcome: AttemptOutcome) -> None:
    """Log an attempt and move the delivery to delivered, parked or its next try."""
    attempt = delivery.attempts + 1
    conn.execute(
        webhook_attempts.insert().values(
            delivery_id=delivery.id,
            attempt=attempt,
            attempted_at=outcome.attempted_at,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
            next_attempt_at=outcome.next_attempt_at,
        )
    )
    waiting = PENDING if outcome.next_attempt_at is not None else PARKED
    status = DELIVERED if outcome.delivered else waiting
    conn.execute(
        webhook_deliveries.update()
        .where(webhook_deliveries.c.id == delivery.id)
        .values(
            status=status,
            attempts=attempt,
            next_attempt_at=outcome.next_attempt_at,
            last_status_code=outcome.status_code,
            last_error=outcome.error,
            delivered_at=outcome.attempted_at if outcome.delivered else None,
        )
    )


_DELIVERY_COLUMNS = (
    webhook_deliveries.c.id,
    webhook_deliveries.c.feed_id,
    webhook_deliveries.c.event_id,
    webhook_deliveries.c.event_type,
    webhook_deliveries.c.status,
    webhook_deliveries.c.attempts,
    webhook_deliveries.c.next_attempt_at,
    webhook_deliveries.c.last_status_code,
    webhook_deliveries.c.last_error,
    webhook_deliveries.c.created_at,
    webhook_deliveries.c.delivered_at,
)


def list_deliveries(
    conn: Connection, subscription_id: str, *, status: str | None, after: int, limit: int
) -> list[dict[str, Any]]:
    """A subscription's deliveries with id > after, oldest first, optionally of one status."""
    query = sa.select(*_DELIVERY_COLUMNS).where(
        webhook_deliveries.c.subscription_id == subscription_id, webhook_deliveries.c.id > after
    )
    if status is not None:
        query = query.where(webhook_deliveries.c.status == status)
    rows = conn.execute(query.order_by(webhook_deliveries.c.id).limit(limit)).all()
    return [dict(row._mapping) for row in rows]


def get_delivery(conn: Connection, subscription_id: str, delivery_id: int) -> dict[str, Any] | None:
    """One delivery with every attempt, oldest first; None if the subscription has no such delivery."""
    row = conn.execute(
        sa.select(*_DELIVERY_COLUMNS).where(
            webhook_deliveries.c.subscription_id == subscription_id, webhook_deliveries.c.id == delivery_id
        )
    ).first()
    if row is None:
        return None
    attempts = conn.execute(
        sa.select(
            webhook_attempts.c.attempt,
            webhook_attempts.c.attempted_at,
            webhook_attempts.c.status_code,
            webhook_attempts.c.error,
            webhook_attempts.c.duration_ms,
            webhook_attempts.c.next_attempt_at,
        )
        .where(webhook_attempts.c.delivery_id == delivery_id)
        .order_by(webhook_attempts.c.id)
    ).all()
    return {**row._mapping, "attempt_log": [dict(attempt._mapping) for attempt in attempts]}


def replay_delivery(conn: Connection, subscription_id: str, delivery_id: int) -> bool:
    """Send a parked or delivered delivery again from its first try; False if it is pending already."""
    replayed = conn.execute(
        webhook_deliveries.update()
        .where(
            webhook_deliveries.c.subscription_id == subscription_id,
            webhook_deliveries.c.id == delivery_id,
            webhook_deliveries.c.status != PENDING,
        )
        .values(status=PENDING, attempts=0, next_attempt_at=None, delivered_at=None)
    )
    return bool(replayed.rowcount)


def prune_delivered(conn: Connection, *, delivered_before: datetime) -> int:
    """Delete deliveries delivered before the given time, with their attempts; parked ones stay."""
    old = sa.select(webhook_deliveries.c.id).where(
        webhook_deliveries.c.status == DELIVERED, webhook_deliveries.c.delivered_at < delivered_before
    )
    conn.execute(webhook_attempts.delete().where(webhook_attempts.c.delivery_id.in_(old)))
    removed = conn.execute(
        webhook_deliveries.delete().where(
            webhook_deliveries.c.status == DELIVERED, webhook_deliveries.c.delivered_at < delivered_before
        )
    )
    return int(removed.rowcount)
