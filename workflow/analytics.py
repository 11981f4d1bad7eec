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
for a visit that finished in time. It is counted once, when the case is stored (stage_visits.excess_days,
workflow/facts.py), and summed here by the database.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical_model.case import TimelineKind
from store.schema import stage_visits


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


@dataclass(frozen=True)
class VisitFilter:
    """Which stage visits the figures consider: of a class and unit, entered in [entered_from, entered_to)."""

    customer_class: str | None = None
    unit: str | None = None
    entered_from: datetime | None = None
    entered_to: datetime | None = None

    def applied(self, query: sa.Select[Any]) -> sa.Select[Any]:
        """The query narrowed to the visits this filter takes."""
        # Terminal stages have no limit and are never left: they close the case and are no work to measure.
        query = query.where(stage_visits.c.limit_days.is_not(None))
        if self.customer_class is not None:
            query = query.where(stage_visits.c.customer_class == self.customer_class)
        if self.unit is not None:
            query = query.where(stage_visits.c.unit == self.unit)
        if self.entered_from is not None:
            query = query.where(stage_visits.c.entered_at >= self.entered_from)
        if self.entered_to is not None:
            query = query.where(stage_visits.c.entered_at < self.entered_to)
        return query


def stage_analytics(
    conn: Connection, *, stage_order: Sequence[str] = (), where: VisitFilter | None = None
) -> StageAnalytics:
    """Figures over the stage visits `where` selects (default: all)."""
    chosen = where or VisitFilter()
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
        )
        for row in conn.execute(chosen.applied(sa.select(stage_visits)))
    ]
    rank = {stage: index for index, stage in enumerate(stage_order)}

    def order(key: tuple[str, str | None]) -> tuple[int, str, str]:
        return (rank.get(key[0], len(rank)), key[0], key[1] or "")

    by_stage = _grouped(rows, lambda row: (row.stage, None), order, "stage")
    by_class = _grouped(rows, lambda row: (row.stage, row.customer_class), order, "class")
    by_unit = _grouped(rows, lambda row: (row.stage, row.unit), order, "unit")
    reworks = [row for row in rows if row.exit_kind == TimelineKind.REWORK.value]
    stages, units = bottlenecks(conn, chosen)
    return StageAnalytics(
        by_stage=by_stage,
        by_class=by_class,
        by_unit=by_unit,
        rework_total=len(reworks),
        cases_with_rework=len({row.application_no for row in reworks}),
        bottleneck_stages=stages,
        bottleneck_units=units,
    )


def bottlenecks(
    conn: Connection, where: VisitFilter | None = None
) -> tuple[tuple[Bottleneck, ...], tuple[Bottleneck, ...]]:
    """Stages, then supply units, ranked by working days past their deadlines, most first.

    Summed by the database over the visits' stored excess (workflow/facts.py), in one pass per stage and
    unit; completed visits the hub saw begin.
    """
    chosen = where or VisitFilter()
    excess = stage_visits.c.excess_days
    query = chosen.applied(
        sa.select(
            stage_visits.c.stage,
            stage_visits.c.unit,
            sa.func.sum(excess),
            sa.func.sum(sa.case((stage_visits.c.over_limit.is_(True), 1), else_=0)),
            sa.func.count(),
        ).where(excess.is_not(None))
    ).group_by(stage_visits.c.stage, stage_visits.c.unit)
    by_stage: dict[str, _Excess] = defaultdict(_Excess)
    by_unit: dict[str | None, _Excess] = defaultdict(_Excess)
    for stage, unit, total, over, count in conn.execute(query):
        for sums in (by_stage[stage], by_unit[unit]):
            sums.days += float(total)
            sums.over_limit += int(over)
            sums.completed += int(count)
    return (
        _ranked([Bottleneck(stage, None, *sums.figures()) for stage, sums in by_stage.items()]),
        _ranked([Bottleneck(None, unit, *sums.figures()) for unit, sums in by_unit.items()]),
    )


@dataclass
class _Excess:
    days: float = 0.0
    over_limit: int = 0
    completed: int = 0

    def figures(self) -> tuple[float, int, int]:
        return self.days, self.over_limit, self.completed


def _ranked(groups: list[Bottleneck]) -> tuple[Bottleneck, ...]:
    return tuple(sorted(groups, key=lambda group: (-group.excess_days, group.stage or "", group.unit or "")))


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
