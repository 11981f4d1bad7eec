"""Fault triggers of the PMS simulator: what a test or an operator does to make the database misbehave.

trigger                         effect on a reader such as the PMS adapter
late_commit(engine, key)        a change stamped with GXSJ now that stays invisible until the block ends,
                                so it commits after later changes were already read (a long transaction)
bulk_rerating(engine, keys, kva) a batch job re-rates many transformers in one statement, one GXSJ: every
                                open application whose connection point it touches must be re-assessed
table_lock(engine, table)       an exclusive lock that blocks readers of the table until the block ends:
                                SQLite BEGIN EXCLUSIVE (rollback-journal mode), PostgreSQL LOCK TABLE
                                ... ACCESS EXCLUSIVE, MariaDB LOCK TABLES ... WRITE; readers wait for
                                their lock or statement timeout and fail
a dropped connection            not a trigger here: put a TCP relay between the reader and the database
                                and cut it (tests/support/relay.py)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ground.errors import ConfigError
from simulators.pms.changes import local_now
from simulators.pms.schema import transformers


@contextmanager
def late_commit(
    engine: Engine, key: str, *, rated_kva: float = 800, clock: Callable[[], datetime] = local_now
) -> Iterator[datetime]:
    """Rate transformer `key` at rated_kva with GXSJ now, committing only when the block ends; yield GXSJ."""
    at = clock()
    with engine.begin() as conn:
        updated = conn.execute(
            transformers.update().where(transformers.c["OBJ_ID"] == key).values(EDRL=rated_kva, GXSJ=at)
        )
        if updated.rowcount != 1:
            raise ConfigError(f"no distribution transformer {key!r} to change late")
        yield at


def bulk_rerating(
    engine: Engine, keys: Sequence[str], rated_kva: float, *, clock: Callable[[], datetime] = local_now
) -> datetime:
    """Re-rate the transformers `keys` to rated_kva (EDRL, XH) in one transaction with one GXSJ; return it."""
    if not keys:
        raise ConfigError("a bulk re-rating needs at least one transformer")
    if rated_kva <= 0:
        raise ConfigError(f"a transformer rating must be positive, got {rated_kva}")
    at = clock()
    with engine.begin() as conn:
        updated = conn.execute(
            transformers.update()
            .where(transformers.c.OBJ_ID.in_(list(keys)))
            .values(EDRL=rated_kva, XH=f"S13-M-{rated_kva:g}/10", GXSJ=at)
        )
        if updated.rowcount != len(set(keys)):
            raise ConfigError(f"only {updated.rowcount} of {len(set(keys))} transformers to re-rate exist")
    return at


@contextmanager
def table_lock(engine: Engine, table: str) -> Iterator[None]:
    """Hold an exclusive lock on a PMS table (the whole database on SQLite) until the block ends."""
    dialect = engine.dialect.name
    with engine.connect() as conn:
        quoted = engine.dialect.identifier_preparer.quote(table)
        if dialect == "sqlite":
            conn.exec_driver_sql("BEGIN EXCLUSIVE")
            try:
                yield
            finally:
                conn.exec_driver_sql("ROLLBACK")
        elif dialect == "postgresql":
            with conn.begin():
                conn.execute(sa.text(f"LOCK TABLE {quoted} IN ACCESS EXCLUSIVE MODE"))
                yield
        elif dialect in ("mysql", "mariadb"):
            conn.exec_driver_sql(f"LOCK TABLES {quoted} WRITE")
            try:
                yield
            finally:
                conn.exec_driver_sql("UNLOCK TABLES")
        else:
            raise ConfigError(f"table_lock does not know how to lock a {dialect} database")
