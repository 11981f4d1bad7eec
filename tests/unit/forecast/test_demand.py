"""Demand forecast by supply unit, section and load type, and EV-charging growth, against the marketing
simulator's documented history (simulators/marketing/history.py)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.engine import Engine

from canonical_model.application import LoadType
from forecast.applied import DemandHistory
from forecast.demand import DemandFilter, InsufficientDemandHistoryError, forecast_demand
from forecast.demand_config import load_demand_config
from forecast.ev_growth import InsufficientEvHistoryError, ev_growth
from ground.settings import PROJECT_ROOT
from simulators.marketing import history as simulated
from store.database import create_engine, create_schema
from tests.unit.forecast.demand_builders import history_of, simulated_applications

CONFIG = load_demand_config(PROJECT_ROOT)
# 2021-2025 at 2,000 applications in the first year; the forecasts stand early in 2026.
TODAY = date(2026, 1, 10)


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> DemandHistory:
    """The history as the hub reads it back, stored once for the module's tests, which only read it."""
    engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('demand')}/hub.db")
    create_schema(engine)
    try:
        with engine.begin() as conn:
            return history_of(conn, simulated_applications(8, 2021, 5, 2000))
    finally:
        engine.dispose()


def test_the_next_year_of_applications_matches_the_simulated_volume(held: DemandHistory) -> None:
    result = forecast_demand(held, DemandFilter(), today=TODAY, months=12, settings=CONFIG.demand)
    assert [month.month for month in result.forecast] == [f"2026-{m:02d}" for m in range(1, 13)]
    assert result.history[0].month == "2021-01" and result.history[-1].month == "2025-12"
    assert result.applications_model.startswith("MSTL(12)+")
    # Truth: 2026 is year 5, 2,000 x 1.05^5 = 2,553 applications, about 90% of them new connections and
    # increases (seed.py's weights 70 + 20 of 100): 2,297, 191 a month. The trend is fitted to monthly
    # counts whose Poisson noise is about 14 a month, so the year's sum is held to 10%.
    truth_month = 2000 * 1.05**5 * 0.9 / 12
    total = sum(month.applications.mean for month in result.forecast)
    assert total == pytest.approx(12 * truth_month, rel=0.1)
    covered = sum(
        1
        for month in result.forecast
        for band in month.applications.intervals
        if band.level == 95 and band.lower <= truth_month <= band.upper
    )
    assert covered >= 10


def test_unit_section_and_load_type_partition_the_history(held: DemandHistory) -> None:
    def monthly(selection: DemandFilter) -> list[int]:
        result = forecast_demand(held, selection, today=TODAY, months=1, settings=CONFIG.demand)
        return [month.applications for month in result.history]

    everything = monthly(DemandFilter())
    by_type = [monthly(DemandFilter(load_type=kind)) for kind in LoadType]
    assert [sum(counts) for counts in zip(*by_type, strict=True)] == everything
    units = sorted({record.unit for record in held.records if record.unit})
    assert len(units) == 7
    by_unit = [monthly(DemandFilter(unit=unit)) for unit in units]
    assert [sum(counts) for counts in zip(*by_unit, strict=True)] == everything
    # Residential applications carry no trade code; hospitals are section Q (Q8411) only.
    hospitals = forecast_demand(
        held, DemandFilter(section="Q"), today=TODAY, months=3, settings=CONFIG.demand
    )
    assert 0 < sum(month.applications for month in hospitals.history) < sum(everything) / 50
    assert all(band.lower >= 0 for month in hospitals.forecast for band in month.requested_kva.intervals)


def test_ev_growth_recovers_the_simulated_adoption(held: DemandHistory) -> None:
    result = ev_growth(held, this_year=2026, settings=CONFIG.ev_growth)
    assert [year.year for year in result.years] == [2021, 2022, 2023, 2024, 2025]
    # Truth: EV applications grow by 1.05 x 1.6 - 1 = 68% a year, in number and in kVA. Over eight seeds the
    # estimate lay between 0.62 and 0.75 (some 70 to 600 a year, Poisson noise), hence 0.12.
    truth = (1 + simulated.APPLICATION_GROWTH) * (1 + simulated.EV_ADOPTION_GROWTH) - 1
    assert result.applications_growth == pytest.approx(truth, abs=0.12)
    assert result.kva_growth == pytest.approx(truth, abs=0.12)
    # The third projected year (2028) against 2025's kVA grown three years at the true rate.
    expected_2028 = result.years[-1].requested_kva * (1 + truth) ** 3
    last = result.projection[-1]
    assert last.year == 2028
    band = next(band for band in last.requested_kva.intervals if band.level == 95)
    assert band.lower <= expected_2028 <= band.upper
    assert result.kva_growth_over_projection == pytest.approx(
        last.requested_kva.mean / result.years[-1].requested_kva - 1, abs=1e-3
    )


def test_too_short_histories_are_refused(held: DemandHistory) -> None:
    with pytest.raises(
        InsufficientDemandHistoryError, match="12 complete months of applications, fewer than the 24"
    ):
        forecast_demand(held, DemandFilter(), today=date(2022, 1, 5), months=12, settings=CONFIG.demand)
    with pytest.raises(
        InsufficientEvHistoryError, match=r"no EV-charging application in \[2016, 2017, 2018, 2019, 2020\]"
    ):
        ev_growth(held, this_year=2021, settings=CONFIG.ev_growth)
    with pytest.raises(InsufficientDemandHistoryError, match="holds no application"):
        forecast_demand(DemandHistory([], 0), DemandFilter(), today=TODAY, months=1, settings=CONFIG.demand)


def test_cases_whose_application_cannot_be_read_are_counted(sqlite_engine: Engine) -> None:
    good = simulated_applications(8, 2021, 5, 2000)[0]
    broken = [{"application_no": "B1"}, {**good, "application_no": "B2", "submitted_at": "yesterday"}]
    with sqlite_engine.begin() as conn:
        held = history_of(conn, [good, *broken])
    assert held.unreadable == 2
    assert len(held.records) == 1
