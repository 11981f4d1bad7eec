"""Keyed locks that serialise the work on one thing (a case, a customer, an equipment) across processes.

A transaction takes its keys with lock_keys before it reads or writes anything else, all at once and in one
fixed order, and holds them until it ends. Two transactions that share a key therefore run one after the
other, and two that share several cannot deadlock: each waits only for keys later in the order than every
key it holds.

The keys need no row of their own, so a thing can be locked before its first row exists (a new case):
- PostgreSQL: transaction-scoped advisory locks (pg_advisory_xact_lock), released by commit or rollback and
  seen by the deadlock detector; a key is its 64-bit hash, and a rare collision only serialises two keys;
- MariaDB: named locks (GET_LOCK). They belong to the session, not the transaction, so they are released
  when the connection goes back to the pool (release_named_locks_on_return), after the commit;
- SQLite: one writer at a time per database. Taking the write lock at the start of the transaction
  (BEGIN IMMEDIATE) serialises every writer, whatever the keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ground.errors import YekuoError

# How long a MariaDB transaction waits for a named lock; PostgreSQL waits until the holder ends (or its
# deadlock detector steps in), as it does for row locks.
NAMED_LOCK_WAIT_S = 120
_HELD = "yekuo.named_locks"
_ADVISORY = sa.text(
    "SELECT count(pg_advisory_xact_lock(key)) FROM unnest(CAST(:keys AS bigint[])) AS taken(key)"
)


class LockTimeoutError(YekuoError):
    """A keyed lock was not granted in time: another transaction holds it too long."""


def lock_keys(conn: Connection, keys: Iterable[str]) -> None:
    """Hold every key until conn's transaction ends; a key held already by conn is taken again at no cost."""
    wanted = set(keys)
    if not wanted:
        return
    dialect = conn.dialect.name
    if dialect == "postgresql":
        # unnest yields the sorted array in order, so the locks are taken in that order.
        conn.execute(_ADVISORY, {"keys": sorted(_advisory_key(key) for key in wanted)})
    elif dialect == "sqlite":
        _begin_immediate(conn)
    else:
        _get_named_locks(conn, sorted(_lock_name(key) for key in wanted))


def release_named_locks_on_return(engine: Engine) -> None:
    """Release a MariaDB connection's named locks when it goes back to the pool, after its transaction."""

    @sa.event.listens_for(engine, "reset")
    def _release(dbapi_connection: Any, record: Any, _state: Any) -> None:
        if record.info.pop(_HELD, False):
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("DO RELEASE_ALL_LOCKS()")
            finally:
                cursor.close()


def _advisory_key(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def _lock_name(key: str) -> str:
    # Named locks are at most 64 characters; the hash keeps any key within that.
    return "yekuo." + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def _get_named_locks(conn: Connection, names: list[str]) -> None:
    conn.connection.info[_HELD] = True
    # One round trip: MariaDB evaluates the select list left to right, so the locks are taken in order.
    granted = conn.execute(sa.select(*(sa.func.get_lock(name, NAMED_LOCK_WAIT_S) for name in names))).one()
    if not all(value == 1 for value in granted):
        raise LockTimeoutError(f"a keyed lock was not granted within {NAMED_LOCK_WAIT_S} s")


def _begin_immediate(conn: Connection) -> None:
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None
    if not dbapi_connection.in_transaction:
        # pysqlite would begin a deferred transaction at the first write and keep the reads before it
        # outside any; an immediate one takes the write lock now, and every read after it is current.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
