"""The forecasting model every forecast of the hub goes through: a series and a horizon in, means and
prediction intervals out.

statsforecast's MSTL decomposes the series over each season length that fits at least twice in it (with
R's STL settings, as forecast::mstl does), its AutoETS forecasts the seasonally adjusted series with
additive errors and the configured trend (auto: the fit of lowest AICc among none, additive and damped),
and each season continues as its last cycle. The prediction intervals are the ETS model's analytic ones
shifted by the seasons, so they carry the trend's and the noise's uncertainty, not the seasonal shape's.
A series too short for any season goes to AutoETS alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from forecast.trend import Trend

Array = npt.NDArray[np.float64]
MIN_OBSERVATIONS = 4  # below this an ETS fit with a trend has no residual degrees of freedom

# AutoETS's model code (error, trend, season) and damping for each setting; the season is MSTL's.
_ETS: Mapping[Trend, tuple[str, bool | None]] = {
    Trend.AUTO: ("AZN", None),
    Trend.NONE: ("ANN", False),
    Trend.ADDITIVE: ("AAN", False),
    Trend.DAMPED: ("AAN", True),
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
    trend: Trend = Trend.AUTO,
) -> SeriesForecast:
    """Forecast the next `horizon` values of an evenly spaced series without gaps.

    season_lengths: candidate periods in steps (12 for months in a year, 48 and 336 for half-hours in a
    day and a week); a period is used only when the series holds two full cycles of it.
    levels: interval levels in percent.
    """
    series = np.asarray(values, dtype=np.float64)
    if series.ndim != 1 or len(series) < MIN_OBSERVATIONS:
        raise ForecastError(f"a forecast needs at least {MIN_OBSERVATIONS} values, got {len(series)}")
    if not np.all(np.isfinite(series)):
        raise ForecastError("the series holds missing or infinite values")
    if horizon < 1:
        raise ForecastError(f"the horizon must be at least 1 step, not {horizon}")
    periods = sorted({p for p in season_lengths if p >= 2 and len(series) >= 2 * p})
    # Imported at the first forecast, not when the API app is built: the library takes over a second to load.
    from statsforecast.models import MSTL, AutoETS

    code, damped = _ETS[trend]
    ets = AutoETS(model=code, damped=damped)
    model: Any = MSTL(season_length=periods, trend_forecaster=ets) if periods else ets
    fitted = model.fit(series)
    predicted = fitted.predict(horizon, level=list(levels))
    chosen = (fitted.trend_forecaster if periods else fitted).model_["method"]
    prefix = f"MSTL({','.join(str(p) for p in periods)})+" if periods else ""
    bands = {
        level: Band(
            level,
            np.asarray(predicted[f"lo-{level}"], dtype=np.float64),
            np.asarray(predicted[f"hi-{level}"], dtype=np.float64),
        )
        for level in levels
    }
    return SeriesForecast(np.asarray(predicted["mean"], dtype=np.float64), bands, f"{prefix}{chosen}")
