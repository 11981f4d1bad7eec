"""The event feed: every canonical event from the bus, numbered in commit order, for SSE and webhook clients.

Feed ids come from a one-row counter that a writer increments first in its transaction, so the row lock
is held until commit: a writer holding id n+1 commits only after the writer holding n, and a reader that
has seen id n never later finds a smaller id appear. Readers page by `id > after`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.encrypted import SealedJson
from store.schema import KEY, UtcDateTime, metadata

FEED_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_COUNTER = "event_feed"

event_feed = sa.Table(
    "event_feed",
    metadata,
    sa.Column("id", FEED_ID, primary_key=True, autoincrement=False, comment="position in the feed"),
    sa.Column("event_id", KEY, nullable=False, unique=True),
    sa.Column("event_type", KEY, nullable=False),
    sa.Column("subject", KEY, nullable=False),
    sa.Column("time", UtcDateTime(), nullable=False, comment="when the change happened"),
    sa.Column("received_at", UtcDateTime(), nullable=False, comment="when the feed took it; retention"),
    # Sealed whole: canonical events carry customers' personal data.
    sa.Column("event", SealedJson("event_feed.event"), nullable=False, comment="the CloudEvent, unmasked"),
    sa.Index("ix_event_feed_type", "event_type", "id"),
    sa.Index("ix_event_feed_received", "received_at"),
)

feed_counters = sa.Table(
    "feed_counters",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("last_id", FEED_ID, nullable=False),
)


@sa.event.listens_for(feed_counters, "after_create")
def _start_counter(target: sa.Table, connection: Connection, **_: Any) -> None:
    # Created with its table, so a writer only ever updates it and never races to insert it.
    connection.execute(target.insert().values(name=_COUNTER, last_id=0))


@dataclass(frozen=True)
class FeedEntry:
    """One event of the feed."""

    id: int
    event_type: str
    subject: str
    time: datetime
    event: dict[str, Any]


_NEXT_ID = (
    feed_counters.update().where(feed_counters.c.name == _COUNTER).values(last_id=feed_counters.c.last_id + 1)
)
_READ_ID = sa.select(feed_counters.c.last_id).where(feed_counters.c.name == _COUNTER)


def append_event(conn: Connection, event: dict[str, Any], received_at: datetime) -> int | None:
    """Add a CloudEvent (as JSON) to the feed; its feed id, or None if the feed has it already."""
    known = conn.execute(sa.select(event_feed.c.id).where(event_feed.c.event_id == event["id"])).first()
    if known is not None:
        return None
    conn.execute(_NEXT_ID)
    feed_id = int(conn.execute(_READ_ID).scalar_one())
    conn.execute(
        event_feed.insert().values(
            id=feed_id,
            event_id=event["id"],
            event_type=event["type"],
            subject=event["subject"],
            time=datetime.fromisoformat(event["time"]),
            received_at=received_at,
            event=event,
        )
    )
    return feed_id


def type_condition(types: Sequence[str]) -> sa.ColumnElement[bool]:
    """Types matching any filter: the exact type, or a dotted prefix (`cn.yekuo.grid`, `cn.yekuo.grid.*`)."""
    if not types:
        return sa.true()
    conditions = []
    for text in types:
        prefix = text.removesuffix("*").removesuffix(".")
        conditions.append(event_feed.c.event_type == prefix)
        conditions.append(event_feed.c.event_type.startswith(prefix + ".", autoescape=True))
    return sa.or_(*conditions)


def read_feed(
    conn: Connection, *, after: int, types: Sequence[str] = (), limit: int = 100, until: int | None = None
) -> list[FeedEntry]:
    """Up to limit events with after < id (<= until), matching the type filters, in feed order."""
    query = sa.select(event_feed).where(event_feed.c.id > after, type_condition(types))
    if until is not None:
        query = query.where(event_feed.c.id <= until)
    rows = conn.execute(query.order_by(event_feed.c.id).limit(limit)).all()
    return [FeedEntry(row.id, row.event_type, row.subject, row.time, row.event) for row in rows]


def last_feed_id(conn: Connection) -> int:
    """The id of the newest committed event (0 before the first); a live reader starts after it."""
    return int(conn.execute(_READ_ID).scalar_one())


def oldest_feed_id(conn: Connection) -> int | None:
    """The id of the oldest event still kept; None for an empty feed."""
    value = conn.execute(sa.select(sa.func.min(event_feed.c.id))).scalar_one()
    return None if value is None else int(value)


def prune_feed(conn: Connection, *, received_before: datetime, keep_rows: int, keep_after: int | None) -> int:
    """Delete events older than received_before or beyond the newest keep_rows; keep every id > keep_after.

    keep_after protects events that a subscriber has not taken yet. Returns how many were deleted.
    """
    newest = last_feed_id(conn)
    condition = sa.or_(event_feed.c.received_at < received_before, event_feed.c.id <= newest - keep_rows)
    if keep_after is not None:
        condition = sa.and_(condition, event_feed.c.id <= keep_after)
    return int(conn.execute(event_feed.delete().where(condition)).rowcount)
