"""Keyed locks hold a key for one transaction against every other connection, on PostgreSQL and MariaDB."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ground.errors import YekuoError
from store import locks
from store.database import create_engine
from store.locks import LockTimeoutError, holds_key, lock_keys, try_lock_keys
from tests.conftest import MARIADB_URL, POSTGRES_URL, require_service


@pytest.fixture(params=["postgresql", "mariadb"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    if request.param == "postgresql":
        require_service("PostgreSQL", 5432)
        engine = create_engine(POSTGRES_URL)
        # A taken key is refused soon rather than after the usual wait.
        monkeypatch.setattr(locks, "ADVISORY_LOCK_WAIT", "50ms")
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
        try:
            lock_keys(conn, [key])
        except LockTimeoutError:
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


def test_a_transaction_holds_the_keys_it_took_and_only_those(engine: Engine) -> None:
    with engine.connect() as conn:
        lock_keys(conn, ["workflow.case:K1"])
        lock_keys(conn, ["workflow.customer:C1"])
        assert locks.holds_key(conn, "workflow.case:K1")
        assert locks.holds_key(conn, "workflow.customer:C1")
        assert not locks.holds_key(conn, "workflow.case:K2")
        conn.commit()
        lock_keys(conn, ["workflow.case:K2"])
        assert not locks.holds_key(conn, "workflow.case:K1"), "the next transaction holds only its own"
        conn.rollback()


def test_a_key_not_granted_stops_the_taking_there(engine: Engine) -> None:
    # The order lock_keys takes keys in on each database.
    order = locks._advisory_key if engine.dialect.name == "postgresql" else locks._lock_name
    first, *later = sorted(["feasibility.case:K0", "feasibility.case:K1", "feasibility.case:K2"], key=order)
    with engine.connect() as holder:
        lock_keys(holder, [first])
        with engine.connect() as conn:
            with pytest.raises(LockTimeoutError):
                lock_keys(conn, [first, *later])
            # The keys after the refused one were not taken: the timeout was waited once, not per key.
            assert not any(_refused(engine, key) for key in later)
            conn.rollback()
        holder.rollback()


def test_a_try_takes_the_keys_only_when_none_is_held_elsewhere_and_never_waits(engine: Engine) -> None:
    with engine.connect() as holder, engine.connect() as trier:
        lock_keys(holder, ["feasibility.case:K1"])
        assert try_lock_keys(trier, ["feasibility.case:K3", "feasibility.case:K0"])
        # The usual lock wait would refuse only after its timeout; the try answers at once.
        assert not try_lock_keys(trier, ["feasibility.case:K1", "feasibility.case:K2"])
        assert holds_key(trier, "feasibility.case:K3")
        assert not holds_key(trier, "feasibility.case:K1")
        assert _refused(engine, "feasibility.case:K0")
        holder.rollback()
        trier.rollback()
    assert not _refused(engine, "feasibility.case:K1")
    assert not _refused(engine, "feasibility.case:K3")


def test_named_locks_are_refused_on_an_engine_that_would_not_release_them() -> None:
    require_service("MariaDB", 3306)
    engine = sa.create_engine(MARIADB_URL)
    try:
        with engine.connect() as conn, pytest.raises(YekuoError, match="create_engine"):
            lock_keys(conn, ["workflow.case:K1"])
    finally:
        engine.dispose()
