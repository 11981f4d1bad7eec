"""Reading the engine's inputs: the load basis over the window, stale and incomplete data."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from sqlalchemy.engine import Engine

from feasibility.inputs import basis_dates, equipment_of, read_loads
from tests.unit.feasibility.builders import TODAY, default_rules, store_peak, transformer

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
