"""Process figures: time from application to power, commitments kept, rework by cause, the checks' findings.

What each figure counts (a case is a row of `cases`, its visits the rows of `stage_visits`):

- Energised: the case is closed in its flow's terminal stage (归档, entered when 装表接电 is finished, so
  power is on). Its energisation time is when that stage was entered (the case's closed_at). A case first
  seen already in the terminal stage is energised, but its energisation time is unknown: it counts in
  `energised` only, never in durations or shares (`measured` counts the others). A case not closed is in
  progress; a case closed in any other stage is neither.
- Days to power: from the application's submission (the case's opened_at) to energisation. `working_days`
  counts Chinese working days (workflow/workdays.py; each working day counts the share of it that passed),
  `calendar_days` counts elapsed 24-hour days: the reference study's 45 and 22 days are calendar days.
  Mean, p50 and p90 over the measured cases.
- Within commitment: share of measured cases energised on or before their end-to-end deadline (the
  case's `end_to_end_deadline`: its commitment in working days after the day of acceptance, the customer's
  works added). Within target: share of measured cases energised by the end of the `target_days`-th working
  day after the day of submission (customers ask for 15), the customer's works included.
- Rework: a return to an earlier stage (a visit left with exit_kind rework), under the cause the source
  gave (exit_cause), `unspecified` when it gave none. Per cause: the cases with at least one such return,
  their share of the cases considered, and the number of returns. `any` counts every cause.
- Survey to scheme: working days from entering the flow's survey stage (its first visit) to leaving the
  scheme-reply stage forward (its last visit); only for energised cases whose flow has a survey stage and
  whose survey visit the hub saw begin. In the short flows the survey is done in the scheme-reply stage,
  so this is that stage's time.
- Scheme drafting: working days spent in the scheme-reply stage (all its visits, reworks included); only
  when every visit was seen from its start.
- Findings: consistency findings (cross-system disagreements the checks caught) found in the period, by
  category and rule, the open ones (not cleared), and the applications with at least one.

Which cases are considered: those of the class and unit asked for, and in the period by `basis`:
`energised` (default) takes the cases energised in the period; `opened` takes the cases submitted in it,
energised or not, so rework shares count their in-progress cases too. Durations and shares always come
from the energised cases only. `in_progress` counts, for `energised`, the cases submitted before the end
of the period and not energised by then; for `opened`, the cases of the period not energised now.
Groups: by customer class, by unit (the case's responsible supply unit, ORG_NO), by month of energisation
(Asia/Shanghai; energised cases only), and overall.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical_model.case import TimelineKind
from store.schema import cases, consistency_findings, stage_visits
from workflow.analytics import percentile
from workflow.config import WorkflowConfig
from workflow.workdays import SHANGHAI, WorkingCalendar, local_date

# Rework causes a source may give (stage_visits.exit_cause); UNSPECIFIED stands for none given.
REWORK_CAUSES = ("information_error", "documents_missing", "design_change", "grid_constraint")
UNSPECIFIED = "unspecified"
ANY_CAUSE = "any"
SCHEME_REPLY_STAGE = "scheme_reply"
# Customers ask for power within 15 working days (FACTS.md section 1).
TARGET_WORKING_DAYS = 15
_SECONDS_PER_DAY = 86400.0

Basis = Literal["energised", "opened"]
BASES: tuple[Basis, ...] = ("energised", "opened")


@dataclass(frozen=True)
class Spread:
    """Mean, median and 90th percentile of some durations; None without any."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        ordered = sorted(values)
        mean = sum(ordered) / len(ordered) if ordered else None
        return cls(len(ordered), mean, percentile(ordered, 0.5), percentile(ordered, 0.9))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, rounded to 0.01 day."""
        return {
            "count": self.count,
            "mean": _round(self.mean),
            "p50": _round(self.p50),
            "p90": _round(self.p90),
        }


@dataclass(frozen=True)
class CaseRecord:
    """One case reduced to what the figures need."""

    application_no: str
    customer_class: str
    unit: str | None
    energised_at: datetime | None
    measured: bool
    working_days: float | None
    calendar_days: float | None
    within_commitment: bool | None
    within_target: bool | None
    rework_causes: tuple[str, ...]
    survey_to_scheme_days: float | None
    scheme_drafting_days: float | None

    @property
    def month(self) -> str | None:
        """Month of energisation in Asia/Shanghai, as YYYY-MM."""
        return None if self.energised_at is None else self.energised_at.astimezone(SHANGHAI).strftime("%Y-%m")


@dataclass(frozen=True)
class CauseFigures:
    """Rework of one cause among a group's cases."""

    cases: int
    share: float | None
    returns: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, the share rounded to 0.0001."""
        return {"cases": self.cases, "share": _round(self.share, 4), "returns": self.returns}


@dataclass(frozen=True)
class GroupFigures:
    """The figures of one group of cases (see the module docstring for what each counts)."""

    customer_class: str | None
    unit: str | None
    month: str | None
    cases: int
    energised: int
    measured: int
    working_days: Spread
    calendar_days: Spread
    within_commitment: float | None
    within_target: float | None
    rework: dict[str, CauseFigures]
    survey_to_scheme_days: Spread
    scheme_drafting_days: Spread

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "customer_class": self.customer_class,
            "unit": self.unit,
            "month": self.month,
            "cases": self.cases,
            "energised": self.energised,
            "measured": self.measured,
            "days_to_power": {
                "working_days": self.working_days.as_dict(),
                "calendar_days": self.calendar_days.as_dict(),
            },
            "within_commitment_share": _round(self.within_commitment, 4),
            "within_target_share": _round(self.within_target, 4),
            "rework": {cause: figures.as_dict() for cause, figures in self.rework.items()},
            "survey_to_scheme_days": self.survey_to_scheme_days.as_dict(),
            "scheme_drafting_days": self.scheme_drafting_days.as_dict(),
        }


@dataclass(frozen=True)
class Findings:
    """Consistency findings found in the period."""

    total: int
    open: int
    cases: int
    by_category: dict[str, int]
    by_rule: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "total": self.total,
            "open": self.open,
            "cases": self.cases,
            "by_category": dict(self.by_category),
            "by_rule": dict(self.by_rule),
        }


@dataclass(frozen=True)
class ProcessFigures:
    """The process figures overall and grouped three ways, with work in progress and the checks' findings."""

    basis: Basis
    target_days: int
    overall: GroupFigures
    by_class: tuple[GroupFigures, ...]
    by_unit: tuple[GroupFigures, ...]
    by_month: tuple[GroupFigures, ...]
    in_progress: int
    findings: Findings

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "basis": self.basis,
            "target_working_days": self.target_days,
            "overall": self.overall.as_dict(),
            "by_class": [item.as_dict() for item in self.by_class],
            "by_unit": [item.as_dict() for item in self.by_unit],
            "by_month": [item.as_dict() for item in self.by_month],
            "in_progress": self.in_progress,
            "findings": self.findings.as_dict(),
        }


@dataclass(frozen=True)
class ProcessFilter:
    """Which cases the figures consider; the period is [period_from, period_to)."""

    basis: Basis = "energised"
    period_from: datetime | None = None
    period_to: datetime | None = None
    customer_class: str | None = None
    unit: str | None = None

    def __post_init__(self) -> None:
        if self.basis not in BASES:
            raise ValueError(f"basis must be one of {', '.join(BASES)}, got {self.basis!r}")
        if self.period_from and self.period_to and self.period_from >= self.period_to:
            raise ValueError(f"the period starts at {self.period_from} but ends at {self.period_to}")


def process_figures(
    conn: Connection,
    *,
    config: WorkflowConfig,
    calendar: WorkingCalendar,
    where: ProcessFilter | None = None,
    target_days: int = TARGET_WORKING_DAYS,
) -> ProcessFigures:
    """The figures over the cases `where` selects (default: every case)."""
    chosen = where or ProcessFilter()
    records = case_records(conn, config=config, calendar=calendar, where=chosen, target_days=target_days)
    return ProcessFigures(
        basis=chosen.basis,
        target_days=target_days,
        overall=group_figures(records),
        by_class=grouped(records, lambda record: (record.customer_class, None, None)),
        by_unit=grouped(records, lambda record: (None, record.unit, None)),
        by_month=grouped(
            [record for record in records if record.energised_at is not None],
            lambda record: (None, None, record.month),
        ),
        in_progress=in_progress(conn, chosen),
        findings=findings(conn, chosen),
    )


def case_records(
    conn: Connection,
    *,
    config: WorkflowConfig,
    calendar: WorkingCalendar,
    where: ProcessFilter,
    target_days: int = TARGET_WORKING_DAYS,
) -> list[CaseRecord]:
    """The cases `where` selects, each with its durations and rework causes."""
    if target_days < 1:
        raise ValueError(f"the target counts at least one working day, got {target_days}")
    selected = _selected(where, sorted({flow.terminal_stage for flow in config.flows}))
    visits: dict[str, list[Any]] = defaultdict(list)
    visit_query = (
        sa.select(stage_visits)
        .where(stage_visits.c.application_no.in_(sa.select(selected.c.application_no)))
        .order_by(stage_visits.c.application_no, stage_visits.c.ordinal)
    )
    for visit in conn.execute(visit_query):
        visits[visit.application_no].append(visit)
    rows = conn.execute(sa.select(selected).order_by(selected.c.opened_at, selected.c.application_no))
    return [_record(row, visits.get(row.application_no, []), config, calendar, target_days) for row in rows]


def _selected(where: ProcessFilter, terminal_stages: Sequence[str]) -> sa.Subquery:
    energised = sa.and_(cases.c.closed_at.is_not(None), cases.c.stage.in_(terminal_stages))
    query = sa.select(
        sa.case((energised, cases.c.closed_at), else_=None).label("energised_at"),
        cases.c.application_no,
        cases.c.customer_class,
        cases.c.responsible,
        cases.c.flow,
        cases.c.opened_at,
        cases.c.end_to_end_deadline,
    )
    if where.customer_class is not None:
        query = query.where(cases.c.customer_class == where.customer_class)
    if where.unit is not None:
        query = query.where(cases.c.responsible == where.unit)
    column = cases.c.closed_at if where.basis == "energised" else cases.c.opened_at
    if where.period_from is not None:
        query = query.where(column >= where.period_from)
    if where.period_to is not None:
        query = query.where(column < where.period_to)
    if where.basis == "energised":
        query = query.where(energised)
    return query.subquery()


def _record(
    row: Any, visits: Sequence[Any], config: WorkflowConfig, calendar: WorkingCalendar, target_days: int
) -> CaseRecord:
    opened: datetime = row.opened_at
    energised: datetime | None = row.energised_at
    # The terminal visit is the last one; first seen there, its entry is not the moment of power.
    measured = energised is not None and bool(visits) and bool(visits[-1].observed)
    working = calendar_days = None
    within_commitment = within_target = None
    if measured and energised is not None:
        working = calendar.working_time(opened, energised)
        # A source that reports power before submission gives 0, as working_time does, not a negative.
        calendar_days = max((energised - opened).total_seconds(), 0.0) / _SECONDS_PER_DAY
        day = local_date(energised)
        deadline: date | None = row.end_to_end_deadline
        within_commitment = None if deadline is None else day <= deadline
        within_target = day <= calendar.add_working_days(local_date(opened), target_days).due
    causes = tuple(
        visit.exit_cause or UNSPECIFIED for visit in visits if visit.exit_kind == TimelineKind.REWORK.value
    )
    survey_to_scheme = drafting = None
    if energised is not None:
        survey_to_scheme = _survey_to_scheme(row.flow, visits, config, calendar)
        drafting = _drafting(visits)
    return CaseRecord(
        application_no=row.application_no,
        customer_class=row.customer_class,
        unit=row.responsible,
        energised_at=energised,
        measured=measured,
        working_days=working,
        calendar_days=calendar_days,
        within_commitment=within_commitment,
        within_target=within_target,
        rework_causes=causes,
        survey_to_scheme_days=survey_to_scheme,
        scheme_drafting_days=drafting,
    )


def _survey_to_scheme(
    flow_name: str, visits: Sequence[Any], config: WorkflowConfig, calendar: WorkingCalendar
) -> float | None:
    flow = config.flow_named(flow_name)
    survey = next((step.stage for step in flow.steps if step.survey), None) if flow else None
    if survey is None:
        return None
    first = next((visit for visit in visits if visit.stage == survey), None)
    left = [
        visit.left_at
        for visit in visits
        if visit.stage == SCHEME_REPLY_STAGE and visit.exit_kind == TimelineKind.FORWARD.value
    ]
    if first is None or not first.observed or not left:
        return None
    return calendar.working_time(first.entered_at, left[-1])


def _drafting(visits: Sequence[Any]) -> float | None:
    scheme = [visit for visit in visits if visit.stage == SCHEME_REPLY_STAGE]
    if not scheme or any(not visit.observed or visit.duration_days is None for visit in scheme):
        return None
    return float(sum(visit.duration_days for visit in scheme))


GroupKey = tuple[str | None, str | None, str | None]


def grouped(records: Sequence[CaseRecord], key: Callable[[CaseRecord], GroupKey]) -> tuple[GroupFigures, ...]:
    """The figures of each group of records, in key order (a missing unit sorts first)."""
    groups: dict[GroupKey, list[CaseRecord]] = defaultdict(list)
    for record in records:
        groups[key(record)].append(record)

    def order(group: GroupKey) -> tuple[Hashable, ...]:
        return tuple(part or "" for part in group)

    return tuple(group_figures(groups[group], *group) for group in sorted(groups, key=order))


def group_figures(
    records: Sequence[CaseRecord],
    customer_class: str | None = None,
    unit: str | None = None,
    month: str | None = None,
) -> GroupFigures:
    """The figures of one group of cases."""
    measured = [record for record in records if record.measured]
    committed = [record.within_commitment for record in measured if record.within_commitment is not None]
    targeted = [record.within_target for record in measured if record.within_target is not None]
    return GroupFigures(
        customer_class=customer_class,
        unit=unit,
        month=month,
        cases=len(records),
        energised=sum(1 for record in records if record.energised_at is not None),
        measured=len(measured),
        working_days=Spread.of(record.working_days for record in measured if record.working_days is not None),
        calendar_days=Spread.of(
            record.calendar_days for record in measured if record.calendar_days is not None
        ),
        within_commitment=_share(sum(committed), len(committed)),
        within_target=_share(sum(targeted), len(targeted)),
        rework=_rework(records),
        survey_to_scheme_days=Spread.of(
            record.survey_to_scheme_days for record in records if record.survey_to_scheme_days is not None
        ),
        scheme_drafting_days=Spread.of(
            record.scheme_drafting_days for record in records if record.scheme_drafting_days is not None
        ),
    )


def _rework(records: Sequence[CaseRecord]) -> dict[str, CauseFigures]:
    # Known causes always appear; a cause the source invented is shown under its own name, not dropped.
    extra = sorted({cause for record in records for cause in record.rework_causes} - set(REWORK_CAUSES))
    extra = [cause for cause in extra if cause != UNSPECIFIED]
    result = {}
    for cause in (*REWORK_CAUSES, *extra, UNSPECIFIED, ANY_CAUSE):
        counts = [
            len(record.rework_causes) if cause == ANY_CAUSE else record.rework_causes.count(cause)
            for record in records
        ]
        with_cause = sum(1 for count in counts if count)
        result[cause] = CauseFigures(with_cause, _share(with_cause, len(records)), sum(counts))
    return result


def in_progress(conn: Connection, where: ProcessFilter) -> int:
    """Cases not energised: at the end of the period (basis energised) or now (basis opened)."""
    query = sa.select(sa.func.count()).select_from(cases)
    if where.customer_class is not None:
        query = query.where(cases.c.customer_class == where.customer_class)
    if where.unit is not None:
        query = query.where(cases.c.responsible == where.unit)
    if where.basis == "opened":
        if where.period_from is not None:
            query = query.where(cases.c.opened_at >= where.period_from)
        if where.period_to is not None:
            query = query.where(cases.c.opened_at < where.period_to)
        query = query.where(cases.c.closed_at.is_(None))
    elif where.period_to is not None:
        query = query.where(
            cases.c.opened_at < where.period_to,
            sa.or_(cases.c.closed_at.is_(None), cases.c.closed_at >= where.period_to),
        )
    else:
        query = query.where(cases.c.closed_at.is_(None))
    return int(conn.execute(query).scalar_one())


def findings(conn: Connection, where: ProcessFilter) -> Findings:
    """Consistency findings found in the period, of the class and unit asked for.

    A finding on an application the hub does not track has no class or unit: it counts only when neither
    is asked for.
    """
    table = consistency_findings
    query = sa.select(table.c.application_no, table.c.rule, table.c.category, table.c.cleared_at)
    if where.customer_class is not None or where.unit is not None:
        query = query.join(cases, cases.c.application_no == table.c.application_no)
        if where.customer_class is not None:
            query = query.where(cases.c.customer_class == where.customer_class)
        if where.unit is not None:
            query = query.where(cases.c.responsible == where.unit)
    if where.period_from is not None:
        query = query.where(table.c.found_at >= where.period_from)
    if where.period_to is not None:
        query = query.where(table.c.found_at < where.period_to)
    rows = conn.execute(query).all()
    by_category: dict[str, int] = defaultdict(int)
    by_rule: dict[str, int] = defaultdict(int)
    for row in rows:
        by_category[row.category] += 1
        by_rule[row.rule] += 1
    return Findings(
        total=len(rows),
        open=sum(1 for row in rows if row.cleared_at is None),
        cases=len({row.application_no for row in rows}),
        by_category=dict(sorted(by_category.items())),
        by_rule=dict(sorted(by_rule.items())),
    )


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)
