"""The share of a summer-only load (air conditioning) in a group's summer peak, from its 96-point curves.

The decomposition: a load that runs only in summer is what the summer's average working-day profile holds
beyond the shoulder seasons' (spring and autumn months with neither cooling nor heating). Per equipment
and year, each point's good values are averaged over the season's working days; the shoulder profile is
the mean of the months before and after summer, equally far from it, so a steady growth of the load over
the year cancels. The group's profiles are the sums over its equipment, averaged over the years in which
every season had enough days. Then:
- the component = summer profile - shoulder profile, point by point;
- its share at the summer peak = component / summer profile at the summer profile's highest point;
- its peak hours = the run of points around the component's maximum where it stays at or above the
  configured share (half) of that maximum.
Weekends are left out because shops and offices keep other hours on them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from forecast.demand_config import LoadShareSettings

POINTS = 96
Array = npt.NDArray[np.float64]


class InsufficientCurvesError(ValueError):
    """No year of the group's curves has enough working days in summer and in both shoulder seasons."""


@dataclass(frozen=True)
class DayCurve:
    """One equipment's day: 96 loads in kW, None where a point is missing or flagged."""

    equipment_id: str
    day: date
    load_kw: Sequence[float | None]


class LoadShare(BaseModel):
    """The seasonal component of a group's load at its summer peak, and the hours it concentrates in."""

    equipment: int = Field(description="equipment whose curves were summed")
    years: list[int] = Field(description="the years whose summer and shoulder seasons were compared")
    summer_peak_kw: float = Field(description="highest point of the group's average summer working day")
    summer_peak_time: str = Field(description="start of that 15-minute point, HH:MM")
    component_at_peak_kw: float = Field(description="the summer-only component at that point")
    share_at_peak: float = Field(description="component / summer load at the summer peak, 0 to 1")
    concentrated_from: str = Field(description="start of the component's peak hours, HH:MM")
    concentrated_to: str = Field(description="end of the component's peak hours, HH:MM")
    summer_profile_kw: list[float] = Field(description="the group's average summer working day, 96 points")
    component_kw: list[float] = Field(description="summer minus shoulder profile, 96 points")


def _clock(point: int) -> str:
    minutes = point * 15
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class _Season:
    """Sums and counts of good values per point over one equipment's days of one season."""

    def __init__(self) -> None:
        self.total = np.zeros(POINTS)
        self.count = np.zeros(POINTS)
        self.days = 0

    def add(self, loads: Sequence[float | None]) -> None:
        values = np.array([np.nan if load is None else load for load in loads], dtype=np.float64)
        good = np.isfinite(values)
        self.total[good] += values[good]
        self.count[good] += 1
        self.days += 1

    def mean(self) -> Array | None:
        if np.any(self.count == 0):
            return None
        return self.total / self.count


def load_share(curves: Iterable[DayCurve], settings: LoadShareSettings) -> LoadShare:
    """The component's share and hours; InsufficientCurvesError when no year can be compared."""
    before = sorted(month for month in settings.shoulder_months if month < min(settings.summer_months))
    after = sorted(month for month in settings.shoulder_months if month > max(settings.summer_months))
    if not before or not after:
        raise InsufficientCurvesError("the shoulder months must lie both before and after the summer months")
    seasons: dict[tuple[str, int, str], _Season] = defaultdict(_Season)
    for curve in curves:
        if curve.day.weekday() >= 5 or len(curve.load_kw) != POINTS:
            continue
        month = curve.day.month
        season = (
            "summer"
            if month in settings.summer_months
            else "before"
            if month in before
            else "after"
            if month in after
            else None
        )
        if season is not None:
            seasons[(curve.equipment_id, curve.day.year, season)].add(curve.load_kw)
    summer_by_year: dict[int, Array] = {}
    shoulder_by_year: dict[int, Array] = {}
    equipment = {key[0] for key in seasons}
    years = sorted({key[1] for key in seasons})
    for year in years:
        summer_sum, shoulder_sum = np.zeros(POINTS), np.zeros(POINTS)
        complete = True
        for item in equipment:
            parts = [seasons.get((item, year, name)) for name in ("summer", "before", "after")]
            means = [part.mean() if part and part.days >= settings.min_days else None for part in parts]
            summer, first, last = means
            if summer is None or first is None or last is None:
                complete = False
                break
            summer_sum += summer
            shoulder_sum += (first + last) / 2.0
        if complete and equipment:
            summer_by_year[year] = summer_sum
            shoulder_by_year[year] = shoulder_sum
    if not summer_by_year:
        raise InsufficientCurvesError(
            f"no year has at least {settings.min_days} working days with curves in summer "
            f"(months {sorted(settings.summer_months)}) and in the shoulder months "
            f"{sorted(settings.shoulder_months)} for every equipment of the group"
        )
    summer_profile = np.mean(list(summer_by_year.values()), axis=0)
    component = summer_profile - np.mean(list(shoulder_by_year.values()), axis=0)
    peak = int(np.argmax(summer_profile))
    top = int(np.argmax(component))
    threshold = settings.concentration * component[top]
    start = top
    while start > 0 and component[start - 1] >= threshold:
        start -= 1
    end = top
    while end < POINTS - 1 and component[end + 1] >= threshold:
        end += 1
    return LoadShare(
        equipment=len(equipment),
        years=sorted(summer_by_year),
        summer_peak_kw=round(float(summer_profile[peak]), 3),
        summer_peak_time=_clock(peak),
        component_at_peak_kw=round(float(component[peak]), 3),
        share_at_peak=round(float(component[peak] / summer_profile[peak]), 4),
        concentrated_from=_clock(start),
        concentrated_to=_clock(end + 1) if end + 1 < POINTS else "24:00",
        summer_profile_kw=[round(float(value), 3) for value in summer_profile],
        component_kw=[round(float(value), 3) for value in component],
    )
