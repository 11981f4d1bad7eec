"""The forecasting model, backtested on real demand (Taylor 2003) and on a simulated year of known trend."""

from __future__ import annotations

from datetime import date

import numpy as np
import numpy.typing as npt
import pmdarima
import pytest

from forecast.history import monthly_peaks
from forecast.model import ForecastError, forecast_series
from forecast.trend import Trend
from tests.unit.forecast import simulated

HALF_HOURS_PER_DAY = 48
HALF_HOURS_PER_WEEK = 7 * HALF_HOURS_PER_DAY
HELD_OUT = 14 * HALF_HOURS_PER_DAY  # the last two weeks: 672 half-hours


def mape(actual: npt.NDArray[np.float64], forecast: npt.NDArray[np.float64]) -> float:
    """Mean absolute percentage error, in percent."""
    return float(np.mean(np.abs((actual - forecast) / actual)) * 100)


def test_the_forecaster_beats_seasonal_naive_on_england_and_wales_demand(
    backtest_results: dict[str, dict[str, float | str]],
) -> None:
    demand = np.asarray(pmdarima.datasets.load_taylor(), dtype=np.float64)
    assert len(demand) == 4032  # 12 weeks of half-hours, June to August 2000
    train, actual = demand[:-HELD_OUT], demand[-HELD_OUT:]

    forecast = forecast_series(
        train, HELD_OUT, season_lengths=(HALF_HOURS_PER_DAY, HALF_HOURS_PER_WEEK), levels=(80, 95)
    )
    # Seasonal naive: each half-hour as it was one week earlier, the training's last week repeated.
    naive = np.resize(train[-HALF_HOURS_PER_WEEK:], HELD_OUT)
    ours, baseline = mape(actual, forecast.mean), mape(actual, naive)
    covered = float(np.mean((actual >= forecast.bands[95].lower) & (actual <= forecast.bands[95].upper)))
    backtest_results["taylor_2003_14_days"] = {
        "model": forecast.model,
        "mape_pct": round(ours, 2),
        "seasonal_naive_mape_pct": round(baseline, 2),
        "coverage_95": round(covered, 3),
    }

    assert forecast.model.startswith("MSTL(48,336)+ETS(A,")
    assert ours < baseline
    assert covered >= 0.9


SEEDS = range(10)


def test_the_forecaster_recovers_a_known_growth_on_held_out_simulated_years(
    backtest_results: dict[str, dict[str, float | str]],
) -> None:
    # Ten seeded draws of five years from 2021; the first four train, the fifth (2025) is held out.
    # One draw's weather can move a year's growth by 30 kW either way, so the draws are judged together.
    growths, ours, baseline, covered, models = [], [], [], 0, set()
    for seed in SEEDS:
        days = simulated.daily_peaks(date(2021, 1, 1), (date(2026, 1, 1) - date(2021, 1, 1)).days, seed=seed)
        train = monthly_peaks((d for d in days if d[0].year < 2025), before=date(2025, 1, 1), min_days=28)
        held = monthly_peaks(days, before=date(2026, 1, 1), min_days=28).peaks[-12:]
        assert train.first_month == date(2021, 1, 1) and len(train.peaks) == 48
        actual = np.asarray(held, dtype=np.float64)
        forecast = forecast_series(train.peaks, 12, season_lengths=(12,), levels=(80, 95))
        models.add(forecast.model)
        growths.append(float(np.mean(forecast.mean) - np.mean(train.peaks[-12:])))
        ours.append(mape(actual, forecast.mean))
        # Last year's month again: it misses a year of growth, 80 kW on peaks of about 1,250 kW (~6%).
        baseline.append(mape(actual, np.asarray(train.peaks[-12:], dtype=np.float64)))
        band = forecast.bands[95]
        covered += int(np.sum((actual >= band.lower) & (actual <= band.upper)))
    growth, coverage = float(np.mean(growths)), covered / (12 * len(SEEDS))
    backtest_results["simulated_year"] = {
        "draws": len(SEEDS),
        "models": " / ".join(sorted(models)),
        "mape_pct": round(float(np.mean(ours)), 2),
        "seasonal_naive_mape_pct": round(float(np.mean(baseline)), 2),
        "growth_kw_per_year": round(growth, 1),
        "known_growth_kw_per_year": simulated.GROWTH_KW_PER_YEAR,
        "coverage_95": round(coverage, 3),
    }

    # Every term of the simulation is additive, so a year of the monthly peak grows by the level's
    # growth (80 kW) up to noise. The mean of ten draws varies by about a third of one draw's spread,
    # so ±10 kW (an eighth of the growth) holds it to two of its standard deviations.
    assert abs(growth - simulated.GROWTH_KW_PER_YEAR) <= 10
    # Half the seasonal-naive miss: the forecaster must have found the growth, not only the seasons.
    assert np.mean(ours) < 3.0
    assert np.mean(ours) < np.mean(baseline)
    # Most months, though fewer than 95%: the interval carries the trend's and the noise's uncertainty
    # but not that of the seasonal shape, which four years estimate only roughly (see forecast/model.py).
    assert coverage >= 0.75


def test_a_series_without_two_full_cycles_is_forecast_without_that_season() -> None:
    # 18 months of a straight line: a yearly season needs 24, so none is fitted, and the additive
    # trend continues the line exactly (10 per month).
    line = [100.0 + 10 * n for n in range(18)]
    forecast = forecast_series(line, 3, season_lengths=(12,), levels=(95,), trend=Trend.ADDITIVE)
    assert forecast.model == "ETS(A,A,N)"
    assert forecast.mean == pytest.approx([280.0, 290.0, 300.0], abs=0.5)


@pytest.mark.parametrize(
    ("values", "horizon", "message"),
    [
        ([1.0, 2.0, 3.0], 1, "at least 4 values"),
        ([1.0, 2.0, float("nan"), 4.0, 5.0], 1, "missing or infinite"),
        ([1.0, 2.0, 3.0, 4.0], 0, "at least 1 step"),
    ],
)
def test_series_the_model_cannot_forecast_are_refused_with_the_reason(
    values: list[float], horizon: int, message: str
) -> None:
    with pytest.raises(ForecastError, match=message):
        forecast_series(values, horizon, season_lengths=(12,), levels=(95,))
