"""Stage-duration analytics: the spread of working days per stage, class and unit, rework and bottlenecks.

Durations come from stage_visits: the working days between entering and leaving a stage (each working day
counts the share of it that passed). Visits the hub did not see begin (first seen mid-flow) are left out of
the durations, as their start is unknown. A rework is a return from a stage to an earlier one; it is
counted on the stage that was left. The spread is min, p10, p50, p90, max and the population standard
deviation of the completed visits' durations.

Bottlenecks rank the stages, and the supply units, by the working days their completed visits ran past
their deadlines: per visit, the working days from the end of its due day (the limit's last working day) to
leaving. That is the time over the limit as the deadline counts it: a limit counts whole working days after
the day of entry, so a visit's duration minus its limit would count part of the entry day as excess even
for a visit that finished in time.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical_model.case import TimelineKind
from store.schema import stage_visits
from workflow.workdays import SHANGHAI, WorkingCalendar


@dataclass(frozen=True)
class StageStats:
    """Figures of one group of stage visits."""

    stage: str
    customer_class: str | None
    unit: str | None
    completed: int
    mean_days: float | None
    min_days: float | None
    p10_days: float | None
    p50_days: float | None
    p90_days: float | None
    max_days: float | None
    stdev_days: float | None
    over_limit: int
    rework: int
    in_progress: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, durations rounded to 0.01 working day."""
        return {
            "stage": self.stage,
            "customer_class": self.customer_class,
            "unit": self.unit,
            "completed": self.completed,
            "mean_days": _round(self.mean_days),
            "min_days": _round(self.min_days),
            "p10_days": _round(self.p10_days),
            "p50_days": _round(self.p50_days),
            "p90_days": _round(self.p90_days),
            "max_days": _round(self.max_days),
            "stdev_days": _round(self.stdev_days),
            "over_limit": self.over_limit,
            "rework": self.rework,
            "in_progress": self.in_progress,
        }


@dataclass(frozen=True)
class Bottleneck:
    """A stage or a supply unit with the working days its completed visits ran past their deadlines."""

    stage: str | None
    unit: str | None
    excess_days: float
    over_limit: int
    completed: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, the excess rounded to 0.01 working day."""
        return {
            "stage": self.stage,
            "unit": self.unit,
            "excess_days": round(self.excess_days, 2),
            "over_limit": self.over_limit,
            "completed": self.completed,
        }


@dataclass(frozen=True)
class StageAnalytics:
    """Stage figures grouped three ways, rework totals, and the stages and units ranked as bottlenecks."""

    by_stage: tuple[StageStats, ...]
    by_class: tuple[StageStats, ...]
    by_unit: tuple[StageStats, ...]
    rework_total: int
    cases_with_rework: int
    bottleneck_stages: tuple[Bottleneck, ...]
    bottleneck_units: tuple[Bottleneck, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "by_stage": [item.as_dict() for item in self.by_stage],
            "by_stage_and_class": [item.as_dict() for item in self.by_class],
            "by_stage_and_unit": [item.as_dict() for item in self.by_unit],
            "rework": {"total": self.rework_total, "cases": self.cases_with_rework},
            "bottlenecks": {
                "stages": [item.as_dict() for item in self.bottleneck_stages],
                "units": [item.as_dict() for item in self.bottleneck_units],
            },
        }


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The value below which `fraction` of sorted values lie, interpolating linearly; None without values."""
    if not values:
        return None
    position = (len(values) - 1) * fraction
    lower = math.floor(position)
    upper = min(lower + 1, len(values) - 1)
    return values[lower] + (values[upper] - values[lower]) * (position - lower)


@dataclass(frozen=True)
class _Row:
    application_no: str
    stage: str
    customer_class: str
    unit: str | None
    duration: float | None
    observed: bool
    left: bool
    exit_kind: str | None
    over_limit: bool | None
    excess: float | None


def stage_analytics(
    conn: Connection,
    *,
    stage_order: Sequence[str] = (),
    customer_class: str | None = None,
    unit: str | None = None,
    entered_from: datetime | None = None,
    entered_to: datetime | None = None,
    calendar: WorkingCalendar | None = None,
) -> StageAnalytics:
    """Figures over the stage visits that match the filters (entered in [entered_from, entered_to)).

    calendar counts the working days past deadlines (default: the installed holidays package's).
    """
    days = calendar or WorkingCalendar()
    # Terminal stages have no limit and are never left: they close the case and are no work to measure.
    query = sa.select(stage_visits).where(stage_visits.c.limit_days.is_not(None))
    if customer_class is not None:
        query = query.where(stage_visits.c.customer_class == customer_class)
    if unit is not None:
        query = query.where(stage_visits.c.unit == unit)
    if entered_from is not None:
        query = query.where(stage_visits.c.entered_at >= entered_from)
    if entered_to is not None:
        query = query.where(stage_visits.c.entered_at < entered_to)
    rows = [
        _Row(
            application_no=row.application_no,
            stage=row.stage,
            customer_class=row.customer_class,
            unit=row.unit,
            duration=row.duration_days,
            observed=bool(row.observed),
            left=row.left_at is not None,
            exit_kind=row.exit_kind,
            over_limit=row.over_limit,
            excess=_excess(days, row.deadline, row.left_at) if row.observed else None,
        )
        for row in conn.execute(query)
    ]
    rank = {stage: index for index, stage in enumerate(stage_order)}

    def order(key: tuple[str, str | None]) -> tuple[int, str, str]:
        return (rank.get(key[0], len(rank)), key[0], key[1] or "")

    by_stage = _grouped(rows, lambda row: (row.stage, None), order, "stage")
    by_class = _grouped(rows, lambda row: (row.stage, row.customer_class), order, "class")
    by_unit = _grouped(rows, lambda row: (row.stage, row.unit), order, "unit")
    reworks = [row for row in rows if row.exit_kind == TimelineKind.REWORK.value]
    return StageAnalytics(
        by_stage=by_stage,
        by_class=by_class,
        by_unit=by_unit,
        rework_total=len(reworks),
        cases_with_rework=len({row.application_no for row in reworks}),
        bottleneck_stages=_bottlenecks(rows, lambda row: (row.stage, None)),
        bottleneck_units=_bottlenecks(rows, lambda row: (None, row.unit)),
    )


def _excess(calendar: WorkingCalendar, due: date | None, left_at: datetime | None) -> float | None:
    """Working days from the end of the due day to leaving; 0 when left in time, None while not left."""
    if left_at is None or due is None:
        return None
    end_of_due = datetime.combine(due + timedelta(days=1), time(), tzinfo=SHANGHAI)
    return calendar.working_time(end_of_due, left_at)


def _bottlenecks(
    rows: Iterable[_Row], key: Callable[[_Row], tuple[str | None, str | None]]
) -> tuple[Bottleneck, ...]:
    """Groups ranked by working days past their deadlines, most first; completed, observed visits only."""
    groups: dict[tuple[str | None, str | None], list[float]] = defaultdict(list)
    over: dict[tuple[str | None, str | None], int] = defaultdict(int)
    for row in rows:
        if row.excess is None:
            continue
        groups[key(row)].append(row.excess)
        over[key(row)] += bool(row.over_limit)
    ranked = sorted(groups, key=lambda group: (-sum(groups[group]), group[0] or "", group[1] or ""))
    return tuple(
        Bottleneck(group[0], group[1], sum(groups[group]), over[group], len(groups[group]))
        for group in ranked
    )


def _grouped(
    rows: Iterable[_Row],
    key: Any,
    order: Any,
    dimension: str,
) -> tuple[StageStats, ...]:
    groups: dict[tuple[str, str | None], list[_Row]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    result = []
    for group_key in sorted(groups, key=order):
        members = groups[group_key]
        durations = sorted(
            row.duration for row in members if row.left and row.observed and row.duration is not None
        )
        result.append(
            StageStats(
                stage=group_key[0],
                customer_class=group_key[1] if dimension == "class" else None,
                unit=group_key[1] if dimension == "unit" else None,
                completed=len(durations),
                mean_days=sum(durations) / len(durations) if durations else None,
                min_days=durations[0] if durations else None,
                p10_days=percentile(durations, 0.1),
                p50_days=percentile(durations, 0.5),
                p90_days=percentile(durations, 0.9),
                max_days=durations[-1] if durations else None,
                stdev_days=statistics.pstdev(durations) if durations else None,
                over_limit=sum(1 for row in members if row.over_limit),
                rework=sum(1 for row in members if row.exit_kind == TimelineKind.REWORK.value),
                in_progress=sum(1 for row in members if not row.left),
            )
        )
    return tuple(result)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
