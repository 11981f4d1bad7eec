"""Duty leases: which hub instance runs each duty that must run once per cluster, and its fencing token.

A duty (a source's poller, the outbox relay, the monitor, ...) is held by one instance until its lease
expires. Every take-over adds one to the duty's token; the holder writes its token with the state changes
of the duty and checks it first in the same transaction (check_fence), so an instance that paused past its
lease and came back is refused instead of writing over its successor.

Times come from the hub's clock. The database serialises the decisions: a take-over is one conditional
UPDATE, and a fence check holds the lease row (for share) until its transaction ends, so a take-over waits
for a write that checked the old token to commit, and a write that comes after it sees the new token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection

from ground import clock
from ground.errors import FencedOutError
from store.schema import KEY, UtcDateTime, metadata

duty_leases = sa.Table(
    "duty_leases",
    metadata,
    sa.Column("duty", KEY, primary_key=True, comment="e.g. relay, poll:marketing"),
    sa.Column(
        "owner", KEY, nullable=True, comment="the holding instance's name; null: released or never held"
    ),
    sa.Column("token", sa.BigInteger, nullable=False, comment="fencing token, one more on every take-over"),
    sa.Column("expires_at", UtcDateTime(), nullable=True, comment="free for another instance after this"),
    sa.Column("acquired_at", UtcDateTime(), nullable=True),
    sa.Column("renewed_at", UtcDateTime(), nullable=True),
)


@dataclass(frozen=True)
class Fence:
    """The token a holder of a duty writes with, and checks before writing."""

    duty: str
    token: int


@dataclass(frozen=True)
class Lease:
    """A duty's lease as the table shows it."""

    duty: str
    owner: str | None
    token: int
    expires_at: datetime | None


def take_lease(conn: Connection, duty: str, owner: str, ttl: timedelta) -> Fence | None:
    """Take a duty that is free (released, never held) or whose lease expired; None while another holds it.

    Taking one's own expired lease counts as a take-over too: the writes of the pause behind it are refused.
    """
    _ensure_row(conn, duty)
    now = clock.now()
    taken = conn.execute(
        duty_leases.update()
        .where(duty_leases.c.duty == duty)
        .where(sa.or_(duty_leases.c.owner.is_(None), duty_leases.c.expires_at < now))
        .values(
            owner=owner, token=duty_leases.c.token + 1, expires_at=now + ttl, acquired_at=now, renewed_at=now
        )
    )
    if taken.rowcount != 1:
        return None
    token = conn.execute(sa.select(duty_leases.c.token).where(duty_leases.c.duty == duty)).scalar_one()
    return Fence(duty, int(token))


def renew_lease(conn: Connection, fence: Fence, owner: str, ttl: timedelta) -> bool:
    """Extend a held lease to ttl from now; False once the duty is not this owner's with this token."""
    now = clock.now()
    return bool(conn.execute(_held(fence, owner).values(expires_at=now + ttl, renewed_at=now)).rowcount == 1)


def release_lease(conn: Connection, fence: Fence, owner: str) -> bool:
    """Give a held duty up at once (the token stays, the next holder adds one); whether it was still held."""
    return bool(conn.execute(_held(fence, owner).values(owner=None, expires_at=clock.now())).rowcount == 1)


def list_leases(conn: Connection) -> list[Lease]:
    """Every duty's lease, by duty name."""
    rows = conn.execute(sa.select(duty_leases).order_by(duty_leases.c.duty)).all()
    return [Lease(row.duty, row.owner, int(row.token), row.expires_at) for row in rows]


def check_fence(conn: Connection, fence: Fence) -> None:
    """Refuse the caller's transaction (FencedOutError) unless fence's token is still the duty's.

    Call it first in the transaction that changes the duty's state: the lease row stays locked for share
    until that transaction ends, so a take-over cannot slip in between the check and the commit.
    """
    if conn.dialect.name == "sqlite":
        # SQLite has no row locks, and pysqlite begins the transaction only at the first write: this write
        # takes the database's write lock now, so the check below and the caller's writes see one state.
        conn.execute(
            duty_leases.update().where(duty_leases.c.duty == fence.duty).values(token=duty_leases.c.token)
        )
    row = conn.execute(
        sa.select(duty_leases.c.token, duty_leases.c.owner)
        .where(duty_leases.c.duty == fence.duty)
        .with_for_update(read=True)
    ).first()
    if row is None:
        raise FencedOutError(fence.duty, fence.token, None, None)
    if int(row.token) != fence.token:
        raise FencedOutError(fence.duty, fence.token, int(row.token), row.owner)


def _held(fence: Fence, owner: str) -> sa.Update:
    return (
        duty_leases.update()
        .where(duty_leases.c.duty == fence.duty)
        .where(duty_leases.c.owner == owner)
        .where(duty_leases.c.token == fence.token)
    )


def _ensure_row(conn: Connection, duty: str) -> None:
    """Insert the duty's row unless it exists, without a unique violation when another instance races."""
    values = {"duty": duty, "token": 0}  # nosec B105 (a fencing token counts take-overs; it is no secret)
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(postgresql.insert(duty_leases).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        conn.execute(sqlite.insert(duty_leases).values(values).on_conflict_do_nothing())
    else:
        insert = mysql.insert(duty_leases).values(values)
        conn.execute(insert.on_duplicate_key_update(duty=insert.inserted.duty))
