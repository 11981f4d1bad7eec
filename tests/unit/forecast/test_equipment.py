"""The equipment forecaster: history checks, the pipeline's effect, and both read from the hub database."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy.engine import Engine

from canonical_model.application import ConnectionApplication
from feasibility.config import FeasibilityConfig, load_feasibility_config
from forecast.config import ForecastConfig, load_forecast_config
from forecast.equipment import (
    InsufficientHistoryError,
    build_forecast,
    forecast_equipment,
    pipeline_applications,
)
from forecast.inputs import PipelineRow
from tests.unit.feasibility.builders import ROOT, application
from tests.unit.forecast import simulated
from tests.unit.forecast.builders import store_days, store_pipeline

TODAY = date(2026, 1, 15)
NOW = datetime(2026, 1, 15, 4, 0, tzinfo=UTC)
HISTORY_START = date(2022, 1, 1)  # four full years before TODAY's month


@pytest.fixture(scope="module")
def rules() -> FeasibilityConfig:
    return load_feasibility_config(ROOT)


@pytest.fixture(scope="module")
def config() -> ForecastConfig:
    return load_forecast_config(ROOT)


def _days(start: date = HISTORY_START, end: date = TODAY) -> list[tuple[date, float]]:
    return simulated.daily_peaks(start, (end - start).days, seed=3)


def _manufacturer(number: str) -> ConnectionApplication:
    # GB/T 4754 section C (manufacturing): demand factor 0.6 in the shipped rules.
    return application(number, 500).model_copy(update={"industry_code": "C3411"})


def test_an_application_of_500_kva_at_factor_0_6_expected_in_month_4_adds_300_kva_from_month_4(
    rules: FeasibilityConfig, config: ForecastConfig
) -> None:
    # TODAY is in January 2026, so month 1 is February and month 4 is May 2026.
    row = PipelineRow("A1", 500.0, _manufacturer("A1").model_dump(mode="json"), "default", date(2026, 5, 20))
    [item] = pipeline_applications([row], rules, config, date(2026, 1, 1))
    assert (item.demand_factor, item.factor_source, item.increment_kva) == (0.6, "industry C", 300.0)
    assert item.counted_from == "2026-05"

    default = rules.default
    alone = build_forecast("T1", _days(), [], today=TODAY, rules=default, config=config)
    loaded = build_forecast("T1", _days(), [item], today=TODAY, rules=default, config=config)

    assert [m.month for m in loaded.months[:5]] == ["2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
    assert [m.pipeline_kva for m in loaded.months[:6]] == [0, 0, 0, 300, 300, 300]
    assert all(m.pipeline_kva == 300 for m in loaded.months[3:])
    for before, after in zip(alone.months, loaded.months, strict=True):
        assert after.measured_kva == before.measured_kva
        assert after.peak_kva == pytest.approx(before.peak_kva + after.pipeline_kva, abs=0.1)
        for plain, shifted in zip(before.intervals, after.intervals, strict=True):
            assert shifted.lower_kva == pytest.approx(plain.lower_kva + after.pipeline_kva, abs=0.1)
            assert shifted.upper_kva == pytest.approx(plain.upper_kva + after.pipeline_kva, abs=0.1)
    may = loaded.months[3]
    # The share is the pipeline's part of the month's peak: 300 / peak.
    assert may.pipeline_share == pytest.approx(300 / may.peak_kva, abs=1e-4)
    assert loaded.months[2].pipeline_share == 0


def test_the_forecast_answers_36_months_in_kva_with_both_intervals_around_the_peak(
    config: ForecastConfig, rules: FeasibilityConfig
) -> None:
    found = build_forecast("T1", _days(), [], today=TODAY, rules=rules.default, config=config)
    assert (found.history_from, found.history_to, found.history_months) == ("2022-01", "2025-12", 48)
    assert found.model.startswith("MSTL(12)+ETS(A,")
    assert len(found.months) == 36 and found.months[-1].month == "2029-01"
    # The simulation peaks near 1,000 + 80/year + 250 in July: July 2026, 4.5 years on, is about
    # 1,610 kW, 1,790 kVA at the shipped power factor 0.9; the noise adds up to a few tens of kW.
    july = next(m for m in found.months if m.month == "2026-07")
    assert 1700 < july.peak_kva < 1900
    for month in found.months:
        inner, outer = month.intervals
        assert (inner.level, outer.level) == (80, 95)
        assert outer.lower_kva <= inner.lower_kva <= month.peak_kva <= inner.upper_kva <= outer.upper_kva


def test_a_late_or_undated_application_counts_from_the_first_month(
    rules: FeasibilityConfig, config: ForecastConfig
) -> None:
    document = _manufacturer("A1").model_dump(mode="json")
    rows = [
        PipelineRow("A1", 500.0, document, "default", None),  # paused case: no deadline
        PipelineRow("A2", 500.0, document, "default", date(2025, 12, 30)),  # deadline passed
        PipelineRow("A3", 500.0, document, "default", date(2026, 1, 31)),  # due this month
        PipelineRow("A4", 500.0, document, "default", date(2030, 6, 1)),  # beyond the horizon
    ]
    found = pipeline_applications(rows, rules, config, date(2026, 1, 1))
    assert [item.counted_from for item in found] == ["2026-02", "2026-02", "2026-02", "2030-06"]
    forecast = build_forecast("T1", _days(), found, today=TODAY, rules=rules.default, config=config)
    # Three of 300 kVA count from month 1; the fourth lies after the 36th month (January 2029).
    assert {m.pipeline_kva for m in forecast.months} == {900}


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (date(2024, 2, 1), TODAY, "23 consecutive complete months up to 2025-12; 24 are needed"),
        (date(2021, 1, 1), date(2025, 9, 1), "the latest complete month is 2025-08, more than 3 months"),
        (TODAY, TODAY, "no month has 20 complete days"),
    ],
)
def test_a_history_too_short_or_stale_is_refused_with_the_reason(
    rules: FeasibilityConfig, config: ForecastConfig, start: date, end: date, message: str
) -> None:
    with pytest.raises(InsufficientHistoryError, match=message):
        build_forecast("T1", _days(start, end), [], today=TODAY, rules=rules.default, config=config)


def test_a_gap_of_a_short_month_ends_the_history_there(
    rules: FeasibilityConfig, config: ForecastConfig
) -> None:
    # March 2024 keeps only 10 days: the run restarts in April 2024, 21 months to December 2025.
    days = [
        (day, peak) for day, peak in _days() if not (day.year == 2024 and day.month == 3 and day.day > 10)
    ]
    with pytest.raises(InsufficientHistoryError, match="21 consecutive complete months"):
        build_forecast("T1", days, [], today=TODAY, rules=rules.default, config=config)


def test_the_forecast_reads_complete_days_and_the_open_pipeline_from_the_database(
    sqlite_engine: Engine, rules: FeasibilityConfig, config: ForecastConfig
) -> None:
    with sqlite_engine.begin() as conn:
        store_days(conn, "F1", _days())
        # Incomplete days at ten times the load: a forecast that counted them would be far off.
        store_days(conn, "F1", [(date(2021, 6, n), 20_000.0) for n in range(1, 29)], good=40)
        store_pipeline(
            conn, _manufacturer("A1"), feeder_id="F1", point_id="T9", reserved_kva=500,
            deadline=date(2026, 5, 20), reserved_at=NOW,
        )  # fmt: skip
        store_pipeline(
            conn, _manufacturer("A2"), feeder_id="F1", point_id="T9", reserved_kva=500,
            deadline=date(2026, 3, 2), reserved_at=NOW, energised_at=NOW,
        )  # fmt: skip
        store_pipeline(
            conn, _manufacturer("A3"), feeder_id="F2", point_id="T8", reserved_kva=500,
            deadline=date(2026, 3, 2), reserved_at=NOW,
        )  # fmt: skip
    with sqlite_engine.connect() as conn:
        found = forecast_equipment(
            conn, "F1", now=NOW, today=TODAY, rules=rules, province=None, config=config
        )
    a1 = PipelineRow("A1", 500.0, _manufacturer("A1").model_dump(mode="json"), "default", date(2026, 5, 20))
    pipeline = pipeline_applications([a1], rules, config, date(2026, 1, 1))
    expected = build_forecast("F1", _days(), pipeline, today=TODAY, rules=rules.default, config=config)
    # A2 is energised (its load is in the measurements now) and A3 loads another feeder.
    assert [item.application_no for item in found.pipeline] == ["A1"]
    assert found == expected
