"""Keyed locks that serialise the work on one thing (a case, a customer, an equipment) across processes.

A transaction takes its keys with lock_keys before it reads or writes anything else, all at once and in one
fixed order, and holds them until it ends. Two transactions that share a key therefore run one after the
other, and two that share several cannot deadlock: each waits only for keys later in the order than every
key it holds.

The keys need no row of their own, so a thing can be locked before its first row exists (a new case):
- PostgreSQL: transaction-scoped advisory locks (pg_advisory_xact_lock), released by commit or rollback and
  seen by the deadlock detector; a key is its 64-bit hash, and a rare collision only serialises two keys.
  Each key takes a slot of the shared lock table (max_locks_per_transaction x max_connections), so callers
  bound how many keys one transaction takes;
- MariaDB: named locks (GET_LOCK). They belong to the session, not the transaction, so they are released
  when the connection goes back to the pool (release_named_locks_on_return), after the commit. An engine
  without that hook would keep them across transactions, so lock_keys refuses it;
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

# How long a transaction waits for its keys before giving up: generous, since a holder may be applying a
# whole batch, but bounded so that a stuck holder never stalls a consumer for good.
NAMED_LOCK_WAIT_S = 120
ADVISORY_LOCK_WAIT = "60s"
_HELD = "yekuo.named_locks"
_HOLDING = "yekuo.keys_held"
_LOCK_NOT_AVAILABLE = "55P03"
_ADVISORY = sa.text(
    "SELECT count(pg_advisory_xact_lock(key)) FROM unnest(CAST(:keys AS bigint[])) AS taken(key)"
)

# Every key is tried (an aggregate reads every row), none waits: the answer is whether all were granted.
_TRY_ADVISORY = sa.text(
    "SELECT bool_and(pg_try_advisory_xact_lock(key)) FROM unnest(CAST(:keys AS bigint[])) AS taken(key)"
)


class LockTimeoutError(YekuoError):
    """A keyed lock was not granted in time: another transaction holds it too long."""


def lock_keys(conn: Connection, keys: Iterable[str]) -> None:
    """Hold every key until conn's transaction ends; a key held already by conn is taken again at no cost.

    Raises LockTimeoutError when a key is not granted in time; the transaction must then be rolled back.
    """
    wanted = set(keys)
    if not wanted:
        return
    dialect = conn.dialect.name
    if dialect == "postgresql":
        _get_advisory_locks(conn, sorted(_advisory_key(key) for key in wanted))
    elif dialect == "sqlite":
        _begin_immediate(conn)
    else:
        _get_named_locks(conn, sorted(_lock_name(key) for key in wanted))
    _remember(conn, None if dialect == "sqlite" else wanted)


def try_lock_keys(conn: Connection, keys: Iterable[str]) -> bool:
    """Take every key only if none is held by another transaction, without waiting; whether they were taken.

    Never waiting, it may take keys out of the fixed order. When one is held elsewhere it returns False; on
    PostgreSQL the keys granted before it stay held until conn's transaction ends (an advisory lock of a
    transaction cannot be given back early), on MariaDB they are released at once.
    """
    wanted = set(keys)
    if not wanted:
        return True
    dialect = conn.dialect.name
    if dialect == "postgresql":
        taken = conn.execute(_TRY_ADVISORY, {"keys": sorted(_advisory_key(key) for key in wanted)}).scalar()
        if not taken:
            return False
    elif dialect == "sqlite":
        _begin_immediate(conn)
    elif not _try_named_locks(conn, sorted(_lock_name(key) for key in wanted)):
        return False
    _remember(conn, None if dialect == "sqlite" else wanted)
    return True


def holds_key(conn: Connection, key: str) -> bool:
    """Whether conn's transaction may change what key guards: it holds the key, or is serialised anyway.

    A transaction that took no keys at all is not one of the competing consumers (a command, a test) and
    answers True; on SQLite every writer is alone.
    """
    held = _held(conn)
    return held is None or key in held


def release_named_locks_on_return(engine: Engine) -> None:
    """Release a MariaDB connection's named locks when it goes back to the pool, after its transaction."""
    sa.event.listen(engine, "reset", _release_named_locks)


def _release_named_locks(dbapi_connection: Any, record: Any, _state: Any) -> None:
    if record.info.pop(_HELD, False):
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("DO RELEASE_ALL_LOCKS()")
        finally:
            cursor.close()


def _remember(conn: Connection, keys: set[str] | None) -> None:
    """Note the keys against the transaction itself: conn.info outlives it, with the pooled connection."""
    transaction = conn.get_transaction()
    previous, held = conn.info.get(_HOLDING, (None, None))
    if previous is not transaction:
        held = set()
    conn.info[_HOLDING] = (transaction, None if keys is None or held is None else held | keys)


def _held(conn: Connection) -> set[str] | None:
    transaction, held = conn.info.get(_HOLDING, (None, None))
    if transaction is None or transaction is not conn.get_transaction():
        return None
    return held  # type: ignore[no-any-return]


def _advisory_key(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def _lock_name(key: str) -> str:
    # Named locks are at most 64 characters; the hash keeps any key within that.
    return "yekuo." + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def _get_advisory_locks(conn: Connection, keys: list[int]) -> None:
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{ADVISORY_LOCK_WAIT}'")
    try:
        # unnest yields the sorted array in order, so the locks are taken in that order.
        conn.execute(_ADVISORY, {"keys": keys})
    except sa.exc.OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
            raise LockTimeoutError(f"a keyed lock was not granted within {ADVISORY_LOCK_WAIT}") from exc
        raise


def _get_named_locks(conn: Connection, names: list[str]) -> None:
    if not sa.event.contains(conn.engine, "reset", _release_named_locks):
        raise YekuoError(
            "keyed locks on MariaDB need an engine from store.database.create_engine, whose pool "
            "releases them after each transaction"
        )
    conn.connection.info[_HELD] = True
    # One round trip, in order: AND evaluates left to right and stops at the first lock not granted, so a
    # timeout is waited once, not once for every remaining name.
    granted = conn.execute(
        sa.select(sa.and_(*(sa.func.get_lock(name, NAMED_LOCK_WAIT_S) == 1 for name in names)))
    ).scalar()
    if not granted:
        raise LockTimeoutError(f"a keyed lock was not granted within {NAMED_LOCK_WAIT_S} s")


def _try_named_locks(conn: Connection, names: list[str]) -> bool:
    if not sa.event.contains(conn.engine, "reset", _release_named_locks):
        raise YekuoError(
            "keyed locks on MariaDB need an engine from store.database.create_engine, whose pool "
            "releases them after each transaction"
        )
    conn.connection.info[_HELD] = True
    granted: list[str] = []
    for name in names:
        if conn.execute(sa.select(sa.func.get_lock(name, 0))).scalar() != 1:
            # Named locks count: one the session held already stays held once this taking is released.
            for taken in granted:
                conn.execute(sa.select(sa.func.release_lock(taken)))
            return False
        granted.append(name)
    return True


def _begin_immediate(conn: Connection) -> None:
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None
    if not dbapi_connection.in_transaction:
        # pysqlite would begin a deferred transaction at the first write and keep the reads before it
        # outside any; an immediate one takes the write lock now, and every read after it is current.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
