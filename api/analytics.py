"""Analytics API: stage durations and bottlenecks, and the process figures from application to power.

What each figure counts is defined in workflow/analytics.py (stages) and workflow/process.py (process).
Dates are local dates in Asia/Shanghai; a period runs from the start of `from` to the end of `to`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from api.context import Context, Database, Workflow
from api.problems import problem, problem_responses
from canonical_model.application import CustomerClass
from canonical_model.common import CanonicalModel
from workflow.analytics import VisitFilter, stage_analytics
from workflow.process import Basis, ProcessFilter, process_figures
from workflow.workdays import SHANGHAI


class StageFigures(CanonicalModel):
    """Figures of one group of stage visits; durations in working days, rounded to 0.01."""

    stage: str = Field(description="stage id")
    customer_class: str | None = Field(description="customer class of the group; null when not grouped by it")
    unit: str | None = Field(description="supply unit of the group; null when not grouped by it")
    completed: int = Field(description="visits that left the stage")
    mean_days: float | None = Field(description="mean duration of completed visits; null without any")
    min_days: float | None = Field(description="shortest duration of completed visits")
    p10_days: float | None = Field(description="10th percentile of the durations of completed visits")
    p50_days: float | None = Field(description="median duration of completed visits")
    p90_days: float | None = Field(description="90th percentile of the durations of completed visits")
    max_days: float | None = Field(description="longest duration of completed visits")
    stdev_days: float | None = Field(description="population standard deviation of the durations")
    over_limit: int = Field(description="completed visits that took longer than the stage limit")
    rework: int = Field(description="visits that were a return to the stage")
    in_progress: int = Field(description="visits still in the stage")


class ReworkTotals(CanonicalModel):
    """How often cases went back to an earlier stage."""

    total: int = Field(description="returns to an earlier stage, over all cases")
    cases: int = Field(description="cases with at least one return")


class BottleneckFigures(CanonicalModel):
    """A stage or supply unit with the working days its completed visits ran past their deadlines."""

    stage: str | None = Field(description="stage id; null in the ranking of units")
    unit: str | None = Field(description="supply unit; null in the ranking of stages")
    excess_days: float = Field(description="working days past the deadlines, summed over completed visits")
    over_limit: int = Field(description="completed visits that finished after their deadline")
    completed: int = Field(description="completed visits counted")


class Bottlenecks(CanonicalModel):
    """Stages and supply units ranked by working days past their deadlines, most first."""

    stages: tuple[BottleneckFigures, ...] = Field(description="one entry per stage")
    units: tuple[BottleneckFigures, ...] = Field(description="one entry per supply unit")


class StageAnalyticsReport(CanonicalModel):
    """Stage durations per stage, per stage and class, per stage and unit; rework and bottlenecks."""

    unit: str = Field(description="unit of the durations", examples=["working days"])
    stage_names: dict[str, str] = Field(description="name of each stage id, in stage order")
    by_stage: tuple[StageFigures, ...] = Field(description="one group per stage")
    by_stage_and_class: tuple[StageFigures, ...] = Field(description="one group per stage and customer class")
    by_stage_and_unit: tuple[StageFigures, ...] = Field(description="one group per stage and supply unit")
    rework: ReworkTotals = Field(description="rework over the matching visits")
    bottlenecks: Bottlenecks = Field(description="where the working days over the limits are spent")


class DurationSpread(CanonicalModel):
    """Mean, median and 90th percentile of some durations, rounded to 0.01; null without any."""

    count: int = Field(description="durations counted")
    mean: float | None = Field(description="mean")
    p50: float | None = Field(description="median")
    p90: float | None = Field(description="90th percentile")


class DaysToPower(CanonicalModel):
    """Time from submission to energisation, in working days and in calendar days."""

    working_days: DurationSpread = Field(description="Chinese working days (adjusted workdays included)")
    calendar_days: DurationSpread = Field(description="elapsed 24-hour days, as the reference study counts")


class CauseFigures(CanonicalModel):
    """Rework of one cause among a group's cases."""

    cases: int = Field(description="cases with at least one return of this cause")
    share: float | None = Field(description="their share of the group's cases; null without cases")
    returns: int = Field(description="returns of this cause")


class ProcessGroup(CanonicalModel):
    """The process figures of one group of cases."""

    customer_class: str | None = Field(description="customer class of the group; null when not grouped by it")
    unit: str | None = Field(description="supply unit of the group; null when not grouped by it")
    month: str | None = Field(description="month of energisation (YYYY-MM); null when not grouped by it")
    cases: int = Field(description="cases considered")
    energised: int = Field(description="cases energised (terminal stage reached)")
    measured: int = Field(description="energised cases whose moment of energisation the hub saw")
    days_to_power: DaysToPower = Field(description="submission to energisation, over measured cases")
    within_commitment_share: float | None = Field(
        description="share of measured cases energised by their end-to-end deadline"
    )
    within_target_share: float | None = Field(
        description="share of measured cases energised within the target working days of submission"
    )
    rework: dict[str, CauseFigures] = Field(
        description="per rework cause, plus unspecified (no cause given) and any (every cause)"
    )
    survey_to_scheme_days: DurationSpread = Field(
        description="working days from entering the survey stage to leaving the scheme-reply stage"
    )
    scheme_drafting_days: DurationSpread = Field(description="working days spent in the scheme-reply stage")


class FindingFigures(CanonicalModel):
    """Consistency findings the checks raised in the period."""

    total: int = Field(description="findings found in the period")
    open: int = Field(description="of them, not cleared")
    cases: int = Field(description="applications with at least one")
    by_category: dict[str, int] = Field(description="findings per category (the rework cause they prevent)")
    by_rule: dict[str, int] = Field(description="findings per configured rule")


class ProcessAnalyticsReport(CanonicalModel):
    """Process figures from application to power, overall and per class, unit and month of energisation."""

    basis: Basis = Field(
        description="energised: cases energised in the period; opened: cases submitted in it"
    )
    target_working_days: int = Field(
        description="the customers' target, working days from submission to power"
    )
    overall: ProcessGroup = Field(description="all cases considered")
    by_class: tuple[ProcessGroup, ...] = Field(description="one group per customer class")
    by_unit: tuple[ProcessGroup, ...] = Field(description="one group per supply unit")
    by_month: tuple[ProcessGroup, ...] = Field(description="one group per month of energisation")
    in_progress: int = Field(description="cases not energised (at the end of the period for basis energised)")
    findings: FindingFigures = Field(description="consistency findings found in the period")


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=SHANGHAI)


def local_period(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """The moments a period of local dates covers, [start of first, end of last); 422 when reversed."""
    if first is not None and last is not None and first > last:
        raise problem("invalid-parameter", f"from {first} is after to {last}")
    return (
        _start_of(first) if first else None,
        _start_of(last + timedelta(days=1)) if last else None,
    )


router = APIRouter(tags=["analytics"])


@router.get(
    "/v1/analytics/stages",
    summary="Stage durations (spread in working days) per stage, class and unit, rework and bottlenecks",
    responses={200: {"model": StageAnalyticsReport}, **problem_responses("invalid-parameter")},
)
def read_stage_analytics(
    engine: Database,
    chosen: Workflow,
    customer_class: Annotated[CustomerClass | None, Query(description="only this customer class")] = None,
    unit: Annotated[str | None, Query(max_length=32, description="only this supply unit")] = None,
    entered_from: Annotated[date | None, Query(description="stages entered on or after")] = None,
    entered_to: Annotated[date | None, Query(description="stages entered on or before")] = None,
) -> dict[str, Any]:
    start, end = local_period(entered_from, entered_to)
    with engine.connect() as conn:
        where = VisitFilter(
            customer_class=customer_class.value if customer_class else None,
            unit=unit,
            entered_from=start,
            entered_to=end,
        )
        analytics = stage_analytics(conn, stage_order=tuple(chosen.stages), where=where)
    return {"unit": "working days", "stage_names": dict(chosen.stages), **analytics.as_dict()}


@router.get(
    "/v1/analytics/process",
    summary="Days from application to power, commitments kept, rework by cause and the checks' findings",
    responses={200: {"model": ProcessAnalyticsReport}, **problem_responses("invalid-parameter")},
)
def read_process_analytics(
    context: Context,
    period_from: Annotated[
        date | None, Query(alias="from", description="period start (Asia/Shanghai date, inclusive)")
    ] = None,
    period_to: Annotated[
        date | None, Query(alias="to", description="period end (Asia/Shanghai date, inclusive)")
    ] = None,
    basis: Annotated[
        Basis, Query(description="energised: cases energised in the period; opened: submitted in it")
    ] = "energised",
    customer_class: Annotated[CustomerClass | None, Query(description="only this customer class")] = None,
    unit: Annotated[str | None, Query(max_length=32, description="only this supply unit")] = None,
) -> dict[str, Any]:
    start, end = local_period(period_from, period_to)
    where = ProcessFilter(
        basis=basis,
        period_from=start,
        period_to=end,
        customer_class=customer_class.value if customer_class else None,
        unit=unit,
    )
    with context.engine.connect() as conn:
        figures = process_figures(conn, where=where, target_days=context.target_days)
    return figures.as_dict()
