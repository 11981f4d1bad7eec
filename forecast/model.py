"""The forecasting model every forecast of the hub goes through: a series and a horizon in, means and
prediction intervals out.

The series is decomposed with statsmodels' MSTL over each season length that fits at least twice in it,
with R's STL settings (seasonal_deg=0, as forecast::mstl and statsforecast use: the statsmodels default
of a local-linear seasonal fit tracks noise into the seasonal shape and doubled the MAPE on Taylor's
data). The seasonally adjusted series is forecast by statsmodels' ETSModel with additive errors, one
fit per candidate trend, and the fit of lowest AICc is kept; each season continues as its last cycle.
The prediction intervals are the ETS model's analytic ones shifted by the seasons, so they carry the
trend's and the noise's uncertainty, not the seasonal shape's.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.seasonal import MSTL

from forecast.trend import Trend

Array = npt.NDArray[np.float64]
SEASONAL_DEGREE = 0  # R's stl(s.degree = 0); see the module docstring
MIN_OBSERVATIONS = 4  # below this an ETS fit with a trend has no residual degrees of freedom


_ETS_TREND: Mapping[Trend, tuple[str | None, bool, str]] = {
    Trend.NONE: (None, False, "N"),
    Trend.ADDITIVE: ("add", False, "A"),
    Trend.DAMPED: ("add", True, "Ad"),
}


class ForecastError(ValueError):
    """A series the model cannot forecast (too short, or not finite)."""


@dataclass(frozen=True)
class Band:
    """A prediction interval of one level (80: 80%) over the horizon."""

    level: int
    lower: Array
    upper: Array


@dataclass(frozen=True)
class SeriesForecast:
    """Forecast means over the horizon, their intervals by level, and the model that made them."""

    mean: Array
    bands: Mapping[int, Band]
    model: str


def forecast_series(
    values: Sequence[float] | Array,
    horizon: int,
    *,
    season_lengths: Sequence[int],
    levels: Sequence[int],
    trends: Sequence[Trend] = tuple(Trend),
) -> SeriesForecast:
    """Forecast the next `horizon` values of an evenly spaced series without gaps.

    season_lengths: candidate periods in steps (12 for months in a year, 48 and 336 for half-hours in a
    day and a week); a period is used only when the series holds two full cycles of it.
    levels: interval levels in percent; trends: the ETS trends to choose from by AICc.
    """
    series = np.asarray(values, dtype=np.float64)
    if series.ndim != 1 or len(series) < MIN_OBSERVATIONS:
        raise ForecastError(f"a forecast needs at least {MIN_OBSERVATIONS} values, got {len(series)}")
    if not np.all(np.isfinite(series)):
        raise ForecastError("the series holds missing or infinite values")
    if horizon < 1:
        raise ForecastError(f"the horizon must be at least 1 step, not {horizon}")
    if not trends:
        raise ForecastError("no ETS trend to choose from")
    periods = sorted({p for p in season_lengths if p >= 2 and len(series) >= 2 * p})
    adjusted, future_seasons, seasonal_name = _deseasonalise(series, periods, horizon)
    fit, trend = _best_ets(adjusted, trends)
    prediction = fit.get_prediction(start=len(series), end=len(series) + horizon - 1)
    mean = np.asarray(prediction.predicted_mean, dtype=np.float64) + future_seasons
    bands = {}
    for level in levels:
        frame = prediction.summary_frame(alpha=1 - level / 100)
        bands[level] = Band(
            level,
            frame["pi_lower"].to_numpy(dtype=np.float64) + future_seasons,
            frame["pi_upper"].to_numpy(dtype=np.float64) + future_seasons,
        )
    return SeriesForecast(mean, bands, f"{seasonal_name}ETS(A,{_ETS_TREND[trend][2]},N)")


def _deseasonalise(series: Array, periods: Sequence[int], horizon: int) -> tuple[Array, Array, str]:
    """The seasonally adjusted series, the seasons continued over the horizon, and the model's prefix."""
    if not periods:
        return series, np.zeros(horizon), ""
    decomposition = MSTL(series, periods=periods, stl_kwargs={"seasonal_deg": SEASONAL_DEGREE}).fit()
    seasonal = np.asarray(decomposition.seasonal, dtype=np.float64).reshape(len(series), len(periods))
    future = np.zeros(horizon)
    for column, period in enumerate(periods):
        future += np.resize(seasonal[-period:, column], horizon)
    names = ",".join(str(period) for period in periods)
    return series - seasonal.sum(axis=1), future, f"MSTL({names})+"


def _best_ets(adjusted: Array, trends: Sequence[Trend]) -> tuple[Any, Trend]:
    # statsmodels 0.15 needs a pandas series for get_prediction's row labels.
    data = pd.Series(adjusted)
    best: tuple[float, Any, Trend] | None = None
    for trend in trends:
        kind, damped, _ = _ETS_TREND[trend]
        with warnings.catch_warnings():
            # The optimiser warns when it stops at its iteration limit; that fit is still a valid
            # candidate, and the AICc decides whether it is kept.
            warnings.simplefilter("ignore", ConvergenceWarning)
            fit = ETSModel(data, error="add", trend=kind, damped_trend=damped).fit(disp=False)
        score = float(fit.aicc)
        if np.isfinite(score) and (best is None or score < best[0]):
            best = (score, fit, trend)
    if best is None:
        raise ForecastError("no ETS fit converged to a finite AICc")
    return best[1], best[2]
