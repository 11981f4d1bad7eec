"""Competing assessments on PostgreSQL: the second waits on the capacity lock, then sees the reservation."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical_model.feasibility import Verdict
from feasibility.config import load_feasibility_config
from feasibility.service import FeasibilityService, Outcome, request_of
from tests.unit.feasibility.builders import (
    LV_UPSTREAM_PEAKS_KW,
    NOW,
    ROOT,
    application,
    lv_upstream,
    reservations,
    store_grid,
    store_peak,
    transformer,
)

pytestmark = pytest.mark.postgres

SERVICE = FeasibilityService(load_feasibility_config(ROOT), clock=lambda: NOW)


@pytest.fixture
def grid(postgres_engine: Engine) -> Engine:
    # Headroom 400 x 0.8 - 150 / 0.9 = 153.33 kVA: room for one 100 kVA application, not two.
    with postgres_engine.begin() as conn:
        store_grid(conn, *lv_upstream(), transformer("T1", "F1", "S1", 50, rated_kva=400))
        store_peak(conn, "T1", 150)
        for equipment_id, peak_kw in LV_UPSTREAM_PEAKS_KW.items():
            store_peak(conn, equipment_id, peak_kw)
    return postgres_engine


def _waiting_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        return int(conn.execute(query).scalar_one()) > 0


def _assess_in_thread(engine: Engine, application_no: str, results: dict[str, Outcome]) -> threading.Thread:
    def run() -> None:
        with engine.begin() as conn:
            results[application_no] = SERVICE.assess_application(
                conn, application(application_no, 100), correlation_id=application_no
            )

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_the_second_assessment_waits_for_the_first_and_sees_its_reservation(grid: Engine) -> None:
    results: dict[str, Outcome] = {}
    with grid.connect() as first:
        transaction = first.begin()
        results["A1"] = SERVICE.assess_application(first, application("A1", 100), correlation_id="A1")
        assert results["A1"].assessment.verdict is Verdict.FEASIBLE
        # Without the lock a reader would see no reservation yet: a preview says "feasible" right now.
        with grid.connect() as reader:
            assert SERVICE.preview(reader, request_of(application("P", 100))).verdict is Verdict.FEASIBLE
        second = _assess_in_thread(grid, "A2", results)
        deadline = time.monotonic() + 20
        while not _waiting_on_a_lock(grid):
            assert second.is_alive(), "the second assessment finished without waiting for the first"
            assert time.monotonic() < deadline, "the second assessment never waited on the capacity lock"
            time.sleep(0.02)
        assert "A2" not in results
        transaction.commit()
    second.join(timeout=30)
    assert results["A2"].assessment.verdict is Verdict.NEEDS_REINFORCEMENT
    with grid.connect() as conn:
        assert reservations(conn) == [("A1", "T1", 100.0)]


def test_two_assessments_started_together_give_one_feasible(grid: Engine) -> None:
    results: dict[str, Outcome] = {}
    threads = [_assess_in_thread(grid, number, results) for number in ("B1", "B2")]
    for thread in threads:
        thread.join(timeout=30)
    verdicts = sorted(outcome.assessment.verdict.value for outcome in results.values())
    assert verdicts == ["feasible", "needs_reinforcement"]
    with grid.connect() as conn:
        assert len(reservations(conn)) == 1
