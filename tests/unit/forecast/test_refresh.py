"""The forecast refresh over a small seeded grid (tests/unit/forecast/grid.py): forecasts kept, history
too short recorded as such, planning alerts raised once per crossing through the outbox."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical_model.events import CAPACITY_FORECAST_EXCEEDED
from feasibility.config import load_feasibility_config
from forecast.config import load_forecast_config
from forecast.refresh import ForecastLoop, RefreshSettings, refresh_forecasts
from ground import clock
from store.feasibility import capacity_reservations
from store.forecast import equipment_forecasts, stored_alerts
from store.loads import load_profiles
from store.schema import outbox
from tests.unit.feasibility.builders import ROOT
from tests.unit.forecast.grid import NOW, reserve_on_t1, seed_grid


@pytest.fixture(scope="module")
def settings() -> RefreshSettings:
    # A chunk of two: S1, F1 and T1 take two chunks, so the batching is exercised.
    return RefreshSettings(
        rules=load_feasibility_config(ROOT),
        config=load_forecast_config(ROOT),
        exchange="yekuo.events",
        chunk_size=2,
    )


def _events(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.event_type, outbox.c.subject, outbox.c.routing_key).order_by(outbox.c.id)
        )
        return [tuple(row) for row in rows]


def _kept(engine: Engine) -> dict[str, tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                equipment_forecasts.c.equipment_id, equipment_forecasts.c.status, equipment_forecasts.c.reason
            )
        )
        return {row[0]: (row[1], row[2]) for row in rows}


def test_every_equipment_is_forecast_or_recorded_as_too_short_and_the_crossing_raised_once(
    sqlite_engine: Engine, settings: RefreshSettings
) -> None:
    with sqlite_engine.begin() as conn:
        seed_grid(conn)
        # 100 kVA x 0.6 = 60 kVA on T1 and F1 from May 2026 (4 months after January).
        reserve_on_t1(conn, "A1", 100, date(2026, 5, 20))
    report = refresh_forecasts(sqlite_engine, settings, now=NOW)

    kept = _kept(sqlite_engine)
    assert kept["F1"] == ("forecast", None)
    assert kept["T1"] == ("forecast", None)
    status, reason = kept["S1"]
    assert status == "insufficient_history"
    assert reason is not None and "no month has 20 complete days" in reason
    assert (report.equipment, report.forecast, report.insufficient, report.raised) == (3, 2, 1, 1)
    # Two years of one row a day for F1 and T1: 731 days each (2024 is a leap year), plus 14 of January.
    assert report.rows_read == 2 * (731 + 14)

    [alert] = stored_alerts(sqlite_engine.connect())
    # T1: 300 kVA measured until April, 300 + 60 = 360 kVA from May, over 400 x 0.8 = 320 kVA.
    # F1 stays below its N-1 limit: 3600 + 60 = 3660 <= 4200.2 kVA.
    assert alert.equipment_id == "T1"
    assert (alert.crossing_month, alert.months_ahead) == ("2026-05", 4)
    assert (alert.limit_rule, alert.limit_rate, alert.limit_kva) == ("transformer_load_rate", 0.8, 320.0)
    assert (alert.peak_kva, alert.measured_kva, alert.pipeline_kva) == (360.0, 300.0, 60.0)
    assert alert.pipeline_share == 0.1667  # 60 / 360
    # A flat history has no spread: both intervals are the peak itself.
    assert [(band.level, band.lower_kva, band.upper_kva) for band in alert.intervals] == [
        (80, 360.0, 360.0),
        (95, 360.0, 360.0),
    ]
    assert _events(sqlite_engine) == [
        (CAPACITY_FORECAST_EXCEEDED, "T1", "grid.capacity_forecast_exceeded.transformer")
    ]


def test_the_same_crossing_is_not_raised_again_a_changed_one_is_and_a_gone_one_is_cleared(
    sqlite_engine: Engine, settings: RefreshSettings
) -> None:
    with sqlite_engine.begin() as conn:
        seed_grid(conn)
        reserve_on_t1(conn, "A1", 100, date(2026, 5, 20))
    refresh_forecasts(sqlite_engine, settings, now=NOW)

    again = refresh_forecasts(sqlite_engine, settings, now=NOW + timedelta(days=1))
    assert (again.raised, again.unchanged) == (0, 1)
    assert len(_events(sqlite_engine)) == 1

    with sqlite_engine.begin() as conn:
        # 200 x 0.6 = 120 kVA from March: 300 + 120 = 420 > 320, two months earlier.
        reserve_on_t1(conn, "A2", 200, date(2026, 3, 10))
    earlier = refresh_forecasts(sqlite_engine, settings, now=NOW + timedelta(days=2))
    assert earlier.raised == 1
    [alert] = stored_alerts(sqlite_engine.connect())
    assert (alert.crossing_month, alert.peak_kva, alert.pipeline_share) == (
        "2026-03",
        420.0,
        0.2857,
    )  # 120/420
    assert [event[1] for event in _events(sqlite_engine)] == ["T1", "T1"]

    with sqlite_engine.begin() as conn:
        # Both energised: their load is in the measurements from now on, not in the pipeline.
        conn.execute(capacity_reservations.update().values(energised_at=NOW))
    gone = refresh_forecasts(sqlite_engine, settings, now=NOW + timedelta(days=3))
    assert (gone.raised, gone.cleared) == (0, 1)
    assert stored_alerts(sqlite_engine.connect()) == []


def test_equipment_gone_from_the_grid_loses_its_forecast_after_a_whole_refresh(
    sqlite_engine: Engine, settings: RefreshSettings
) -> None:
    with sqlite_engine.begin() as conn:
        seed_grid(conn)
        conn.execute(
            equipment_forecasts.insert().values(
                equipment_id="OLD", kind="feeder", status="forecast", computed_at=NOW - timedelta(days=9)
            )
        )
    refresh_forecasts(sqlite_engine, settings, now=NOW)
    assert sorted(_kept(sqlite_engine)) == ["F1", "S1", "T1"]


def test_the_hub_duty_refreshes_at_start_and_then_once_an_interval(
    sqlite_engine: Engine, settings: RefreshSettings
) -> None:
    with sqlite_engine.begin() as conn:
        seed_grid(conn)
    ticks = iter([0.0, 10.0, 3600.0])
    loop = ForecastLoop(sqlite_engine, settings, 3600.0, timer=lambda: next(ticks))
    with clock.use(lambda: NOW):
        loop.step()
        first = loop.last_report
        assert first is not None and first.forecast == 2
        loop.step()  # 10 s later: not due
        assert loop.last_report is first
        loop.step()  # an interval later
    assert loop.last_report is not first


def test_a_history_the_model_cannot_take_is_recorded_with_the_reason_and_the_rest_goes_on(
    sqlite_engine: Engine, settings: RefreshSettings
) -> None:
    with sqlite_engine.begin() as conn:
        seed_grid(conn)
        # An infinite reading makes June 2025's peak infinite: no model can fit it.
        conn.execute(
            load_profiles.update()
            .where(load_profiles.c.equipment_id == "T1", load_profiles.c.data_date == date(2025, 6, 2))
            .values(peak_kw=float("inf"))
        )
    report = refresh_forecasts(sqlite_engine, settings, now=NOW)
    assert (report.forecast, report.failed, report.insufficient) == (1, 1, 1)
    assert _kept(sqlite_engine)["T1"] == ("model_error", "the series holds missing or infinite values")
