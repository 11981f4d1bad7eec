"""Engine creation for the hub database, tuned per backend, and its schema: Alembic migrations under a lock.

The schema is store/migrations/: a baseline (0001, the last release made with create_all) and the revisions
after it, each an expand step (adds what the new code needs; old code keeps working on it) or a contract step
(removes what no running code reads any longer). create_schema brings any database to the code's head:

- empty: every migration from the baseline up;
- hub tables without alembic_version (made by create_all before migrations): stamped at the revision whose
  schema it has, then upgraded (see _legacy_revision);
- at an older revision: upgraded; at the head: left alone;
- at a revision this code does not know: left alone, a later release has expanded it, and expand steps keep
  older code working.

Two processes starting at once on one database take turns: PostgreSQL's advisory transaction lock, SQLite's
exclusive transaction and MariaDB's named lock serialise them, and the second finds the work done.

Engine, Connection and DatabaseError (any failure of the database) are the names the layers above hold
the database by: the API imports no SQLAlchemy of its own (an import-linter contract in pyproject.toml),
it reads and writes through the query and command functions of the layers below.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import tenacity
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection as Connection
from sqlalchemy.engine import Engine as Engine

import store.grid  # noqa: F401  (registers the grid tables on metadata)
from ground import clock
from ground.errors import YekuoError
from ground.settings import Settings
from store import audit as _audit  # noqa: F401  (registers audit_log on metadata)
from store import event_feed as _event_feed  # noqa: F401  (registers the event feed tables)
from store import feasibility as _feasibility  # noqa: F401  (registers the feasibility tables on metadata)
from store import forecast as _forecast  # noqa: F401  (registers the forecast refresh tables)
from store import idempotency as _idempotency  # noqa: F401  (registers idempotency_keys on metadata)
from store import leases as _leases  # noqa: F401  (registers duty_leases on metadata)
from store import loads as _loads  # noqa: F401  (registers the load and intake tables on metadata)
from store import operations as _operations  # noqa: F401  (registers operator_actions on metadata)
from store import submissions as _submissions  # noqa: F401  (registers the marketing exchange tables)
from store import webhooks as _webhooks  # noqa: F401  (registers the webhook subscription tables)
from store.crypto import Keyring, bind_keyring, keyring_from_settings
from store.locks import release_named_locks_on_return
from store.schema import metadata

log = logging.getLogger(__name__)
# Alembic announces its context on every look at the revision; the upgrades are logged here instead.
logging.getLogger("alembic").setLevel(logging.WARNING)

MIGRATIONS = "store:migrations"
# Taken by whoever changes the schema, one per database: the key of pg_advisory_xact_lock (b"yekuo" as an
# integer, unlikely to collide with another application's) and the name of MariaDB's GET_LOCK.
_LOCK_KEY = int.from_bytes(b"yekuo")
_LOCK_NAME = "yekuo_schema"
_LOCK_WAIT_S = 600
# What the revision after the baseline added; a database made by create_all has all of them or none.
_ANALYTICS = {
    "table case_figures": ("case_figures", None),
    "table assistant_gaps": ("assistant_gaps", None),
    "column stage_visits.excess_days": ("stage_visits", "excess_days"),
    "column case_figures.closed_at": ("case_figures", "closed_at"),
    "index ix_stage_visits_exit": ("stage_visits", "ix_stage_visits_exit"),
}

DatabaseError = sa.exc.SQLAlchemyError


def create_engine(
    url: str, *, keyring: Keyring | None = None, pool_size: int = 5, max_overflow: int = 10
) -> Engine:
    """An engine for the hub database; SQLite gets WAL and a busy timeout so threads can share it.

    Personal data is sealed with keyring, by default the one YEKUO_PII__* configures (without it, the
    public development key, with a warning). On PostgreSQL and MariaDB the pool keeps pool_size connections
    and opens up to max_overflow more at a peak (SQLAlchemy's defaults unless told).
    """
    engine = _create_engine(url, {"pool_size": pool_size, "max_overflow": max_overflow})
    bind_keyring(engine, keyring or keyring_from_settings(Settings().pii))
    return engine


def _create_engine(url: str, pool: dict[str, int]) -> Engine:
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if url.startswith("postgresql"):
        return sa.create_engine(url, pool_pre_ping=True, **pool)
    # READ COMMITTED as on PostgreSQL: a transaction that waited for a keyed lock (store/locks.py) reads what
    # the holder committed, and InnoDB takes no gap locks, which deadlock writers of neighbouring keys.
    engine = sa.create_engine(url, pool_pre_ping=True, isolation_level="READ COMMITTED", **pool)
    release_named_locks_on_return(engine)
    return engine


def _locked(exc: BaseException) -> bool:
    cause = exc.orig if isinstance(exc, sa.exc.OperationalError) else exc
    return isinstance(cause, sqlite3.OperationalError) and "locked" in str(cause)


@tenacity.retry(
    retry=tenacity.retry_if_exception(_locked),
    wait=tenacity.wait_random(0.01, 0.2),
    stop=tenacity.stop_after_delay(60),
    reraise=True,
)
def _use_wal(cursor: Any) -> None:
    # Switching a new database into WAL needs a moment alone with it, and SQLite answers "locked" at once,
    # without its busy wait, when another process is switching or building the schema at that moment.
    cursor.execute("PRAGMA journal_mode=WAL")


@tenacity.retry(
    retry=tenacity.retry_if_exception(_locked),
    wait=tenacity.wait_random(0.1, 1.0),
    stop=tenacity.stop_after_delay(_LOCK_WAIT_S),
    reraise=True,
)
def _begin_exclusive(conn: Connection) -> None:
    # The busy timeout gives up after 30 s; another process's upgrade may take longer, and this one waits
    # for it as long as the other databases' schema locks wait.
    conn.exec_driver_sql("BEGIN EXCLUSIVE")


class SchemaError(YekuoError):
    """The database's schema cannot be brought to the code's without an operator."""


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands against the code's."""

    revision: str | None
    """The database's revision; None without alembic_version (empty, or made before migrations)."""
    head: str
    """The newest revision the code knows."""
    empty: bool
    """The database has no hub table."""
    known: bool
    """The code knows the database's revision (False: a later release's)."""

    @property
    def behind(self) -> bool:
        """The schema lacks what the code needs: it must be upgraded before the code runs on it."""
        return not self.empty and self.revision != self.head and (self.revision is None or self.known)

    @property
    def ahead(self) -> bool:
        """A later release has expanded the schema; the code runs on it."""
        return self.revision is not None and not self.known

    def describe(self) -> str:
        """One line for operators: the revision and how it compares with the code's."""
        if self.empty:
            return f"no hub tables (the code's schema is {self.head})"
        if self.revision is None:
            return f"no revision: made before schema migrations (the code's schema is {self.head})"
        if self.ahead:
            return f"{self.revision}, newer than the code's {self.head} (a later release expanded it)"
        if self.behind:
            return f"{self.revision}, older than the code's {self.head}"
        return f"{self.revision} (head)"


def create_schema(engine: Engine) -> None:
    """Bring the database's schema to the code's, creating it when empty (see the module's docstring).

    Raises SchemaError for hub tables without a migration history that match no revision.
    """
    with _schema_lock(engine) as conn:
        config = _config(conn)
        current = MigrationContext.configure(conn).get_current_revision()
        if current is None:
            current = _legacy_revision(conn)
            if current is not None:
                command.stamp(config, current)
                log.info("database schema made before migrations is revision %s", current)
        elif not _known(current):
            return
        command.upgrade(config, "head")
        upgraded = MigrationContext.configure(conn).get_current_revision()
        if upgraded != current:
            log.info("database schema upgraded from %s to %s", current or "nothing", upgraded)


def schema_status(engine: Engine) -> SchemaStatus:
    """The database's revision against the code's head, read without the schema lock."""
    with engine.connect() as conn:
        revision = MigrationContext.configure(conn).get_current_revision()
        empty = revision is None and not set(sa.inspect(conn).get_table_names()) & set(metadata.tables)
    head = _scripts().get_current_head()
    assert head is not None
    return SchemaStatus(revision=revision, head=head, empty=empty, known=revision is None or _known(revision))


def drop_schema(engine: Engine) -> None:
    """Drop every hub table and the migration history (tests and the demo's fresh start)."""
    metadata.drop_all(engine)
    sa.Table("alembic_version", sa.MetaData()).drop(engine, checkfirst=True)


def utcnow() -> datetime:
    """The current time, timezone-aware, from the hub's clock."""
    return clock.now()


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that holds the database's schema lock until it ends."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # pysqlite begins transactions only before DML, so DDL would commit statement by statement; in
            # autocommit mode it leaves BEGIN to us, and an exclusive transaction keeps a second process
            # waiting (busy_timeout) until this one commits.
            conn.execution_options(isolation_level="AUTOCOMMIT")
            _begin_exclusive(conn)
            try:
                yield conn
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
        elif engine.dialect.name == "postgresql":
            # PostgreSQL's DDL is transactional: the lock is held until the whole upgrade commits.
            with conn.begin():
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_KEY)))
                yield conn
        else:
            # MariaDB commits each DDL statement at once; a named session lock serialises upgrades instead.
            if conn.execute(sa.select(sa.func.get_lock(_LOCK_NAME, _LOCK_WAIT_S))).scalar() != 1:
                raise SchemaError(f"another process held the schema lock for {_LOCK_WAIT_S} s")
            try:
                yield conn
                conn.commit()
            finally:
                conn.rollback()
                conn.execute(sa.select(sa.func.release_lock(_LOCK_NAME)))
                conn.commit()


def _config(conn: Connection | None = None) -> Config:
    """Alembic's configuration: the migrations, and the connection env.py runs them on."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    if conn is not None:
        config.attributes["connection"] = conn
    return config


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def _known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def _legacy_revision(conn: Connection) -> str | None:
    """The revision a database made by create_all before migrations has; None when it has no hub table.

    The baseline release (0001) had none of what the analytics tables added (_ANALYTICS), the release after
    it all of them. A database with some of them was made by a build between the two, or changed by hand.
    """
    inspector = sa.inspect(conn)
    tables = set(inspector.get_table_names())
    if not tables & set(metadata.tables):
        return None
    present: set[str] = set()
    for name, (table, item) in _ANALYTICS.items():
        if table not in tables:
            continue
        columns = {column["name"] for column in inspector.get_columns(table)}
        indexes = {index["name"] for index in inspector.get_indexes(table)}
        if item is None or item in columns | indexes:
            present.add(name)
    if not present:
        return "0001"
    if present == set(_ANALYTICS):
        return "0002"
    missing = ", ".join(sorted(set(_ANALYTICS) - present))
    raise SchemaError(
        f"the database has hub tables but no migration history, and matches no release: it has "
        f"{', '.join(sorted(present))} but not {missing}. Add the missing ones as "
        f"store/migrations/versions/0002_analytics.py does, then upgrade again"
    )
