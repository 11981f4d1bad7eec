"""Growth of EV-charging demand from the application history: applications and kVA per year, the yearly
growth rate, and a projection with intervals.

A demand that grows by a steady rate is a straight line in logarithms, so a least-squares line
(statsmodels OLS) is fitted to the logarithms of the yearly figures:
- the growth rate is exp(slope) - 1;
- the projection is the line continued, with its prediction intervals (the line's uncertainty and the
  years' scatter about it), turned back with exp, means and bounds alike (the mean so becomes the
  median, the honest centre of a skewed outcome).
model.forecast_series is not used here: five yearly values are too few for an ETS fit with a trend
(statsforecast refuses them), while a line has three degrees of freedom left.
Only complete calendar years count (Asia/Shanghai), the latest `years` of them; a year without any EV
application has no logarithm and is reported as such instead of being skipped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm
from pydantic import BaseModel, Field

from canonical_model.application import LoadType
from forecast.applied import DemandHistory
from forecast.demand import Estimate, Interval
from forecast.demand_config import EvGrowthSettings


class InsufficientEvHistoryError(ValueError):
    """A year of the window without EV-charging applications."""


class EvYear(BaseModel):
    """A calendar year's EV-charging applications."""

    year: int
    applications: int
    requested_kva: float


class EvProjection(BaseModel):
    """A projected year."""

    year: int
    applications: Estimate
    requested_kva: Estimate


class EvGrowth(BaseModel):
    """EV-charging demand by year, its growth and its projection."""

    years: list[EvYear]
    applications_growth: float = Field(description="yearly growth rate of the applications, 0.5 = 50%")
    kva_growth: float = Field(description="yearly growth rate of the requested kVA")
    projection: list[EvProjection]
    kva_growth_over_projection: float = Field(
        description="the last projected year's kVA over the last counted year's, minus 1 (3.0 = +300%)"
    )
    model: str
    unreadable_cases: int = Field(description="cases whose stored application could not be read")


@dataclass(frozen=True)
class _LogLine:
    """The least-squares line through the logarithms of yearly values, and its projection."""

    growth: float
    projection: list[Estimate]


def _log_line(values: Sequence[float], horizon: int, levels: Sequence[int]) -> _LogLine:
    steps = np.arange(len(values), dtype=np.float64)
    fitted = sm.OLS(np.log(values), sm.add_constant(steps)).fit()
    ahead = sm.add_constant(
        np.arange(len(values), len(values) + horizon, dtype=np.float64), has_constant="add"
    )
    prediction = fitted.get_prediction(ahead)
    means = np.asarray(prediction.predicted_mean, dtype=np.float64)
    bounds = {
        level: np.asarray(prediction.conf_int(obs=True, alpha=1 - level / 100), dtype=np.float64)
        for level in levels
    }
    projection = [
        Estimate(
            mean=round(math.exp(means[step]), 3),
            intervals=[
                Interval(
                    level=level,
                    lower=round(math.exp(bounds[level][step, 0]), 3),
                    upper=round(math.exp(bounds[level][step, 1]), 3),
                )
                for level in levels
            ],
        )
        for step in range(horizon)
    ]
    return _LogLine(round(math.exp(float(fitted.params[1])) - 1.0, 4), projection)


def ev_growth(history: DemandHistory, *, this_year: int, settings: EvGrowthSettings) -> EvGrowth:
    """The growth over the complete years before this_year, or InsufficientEvHistoryError."""
    window = list(range(this_year - settings.years, this_year))
    counts = dict.fromkeys(window, 0)
    kva = dict.fromkeys(window, 0.0)
    for record in history.records:
        if record.load_type is LoadType.EV_CHARGING and record.day.year in counts:
            counts[record.day.year] += 1
            kva[record.day.year] += record.kva
    empty = [year for year in window if counts[year] == 0]
    if empty:
        raise InsufficientEvHistoryError(
            f"no EV-charging application in {empty}: a growth rate needs each of the {settings.years} "
            f"complete years {window[0]}-{window[-1]} to hold some"
        )
    counted = _log_line(
        [counts[year] for year in window], settings.projection_years, settings.interval_levels
    )
    asked = _log_line([kva[year] for year in window], settings.projection_years, settings.interval_levels)
    return EvGrowth(
        years=[
            EvYear(year=year, applications=counts[year], requested_kva=round(kva[year], 3)) for year in window
        ],
        applications_growth=counted.growth,
        kva_growth=asked.growth,
        projection=[
            EvProjection(year=this_year + step, applications=count, requested_kva=capacity)
            for step, (count, capacity) in enumerate(zip(counted.projection, asked.projection, strict=True))
        ],
        kva_growth_over_projection=round(asked.projection[-1].mean / kva[window[-1]] - 1.0, 4),
        model="OLS of log yearly values (statsmodels)",
        unreadable_cases=history.unreadable,
    )
