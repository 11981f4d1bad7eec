"""Reading the engine's inputs: the load basis over the window, stale and incomplete data, and the power
factor measured at the peak."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from feasibility.config import load_feasibility_config
from feasibility.inputs import basis_dates, equipment_of, read_loads
from feasibility.service import FeasibilityService
from tests.unit.feasibility.builders import (
    LV_UPSTREAM_PEAKS_KW,
    NOW,
    ROOT,
    TODAY,
    default_rules,
    lv_upstream,
    request,
    store_grid,
    store_peak,
    store_power_factors,
    transformer,
)

RULES = default_rules()


def test_the_basis_is_the_highest_good_day_of_the_last_twelve_months(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        store_peak(conn, "T1", 120.0, TODAY - timedelta(days=1))
        store_peak(conn, "T1", 310.0, TODAY - timedelta(days=200))  # last summer's peak
        store_peak(conn, "T1", 500.0, TODAY - timedelta(days=170), good=40)  # too few good points
        store_peak(conn, "T1", 80.0, TODAY - timedelta(days=360))  # the record fills the window
        store_peak(conn, "T1", 900.0, TODAY - timedelta(days=400))  # before the window
    with sqlite_engine.connect() as conn:
        reading = read_loads(conn, ["T1"], RULES, TODAY)["T1"]
    assert (reading.peak_kw, reading.data_date) == (310.0, TODAY - timedelta(days=200))
    assert reading.problem is None
    assert reading.basis is not None and "highest of 3 good day(s) in the last 365 days" in reading.basis
    assert "season" not in reading.basis


def test_a_short_record_adds_last_years_season(sqlite_engine: Engine) -> None:
    rules = dataclasses.replace(RULES, window_days=90)
    _, window, (season_from, season_to) = basis_dates(rules, TODAY)
    # Window: the last 90 days; season: 45 days either side of TODAY a year ago.
    assert (window, season_from, season_to) == (
        TODAY - timedelta(days=90),
        TODAY - timedelta(days=410),
        TODAY - timedelta(days=320),
    )
    with sqlite_engine.begin() as conn:
        store_peak(conn, "T1", 100.0, TODAY - timedelta(days=2))
        store_peak(conn, "T1", 180.0, TODAY - timedelta(days=370))  # last year's winter
        store_peak(conn, "T2", 100.0, TODAY - timedelta(days=2))
        store_peak(conn, "T2", 50.0, TODAY - timedelta(days=90))  # a full window
        store_peak(conn, "T2", 180.0, TODAY - timedelta(days=370))
    with sqlite_engine.connect() as conn:
        readings = read_loads(conn, ["T1", "T2"], rules, TODAY)
    # T1's record starts 2 days ago: shorter than the window, so last year's season counts.
    assert readings["T1"].peak_kw == 180.0
    assert readings["T1"].basis is not None and "last year's season" in readings["T1"].basis
    # T2's record fills the window: its own peak stands.
    assert readings["T2"].peak_kw == 100.0


def test_stale_missing_and_incomplete_data_give_no_basis(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        store_peak(conn, "OLD", 200.0, TODAY - timedelta(days=8))  # max age is 7 days
        store_peak(conn, "GAPPY", 200.0, TODAY - timedelta(days=1), good=50)
        store_peak(conn, "GAPPY", 300.0, TODAY - timedelta(days=30))
    with sqlite_engine.connect() as conn:
        readings = read_loads(conn, ["OLD", "GAPPY", "NONE"], RULES, TODAY)
    assert readings["OLD"].peak_kw is None
    assert readings["OLD"].problem is not None and readings["OLD"].problem.startswith("stale")
    # A month-old good day does not stand in for a recent day that is mostly gaps.
    assert readings["GAPPY"].peak_kw is None
    assert readings["GAPPY"].problem is not None and readings["GAPPY"].problem.startswith("incomplete")
    assert readings["NONE"].problem == "no load profile"


def test_the_engine_sees_the_area_class_and_route_of_grid_documents() -> None:
    document = transformer("T1", "F1", "S1", 0, route_m=1200).model_dump(mode="json", exclude_none=True)
    item = equipment_of("transformer", {**document, "supply_area_class": "C"})
    assert (item.area_class, item.route_length_m) == ("C", 1200)


@pytest.mark.parametrize("factors_first", [False, True])
def test_the_power_factor_measured_at_the_peak_point_comes_with_the_basis(
    sqlite_engine: Engine, factors_first: bool
) -> None:
    peak_day, other_day = TODAY - timedelta(days=1), TODAY - timedelta(days=2)
    with sqlite_engine.begin() as conn:
        if factors_first:
            store_power_factors(conn, "T1", {80: 0.8, 81: 0.6}, peak_day)
        # T1 peaks at 400 kW at point 80 (20:00-20:15) of peak_day, where its meter read 0.8; 0.6 one point
        # later and 0.5 on a lower day do not count.
        store_peak(conn, "T1", 400.0, peak_day, at=80)
        store_peak(conn, "T1", 300.0, other_day, at=80)
        store_power_factors(conn, "T1", {80: 0.5}, other_day)
        if not factors_first:
            store_power_factors(conn, "T1", {80: 0.8, 81: 0.6}, peak_day)
        store_peak(conn, "NO_CURVE", 400.0, peak_day, at=80)
        store_peak(conn, "NOT_GOOD", 400.0, peak_day, at=80)
        store_power_factors(conn, "NOT_GOOD", {80: None}, peak_day)  # missing or flagged at the peak
    with sqlite_engine.connect() as conn:
        readings = read_loads(conn, ["T1", "NO_CURVE", "NOT_GOOD"], RULES, TODAY)
    assert (readings["T1"].peak_kw, readings["T1"].data_date) == (400.0, peak_day)
    assert readings["T1"].power_factor == 0.8
    assert readings["T1"].basis is not None
    assert readings["T1"].basis.endswith(f"peak on {peak_day} at 20:00-20:15")
    assert readings["NO_CURVE"].power_factor is None and readings["NO_CURVE"].peak_kw == 400.0
    assert readings["NOT_GOOD"].power_factor is None


def test_the_engine_turns_the_peak_into_kva_with_the_measured_factor_where_there_is_one(
    sqlite_engine: Engine,
) -> None:
    day = TODAY - timedelta(days=1)
    with sqlite_engine.begin() as conn:
        store_grid(
            conn, *lv_upstream(), transformer("T1", "F1", "S1", 50), transformer("T2", "F1", "S1", -50)
        )
        for equipment_id, peak_kw in LV_UPSTREAM_PEAKS_KW.items():
            store_peak(conn, equipment_id, peak_kw, day)
        store_peak(conn, "T1", 400.0, day, at=80)
        store_power_factors(conn, "T1", {80: 0.8}, day)
        store_peak(conn, "T2", 400.0, day, at=80)
    service = FeasibilityService(load_feasibility_config(ROOT), clock=lambda: NOW)
    with sqlite_engine.connect() as conn:
        assessment = service.preview(conn, request(50))
    basis = {check.subject: check for check in assessment.trace if check.rule == "load_basis"}
    # T1: 400 kW / 0.8 measured at its peak = 500 kVA.
    assert basis["T1"].inputs["power_factor"] == 0.8
    assert basis["T1"].inputs["power_factor_from"] == "measured"
    assert basis["T1"].detail.endswith("400.0 kW / 0.8 (measured power factor) = 500.0 kVA")
    # T2 has no factor curve: 400 kW / 0.9 (rules.yaml power_factor) = 444.4 kVA.
    assert basis["T2"].inputs["power_factor"] == 0.9
    assert basis["T2"].inputs["power_factor_from"] == "configured"
    assert basis["T2"].detail.endswith("400.0 kW / 0.9 (configured power factor) = 444.4 kVA")


@pytest.mark.parametrize("count", [1, 40])
def test_the_measured_factors_cost_one_query_however_many_pieces_of_equipment(
    sqlite_engine: Engine, count: int
) -> None:
    day = TODAY - timedelta(days=1)
    ids = [f"T{n}" for n in range(count)]
    with sqlite_engine.begin() as conn:
        for equipment_id in ids:
            store_peak(conn, equipment_id, 400.0, day, at=80)
            store_power_factors(conn, equipment_id, {80: 0.8}, day)
    statements: list[str] = []
    sa.event.listen(sqlite_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with sqlite_engine.connect() as conn:
        readings = read_loads(conn, ids, RULES, TODAY)
    assert {reading.power_factor for reading in readings.values()} == {0.8}
    # Each one's days summed up in the database, the peak days, then the factor curves of every peak day.
    assert len(statements) == 3
