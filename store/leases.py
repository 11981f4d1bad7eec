"""Duty leases: which hub instance runs each duty that must run once per cluster, and its fencing token.

A duty (a source's poller, the outbox relay, the monitor, ...) is held by one instance until its lease
expires. Every take-over adds one to the duty's token; the holder writes its token with the state changes
of the duty and checks it first in the same transaction (check_fence), so an instance that paused past its
lease and came back is refused instead of writing over its successor.

Times come from the hub's clock. The database serialises the decisions: a fence check locks the lease row
until its transaction ends, and a take-over locks it exclusively before its conditional UPDATE, so a
take-over waits for a write that checked the old token to commit, and a write after it sees the new token.

Renewals must not queue behind the holder's own fenced writes. On PostgreSQL the fence check takes the
weakest row lock (FOR KEY SHARE), which a renewal's UPDATE of non-key columns does not wait for, while the
take-over's FOR UPDATE does. MariaDB has no such lock: a renewal there waits for the fenced transactions
running at that moment (short ones; the keeper bounds the wait, see bounded_waits). A take-over first reads
the row without locking and leaves a live lease alone, so an idle instance never waits for the holder.

A holder that pauses inside a fenced transaction keeps its lock. PostgreSQL ends such a transaction once it
has been idle for half the lease time (idle_in_transaction_session_timeout), so the take-over waits that
long at most; MariaDB and SQLite cannot end another session's idle transaction from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
    # The lease time it was taken for: a fenced transaction idle for half of it is ended (PostgreSQL).
    ttl_s: float = field(default=15.0, compare=False)


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
    now = clock.now()
    # A plain read first: a live lease is left alone without waiting for its holder's fenced writes.
    current = conn.execute(
        sa.select(duty_leases.c.owner, duty_leases.c.expires_at).where(duty_leases.c.duty == duty)
    ).first()
    if current is None:
        _ensure_row(conn, duty)
    elif current.owner is not None and current.expires_at is not None and current.expires_at >= now:
        return None
    if conn.dialect.name != "sqlite":
        # Waits for every transaction that checked the old token (their locks conflict with this one).
        conn.execute(sa.select(duty_leases.c.token).where(duty_leases.c.duty == duty).with_for_update())
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
    return Fence(duty, int(token), ttl.total_seconds())


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

    Call it first in the transaction that changes the duty's state: the lease row stays locked (for key
    share on PostgreSQL, for share elsewhere) until that transaction ends, so a take-over cannot slip in
    between the check and the commit.
    """
    if conn.dialect.name == "sqlite":
        # SQLite has no row locks, and pysqlite begins the transaction only at the first write: this write
        # takes the database's write lock now, so the check below and the caller's writes see one state.
        conn.execute(
            duty_leases.update().where(duty_leases.c.duty == fence.duty).values(token=duty_leases.c.token)
        )
    elif conn.dialect.name == "postgresql":
        idle_ms = max(1, int(fence.ttl_s * 500))
        conn.exec_driver_sql(f"SET LOCAL idle_in_transaction_session_timeout = {idle_ms}")
    row = conn.execute(
        sa.select(duty_leases.c.token, duty_leases.c.owner)
        .where(duty_leases.c.duty == fence.duty)
        .with_for_update(read=True, key_share=conn.dialect.name == "postgresql")
    ).first()
    if row is None:
        raise FencedOutError(fence.duty, fence.token, None, None)
    if int(row.token) != fence.token:
        raise FencedOutError(fence.duty, fence.token, int(row.token), row.owner)


@contextmanager
def bounded_waits(conn: Connection, seconds: float) -> Iterator[None]:
    """Let conn's statements wait at most about seconds for a lock, then fail (a DatabaseError).

    For the lease keeper: a duty whose row is locked by a paused holder is not taken (or renewed) this
    round, and the keeper goes on with its other duties. MariaDB counts whole seconds, one at least.
    """
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, int(seconds * 1000))}")
        yield
    elif dialect == "sqlite":
        before = conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {max(1, int(seconds * 1000))}")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(before)}")
    else:
        before = conn.exec_driver_sql("SELECT @@SESSION.innodb_lock_wait_timeout").scalar_one()
        conn.exec_driver_sql(f"SET SESSION innodb_lock_wait_timeout = {max(1, round(seconds))}")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SET SESSION innodb_lock_wait_timeout = {int(before)}")


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
