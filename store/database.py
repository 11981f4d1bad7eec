"""Engine creation for the hub database, tuned per backend, and schema creation.

Engine, Connection and DatabaseError (any failure of the database) are the names the layers above hold
the database by: the API imports no SQLAlchemy of its own (an import-linter contract in pyproject.toml),
it reads and writes through the query and command functions of the layers below.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection as Connection
from sqlalchemy.engine import Engine as Engine

import store.grid  # noqa: F401  (registers the grid tables on metadata)
from ground import clock
from ground.settings import Settings
from store import audit as _audit  # noqa: F401  (registers audit_log on metadata)
from store import event_feed as _event_feed  # noqa: F401  (registers the event feed tables)
from store import feasibility as _feasibility  # noqa: F401  (registers the feasibility tables on metadata)
from store import forecast as _forecast  # noqa: F401  (registers the forecast refresh tables)
from store import idempotency as _idempotency  # noqa: F401  (registers idempotency_keys on metadata)
from store import loads as _loads  # noqa: F401  (registers the load and intake tables on metadata)
from store import operations as _operations  # noqa: F401  (registers operator_actions on metadata)
from store import submissions as _submissions  # noqa: F401  (registers the marketing exchange tables)
from store import webhooks as _webhooks  # noqa: F401  (registers the webhook subscription tables)
from store.crypto import Keyring, bind_keyring, keyring_from_settings
from store.schema import metadata

DatabaseError = sa.exc.SQLAlchemyError


def create_engine(url: str, *, keyring: Keyring | None = None) -> Engine:
    """An engine for the hub database; SQLite gets WAL and a busy timeout so threads can share it.

    Personal data is sealed with keyring, by default the one YEKUO_PII__* configures (without it, the
    public development key, with a warning).
    """
    engine = _create_engine(url)
    bind_keyring(engine, keyring or keyring_from_settings(Settings().pii))
    return engine


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def create_schema(engine: Engine) -> None:
    """Create every hub table that does not exist yet."""
    metadata.create_all(engine)


def drop_schema(engine: Engine) -> None:
    """Drop every hub table (tests and the demo's fresh start)."""
    metadata.drop_all(engine)


def utcnow() -> datetime:
    """The current time, timezone-aware, from the hub's clock."""
    return clock.now()
