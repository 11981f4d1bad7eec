"""Assessments over the hub database: what is kept, what is reserved, and what the request adds."""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy.engine import Engine

from canonical_model.grid import SupplyAreaClass
from feasibility.config import load_feasibility_config
from feasibility.service import FeasibilityService
from tests.unit.feasibility.builders import (
    NOW,
    ROOT,
    TODAY,
    application,
    feeder,
    main_transformer,
    reservations,
    store_grid,
    store_peak,
    substation,
    transformer,
)

CAPACITY_485A = math.sqrt(3) * 10 * 485  # 8400.45 kVA


def _grid(engine: Engine, *, feeder_rate: float, transformer_day: int = 0) -> FeasibilityService:
    with engine.begin() as conn:
        store_grid(
            conn,
            substation("S1", 0, 600, area=SupplyAreaClass.B),
            main_transformer("S1-T1", "S1", 50_000),
            main_transformer("S1-T2", "S1", 50_000),
            feeder("F1", "S1", 300, ties=1),
            transformer("T1", "F1", "S1", 50, rated_kva=400),
        )
        store_peak(conn, "T1", 150.0, TODAY - timedelta(days=transformer_day))
        store_peak(conn, "F1", feeder_rate * CAPACITY_485A * 0.9)
        store_peak(conn, "S1-T1", 9_000.0)
        store_peak(conn, "S1-T2", 9_000.0)
    return FeasibilityService(load_feasibility_config(ROOT), clock=lambda: NOW)


def test_an_existing_deficiency_is_kept_apart_and_the_request_still_reserves(sqlite_engine: Engine) -> None:
    service = _grid(sqlite_engine, feeder_rate=0.6)
    with sqlite_engine.begin() as conn:
        outcome = service.assess_application(conn, application("A1", 100), correlation_id="c")
    assessment = outcome.assessment
    # F1 at 60% against its one-tie N-1 limit of 50% (class B, from its substation) before A1 applied.
    assert assessment.verdict == "feasible_with_conditions"
    assert [(e.equipment_id, e.rule) for e in assessment.existing_grid] == [("F1", "feeder_n_minus_1")]
    assert assessment.reinforcement == ()
    with sqlite_engine.connect() as conn:
        kept = service.stored(conn, "A1")
        held = reservations(conn)
    assert kept is not None
    assert kept["existing_grid"][0]["shortfall_before_kva"] == round(0.1 * CAPACITY_485A, 3)
    assert kept["increment_kva"] == 100
    # It can be connected: its 100 kVA is promised on T1.
    assert held == [("A1", "T1", 100.0)]


def test_stale_load_data_gives_insufficient_data_and_reserves_nothing(sqlite_engine: Engine) -> None:
    service = _grid(sqlite_engine, feeder_rate=0.3, transformer_day=10)  # T1's last profile: 10 days old
    with sqlite_engine.begin() as conn:
        outcome = service.assess_application(conn, application("A2", 100), correlation_id="c")
    assert outcome.assessment.verdict == "insufficient_data"
    assert outcome.reserved_kva == 0
    assert outcome.event is not None and outcome.event.data["verdict"] == "insufficient_data"
    with sqlite_engine.connect() as conn:
        assert reservations(conn) == []


def test_the_applications_industry_sets_its_demand_factor(sqlite_engine: Engine) -> None:
    service = _grid(sqlite_engine, feeder_rate=0.3)
    factory = application("A3", 150).model_copy(update={"industry_code": "C3110"})
    with sqlite_engine.begin() as conn:
        outcome = service.assess_application(conn, factory, correlation_id="c")
    # C31 (ferrous smelting) 0.8: 150 x 0.8 = 120 kVA added; the full 150 kVA requested is what is held.
    assert (outcome.assessment.demand_factor, outcome.assessment.increment_kva) == (0.8, 120)
    with sqlite_engine.connect() as conn:
        assert reservations(conn) == [("A3", "T1", 150.0)]
