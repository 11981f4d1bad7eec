"""Keyed locks hold a key for one transaction against every other connection, on PostgreSQL and MariaDB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store import locks
from store.database import create_engine
from store.locks import LockTimeoutError, lock_keys
from tests.conftest import MARIADB_URL, POSTGRES_URL, require_service


@pytest.fixture(params=["postgresql", "mariadb"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    if request.param == "postgresql":
        require_service("PostgreSQL", 5432)
        engine = create_engine(POSTGRES_URL)
    else:
        require_service("MariaDB", 3306)
        engine = create_engine(MARIADB_URL)
        # A taken key is refused at once rather than after the usual wait.
        monkeypatch.setattr(locks, "NAMED_LOCK_WAIT_S", 0)
    yield engine
    engine.dispose()


def _refused(engine: Engine, key: str) -> bool:
    """Whether another connection is refused the key now."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SET LOCAL lock_timeout = '50ms'"))
        try:
            lock_keys(conn, [key])
        except (LockTimeoutError, sa.exc.OperationalError):
            return True
        conn.commit()
        return False


def test_a_key_is_held_until_the_transaction_ends_and_other_keys_stay_free(engine: Engine) -> None:
    with engine.connect() as holder:
        lock_keys(holder, ["workflow.case:K1", "workflow.customer:C1"])
        assert _refused(engine, "workflow.case:K1")
        assert _refused(engine, "workflow.customer:C1")
        assert not _refused(engine, "workflow.case:K2")
        holder.commit()
    assert not _refused(engine, "workflow.case:K1")


def test_a_key_taken_again_in_the_same_transaction_is_granted(engine: Engine) -> None:
    with engine.connect() as holder:
        lock_keys(holder, ["feasibility.case:K1"])
        lock_keys(holder, ["feasibility.case:K1", "feasibility.case:K0"])
        assert _refused(engine, "feasibility.case:K0")
        holder.rollback()
    assert not _refused(engine, "feasibility.case:K1")
