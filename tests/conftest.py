"""Fixtures shared by every test layer: real service URLs that fail in CI when a service is down."""

from __future__ import annotations

import gc
import logging
import os
import socket
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from ground.logs import HANDLER_NAME
from store.database import create_engine, create_schema, drop_schema

RABBITMQ_URL = os.environ.get("YEKUO_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
POSTGRES_URL = os.environ.get("YEKUO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("YEKUO_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def require_service(name: str, port: int) -> None:
    """Skip locally when a service is down, but fail in CI: a missing service must never pass silently."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return
    except OSError as exc:
        message = f"{name} is not reachable on 127.0.0.1:{port}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(autouse=True)
def _hub_logging_undone() -> Iterator[None]:
    """Take back the stderr handler a CLI command run in-process installs, with the level it set.

    Its stream is the test's captured stderr, closed once the test ends: later tests would log into it.
    """
    root = logging.getLogger()
    level = root.level
    yield
    root.handlers[:] = [handler for handler in root.handlers if handler.get_name() != HANDLER_NAME]
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _leaks_named_by_their_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Collect garbage after each test that runs services, so a connection it left open is reported
    against it rather than against whichever later test the collector happens to run in."""
    yield
    if request.node.path.parent.name in ("integration", "e2e"):
        gc.collect()


@pytest.fixture
def rabbitmq_url() -> str:
    require_service("RabbitMQ", 5672)
    return RABBITMQ_URL


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    require_service("PostgreSQL", 5432)
    engine = create_engine(POSTGRES_URL)
    drop_schema(engine)
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: object) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path}/hub.db")
    create_schema(engine)
    yield engine
    engine.dispose()
