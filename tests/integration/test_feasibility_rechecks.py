"""Due re-checks on PostgreSQL and MariaDB: drainers share them and never re-check one application twice."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from feasibility.config import load_feasibility_config
from feasibility.consumer import FeasibilityHandler
from feasibility.service import FeasibilityService
from ground import clock
from store.database import create_engine, create_schema, drop_schema
from store.feasibility import claim_due, count_due, feasibility_rechecks, mark_due
from store.locks import lock_keys
from tests.conftest import MARIADB_URL, POSTGRES_URL, require_service
from tests.unit.feasibility.builders import (
    LV_UPSTREAM_PEAKS_KW,
    NOW,
    ROOT,
    application,
    lv_upstream,
    store_grid,
    store_peak,
    transformer,
)

CONFIG = load_feasibility_config(ROOT)
NUMBERS = [f"A{n:02d}" for n in range(40)]


@pytest.fixture(autouse=True)
def _hub_clock_at_now() -> Iterator[None]:
    with clock.frozen_at(NOW):
        yield


@pytest.fixture(params=["postgresql", "mariadb"])
def hub_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "postgresql":
        require_service("PostgreSQL", 5432)
        engine = create_engine(POSTGRES_URL)
    else:
        require_service("MariaDB", 3306)
        engine = create_engine(MARIADB_URL)
    drop_schema(engine)
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def due(hub_engine: Engine) -> Engine:
    """Forty open applications on T1, all due after a new reading of T1."""
    service = FeasibilityService(CONFIG, clock=lambda: NOW)
    with hub_engine.begin() as conn:
        store_grid(conn, *lv_upstream(), transformer("T1", "F1", "S1", 50, rated_kva=400))
        store_peak(conn, "T1", 150)
        for equipment_id, peak_kw in LV_UPSTREAM_PEAKS_KW.items():
            store_peak(conn, equipment_id, peak_kw)
        for number in NUMBERS:
            service.assess_application(conn, application(number, 5), correlation_id="c")
    with hub_engine.begin() as conn:
        store_peak(conn, "T1", 160)
        mark_due(conn, dict.fromkeys(NUMBERS, "notice"), since=NOW)
    return hub_engine


class _Recorded(FeasibilityService):
    """A service that notes which applications each of its re-assessments was given."""

    def __init__(self, calls: list[list[str]]) -> None:
        super().__init__(CONFIG, clock=lambda: NOW)
        self.calls = calls

    def reassess(self, conn: Connection, application_nos: Any, *, correlation_id: Any) -> int:
        self.calls.append(sorted(application_nos))
        return super().reassess(conn, application_nos, correlation_id=correlation_id)


def test_two_drainers_share_the_due_re_checks_and_never_take_one_twice(due: Engine) -> None:
    calls: list[list[str]] = []
    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def drain() -> None:
        # Each drainer has its own handler and service, as two instances' consumers do.
        handler = FeasibilityHandler(_Recorded(calls))
        try:
            start.wait()
            while handler.drain(due, limit=7):
                pass
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    taken = [number for call in calls for number in call]
    assert sorted(taken) == NUMBERS
    assert all(len(call) <= 7 for call in calls)
    with due.connect() as conn:
        assert count_due(conn) == 0


def test_a_claim_that_dies_leaves_its_rows_due_and_another_drainer_skips_them_meanwhile(due: Engine) -> None:
    calls: list[list[str]] = []
    handler = FeasibilityHandler(_Recorded(calls))
    with due.connect() as dying:
        transaction = dying.begin()
        assert sorted(claim_due(dying, ["A00", "A01"])) == ["A00", "A01"]
        # While held, the others are re-checked and the claimed rows left alone.
        while handler.drain(due, limit=10):
            pass
        assert "A00" not in {number for call in calls for number in call}
        with due.connect() as conn:
            held = sorted(conn.execute(sa.select(feasibility_rechecks.c.application_no)).scalars())
        assert held == ["A00", "A01"]
        transaction.rollback()
    assert handler.drain(due, limit=10) == 2
    assert calls[-1] == ["A00", "A01"]
    with due.connect() as conn:
        assert count_due(conn) == 0


def test_a_drainer_leaves_applications_whose_keys_another_transaction_holds_without_waiting(
    due: Engine,
) -> None:
    calls: list[list[str]] = []
    handler = FeasibilityHandler(_Recorded(calls))
    with due.connect() as other:
        transaction = other.begin()
        # As another drainer's batch does: the keys of A00 and A01 are held, their rows not yet claimed.
        lock_keys(other, handler.service.keys_of(other, ["A00", "A01"]))
        # Were the keys waited for, this would stop at the first batch until the lock wait ran out.
        assert handler.drain(due, limit=10) == 8
        while handler.drain(due, limit=10):
            pass
        assert {"A00", "A01"}.isdisjoint(number for call in calls for number in call)
        with due.connect() as conn:
            assert sorted(conn.execute(sa.select(feasibility_rechecks.c.application_no)).scalars()) == [
                "A00",
                "A01",
            ]
        transaction.rollback()
    assert handler.drain(due, limit=10) == 2
    with due.connect() as conn:
        assert count_due(conn) == 0
