"""Webhook subscriptions, their deliveries (one per subscription and event) and the log of every attempt.

A subscription's cursor is the last feed id it has taken: the dispatcher copies newer matching feed events
into webhook_deliveries (body as it will be sent) and moves the cursor in one transaction, so the feed can
be pruned behind it without losing a delivery. A lease (lease_owner, lease_until) lets one hub process at
a time work on a subscription, which keeps its deliveries in order.

Each subscription belongs to the caller that created it (its owner). Creating one locks the owner's row
in webhook_owners first, so two creations by one caller run one after the other and the second counts
the first: a cap on subscriptions per caller holds under concurrent requests too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection

from ground.errors import YekuoError
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
    sa.Column("owner", KEY, nullable=False, comment="the caller that created it; only it and admins see it"),
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
    sa.Index("ix_webhook_subscriptions_owner", "owner", "created_at", "id"),
)

webhook_owners = sa.Table(
    "webhook_owners",
    metadata,
    sa.Column("owner", KEY, primary_key=True, comment="a caller that has subscribed; its row is the lock"),
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
    webhook_subscriptions.c.owner,
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


class SubscriptionLimitError(YekuoError):
    """The owner already holds as many subscriptions as it may."""

    def __init__(self, owner: str, held: int) -> None:
        self.owner = owner
        self.held = held
        super().__init__(f"{owner} holds {held} webhook subscriptions")


def create_subscription(
    conn: Connection,
    *,
    owner: str,
    url: str,
    event_types: list[str],
    secret: str,
    include_pii: bool,
    description: str | None,
    now: datetime,
    max_per_owner: int | None = None,
) -> dict[str, Any]:
    """A new active subscription of `owner` that takes events newer than the feed's current end.

    Raises SubscriptionLimitError when the owner already holds max_per_owner subscriptions (None: no cap).
    """
    if max_per_owner is not None:
        _lock_owner(conn, owner)
        held = count_subscriptions(conn, owner)
        if held >= max_per_owner:
            raise SubscriptionLimitError(owner, held)
    subscription_id = str(uuid.uuid4())
    conn.execute(
        webhook_subscriptions.insert().values(
            id=subscription_id,
            owner=owner,
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
    created = get_subscription(conn, subscription_id, owner=owner)
    assert created is not None
    return created


def _lock_owner(conn: Connection, owner: str) -> None:
    """Hold the owner's row lock until the transaction ends, creating the row on its first subscription.

    One upsert does both: it locks an existing row for update at once (a select-then-insert would take
    shared or gap locks first, which two creations can deadlock on) and waits for a concurrent insert of
    the same owner to commit.
    """
    table = webhook_owners
    statement: sa.Insert
    if conn.dialect.name in ("postgresql", "sqlite"):
        upsert = postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
        statement = upsert.values(owner=owner).on_conflict_do_update(
            index_elements=[table.c.owner], set_={"owner": upsert.excluded.owner}
        )
    else:
        statement = mysql.insert(table).values(owner=owner).on_duplicate_key_update(owner=owner)
    conn.execute(statement)


def count_subscriptions(conn: Connection, owner: str) -> int:
    """How many subscriptions an owner holds."""
    query = sa.select(sa.func.count()).where(webhook_subscriptions.c.owner == owner)
    return int(conn.execute(query).scalar_one())


def list_subscriptions(
    conn: Connection, *, owner: str | None, after: tuple[datetime, str] | None, limit: int
) -> list[dict[str, Any]]:
    """Up to `limit` subscriptions after the (created_at, id) position, oldest first, without secrets.

    owner None lists every owner's subscriptions (an administrator's view).
    """
    table = webhook_subscriptions
    query = sa.select(*_PUBLIC_COLUMNS)
    if owner is not None:
        query = query.where(table.c.owner == owner)
    if after is not None:
        created_at, subscription_id = after
        query = query.where(
            sa.or_(
                table.c.created_at > created_at,
                sa.and_(table.c.created_at == created_at, table.c.id > subscription_id),
            )
        )
    rows = conn.execute(query.order_by(table.c.created_at, table.c.id).limit(limit)).all()
    return [dict(row._mapping) for row in rows]


def _owned(subscription_id: str, owner: str | None) -> sa.ColumnElement[bool]:
    """The subscription with this id, if `owner` holds it (owner None: whoever holds it)."""
    found = webhook_subscriptions.c.id == subscription_id
    return found if owner is None else sa.and_(found, webhook_subscriptions.c.owner == owner)


def get_subscription(conn: Connection, subscription_id: str, *, owner: str | None) -> dict[str, Any] | None:
    """One subscription without its secret, with its deliveries counted by status.

    None if it is unknown or another owner's (owner None: any owner's).
    """
    row = conn.execute(sa.select(*_PUBLIC_COLUMNS).where(_owned(subscription_id, owner))).first()
    if row is None:
        return None
    counts = conn.execute(
        sa.select(webhook_deliveries.c.status, sa.func.count())
        .where(webhook_deliveries.c.subscription_id == subscription_id)
        .group_by(webhook_deliveries.c.status)
    ).all()
    deliveries = {PENDING: 0, DELIVERED: 0, PARKED: 0} | {status: int(count) for status, count in counts}
    return {**row._mapping, "deliveries": deliveries}


def delete_subscription(conn: Connection, subscription_id: str, *, owner: str | None) -> bool:
    """Remove a subscription with its deliveries and their attempts.

    False if it was not there or is another owner's (owner None: any owner's).
    """
    if (
        conn.execute(sa.select(webhook_subscriptions.c.id).where(_owned(subscription_id, owner))).first()
        is None
    ):
        return False
    delivery_ids = sa.select(webhook_deliveries.c.id).where(
        webhook_deliveries.c.subscription_id == subscription_id
    )
    conn.execute(webhook_attempts.delete().where(webhook_attempts.c.delivery_id.in_(delivery_ids)))
    conn.execute(webhook_deliveries.delete().where(webhook_deliveries.c.subscription_id == subscription_id))
    deleted = conn.execute(webhook_subscriptions.delete().where(_owned(subscription_id, owner)))
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
