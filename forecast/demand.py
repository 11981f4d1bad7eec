"""Demand forecast: applications and requested kVA per month, for a supply unit, GB/T 4754 section and load
type (any of them left open counts all), from the application history, through model.forecast_series.

The history runs from the first month the hub holds any counted application (so a load type that appeared
later has true zeros before it) to the last complete month, and months without an application count zero.
Counts and kVA cannot fall below zero, so forecast means and bounds are cut at zero. The canonical model
has no photovoltaic load type (PV feeds in rather than draws), so PV is not among the load types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from pydantic import BaseModel, Field

from canonical_model.application import LoadType
from forecast.applied import AppliedDemand, DemandHistory
from forecast.demand_config import DemandSettings
from forecast.model import SeriesForecast, forecast_series


class InsufficientDemandHistoryError(ValueError):
    """Fewer complete months of application history than the configured minimum."""


@dataclass(frozen=True)
class DemandFilter:
    """Which applications a forecast counts; None counts all."""

    unit: str | None = None
    section: str | None = None
    load_type: LoadType | None = None

    def matches(self, record: AppliedDemand) -> bool:
        return (
            (self.unit is None or record.unit == self.unit)
            and (self.section is None or record.section == self.section)
            and (self.load_type is None or record.load_type is self.load_type)
        )


class Interval(BaseModel):
    """A prediction interval of one level."""

    level: int = Field(description="percent")
    lower: float
    upper: float


class Estimate(BaseModel):
    """A forecast mean with its intervals."""

    mean: float
    intervals: list[Interval]


class MonthDemand(BaseModel):
    """A month of history: applications accepted and the kVA they requested."""

    month: str = Field(description="YYYY-MM")
    applications: int
    requested_kva: float


class MonthForecast(BaseModel):
    """A forecast month."""

    month: str = Field(description="YYYY-MM")
    applications: Estimate
    requested_kva: Estimate


class DemandForecast(BaseModel):
    """Monthly demand: its history and its forecast, with the models that made it."""

    unit: str | None
    section: str | None
    load_type: LoadType | None
    history: list[MonthDemand]
    forecast: list[MonthForecast]
    applications_model: str
    kva_model: str
    unreadable_cases: int = Field(description="cases whose stored application could not be read")


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _estimates(forecast: SeriesForecast, levels: Sequence[int]) -> list[Estimate]:
    return [
        Estimate(
            mean=round(max(0.0, float(forecast.mean[step])), 3),
            intervals=[
                Interval(
                    level=level,
                    lower=round(max(0.0, float(forecast.bands[level].lower[step])), 3),
                    upper=round(max(0.0, float(forecast.bands[level].upper[step])), 3),
                )
                for level in levels
            ],
        )
        for step in range(len(forecast.mean))
    ]


def forecast_demand(
    history: DemandHistory, selection: DemandFilter, *, today: date, months: int, settings: DemandSettings
) -> DemandForecast:
    """The next `months` calendar months after today's, or InsufficientDemandHistoryError."""
    last = _month_index(today) - 1
    if not history.records:
        raise InsufficientDemandHistoryError("the hub holds no application of the counted business types")
    first = _month_index(history.records[0].day)
    span = last - first + 1
    if span < settings.min_months:
        raise InsufficientDemandHistoryError(
            f"{max(span, 0)} complete months of applications, fewer than the {settings.min_months} a "
            "forecast needs"
        )
    counts = np.zeros(span)
    kva = np.zeros(span)
    for record in history.records:
        index = _month_index(record.day) - first
        if index < span and selection.matches(record):
            counts[index] += 1
            kva[index] += record.kva
    seasons = (settings.season_months,)
    levels = settings.interval_levels
    by_count = forecast_series(counts, months, season_lengths=seasons, levels=levels)
    by_kva = forecast_series(kva, months, season_lengths=seasons, levels=levels)
    return DemandForecast(
        unit=selection.unit,
        section=selection.section,
        load_type=selection.load_type,
        history=[
            MonthDemand(month=_label(first + n), applications=int(counts[n]), requested_kva=round(kva[n], 3))
            for n in range(span)
        ],
        forecast=[
            MonthForecast(month=_label(last + 1 + step), applications=count, requested_kva=capacity)
            for step, (count, capacity) in enumerate(
                zip(_estimates(by_count, levels), _estimates(by_kva, levels), strict=True)
            )
        ],
        applications_model=by_count.model,
        kva_model=by_kva.model,
        unreadable_cases=history.unreadable,
    )
