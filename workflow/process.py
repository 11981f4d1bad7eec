"""Process figures: time from application to power, commitments kept, rework by cause, the checks' findings.

What each figure counts (a case is a row of `cases`, its visits the rows of `stage_visits`). The durations,
commitment and target facts of each case are counted once, when the case is stored (workflow/facts.py,
table case_figures); the figures are counts, shares and spreads over those rows.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from canonical_model.case import TimelineKind
from store.schema import case_figures, cases, consistency_findings, stage_visits
from workflow.analytics import percentile

# Rework causes a source may give (stage_visits.exit_cause); UNSPECIFIED stands for none given.
REWORK_CAUSES = ("information_error", "documents_missing", "design_change", "grid_constraint")
UNSPECIFIED = "unspecified"
ANY_CAUSE = "any"
# Customers ask for power within 15 working days (FACTS.md section 1).
TARGET_WORKING_DAYS = 15

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


_NONE = Spread(0, None, None, None)
Grouping = Literal["overall", "class", "unit", "month", "class_unit"]
GROUPINGS: tuple[Grouping, ...] = ("overall", "class", "unit", "month")
_KEYS: dict[Grouping, tuple[str, ...]] = {
    "overall": (),
    "class": ("customer_class",),
    "unit": ("unit",),
    "month": ("energised_month",),
    "class_unit": ("customer_class", "unit"),
}
_SPREADS = ("working_days", "calendar_days", "survey_to_scheme_days", "scheme_drafting_days")
GroupKey = tuple[str | None, str | None, str | None]


def process_figures(
    conn: Connection,
    *,
    where: ProcessFilter | None = None,
    target_days: int = TARGET_WORKING_DAYS,
    groupings: Sequence[Grouping] = GROUPINGS,
) -> ProcessFigures:
    """The figures over the cases `where` selects (default: every case); groupings not asked for are empty."""
    chosen = where or ProcessFilter()
    groups = grouped_figures(conn, where=chosen, groupings=("overall", *groupings), target_days=target_days)
    return ProcessFigures(
        basis=chosen.basis,
        target_days=target_days,
        overall=groups["overall"][0],
        by_class=groups.get("class", ()),
        by_unit=groups.get("unit", ()),
        by_month=groups.get("month", ()),
        in_progress=in_progress(conn, chosen),
        findings=findings(conn, chosen),
    )


def grouped_figures(
    conn: Connection,
    *,
    where: ProcessFilter,
    groupings: Sequence[Grouping],
    target_days: int = TARGET_WORKING_DAYS,
) -> dict[Grouping, tuple[GroupFigures, ...]]:
    """The figures of each group of each grouping, in key order (a missing key sorts first).

    The database counts and sums over case_figures, one query per grouping. PostgreSQL also takes the
    spreads' percentiles (percentile_cont interpolates as `percentile` does); on other databases the
    durations are read once for every grouping and spread here. The reworks are read once.
    """
    if target_days < 1:
        raise ValueError(f"the target counts at least one working day, got {target_days}")
    selected = _selected(where)
    in_database = conn.dialect.name == "postgresql"
    durations = [] if in_database else _durations(conn, selected)
    reworks = conn.execute(
        sa.select(
            selected.c.customer_class,
            selected.c.unit,
            selected.c.energised_month,
            stage_visits.c.application_no,
            stage_visits.c.exit_cause,
        )
        .join(selected, stage_visits.c.application_no == selected.c.application_no)
        .where(stage_visits.c.exit_kind == TimelineKind.REWORK.value)
    ).all()
    result: dict[Grouping, tuple[GroupFigures, ...]] = {}
    for grouping in dict.fromkeys(groupings):
        counts, spreads = _aggregates(conn, selected, grouping, target_days, spreads=in_database)
        if not in_database:
            spreads = _spread_here(durations, grouping)
        returns: dict[GroupKey, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
        for row in reworks:
            by_case = returns[_key(grouping, row)][row.exit_cause or UNSPECIFIED]
            by_case[row.application_no] = by_case.get(row.application_no, 0) + 1
        result[grouping] = tuple(
            _group(group, counts[group], spreads.get(group, {}), returns[group])
            for group in sorted(counts, key=lambda group: tuple(part or "" for part in group))
        )
    return result


def _selected(where: ProcessFilter) -> sa.Subquery:
    table = case_figures
    query = sa.select(table)
    if where.customer_class is not None:
        query = query.where(table.c.customer_class == where.customer_class)
    if where.unit is not None:
        query = query.where(table.c.unit == where.unit)
    column = table.c.energised_at if where.basis == "energised" else table.c.opened_at
    if where.period_from is not None:
        query = query.where(column >= where.period_from)
    if where.period_to is not None:
        query = query.where(column < where.period_to)
    if where.basis == "energised":
        query = query.where(table.c.energised_at.is_not(None))
    return query.subquery()


@dataclass(frozen=True)
class _Counts:
    cases: int
    energised: int
    measured: int
    committed: int
    within_commitment: int
    targeted: int
    within_target: int


Spreads = dict[GroupKey, dict[str, Spread]]


def _aggregates(
    conn: Connection, selected: sa.Subquery, grouping: Grouping, target_days: int, *, spreads: bool
) -> tuple[dict[GroupKey, _Counts], Spreads]:
    """Each group's counts and, with spreads (PostgreSQL only), its spreads."""
    keys = [selected.c[name] for name in _KEYS[grouping]]

    def true_count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    columns: list[sa.ColumnElement[Any]] = [
        sa.func.count(),
        sa.func.count(selected.c.energised_at),
        true_count(selected.c.measured.is_(True)),
        sa.func.count(selected.c.within_commitment),
        true_count(selected.c.within_commitment.is_(True)),
        sa.func.count(selected.c.power_working_day),
        true_count(selected.c.power_working_day <= target_days),
    ]
    if spreads:
        for name in _SPREADS:
            value = selected.c[name]
            # Both fractions in one aggregate: one sort of the group's values, not two.
            quantiles = sa.func.percentile_cont(postgresql.array([0.5, 0.9])).within_group(value)
            columns += [sa.func.count(value), sa.func.avg(value), quantiles]
    query = sa.select(*keys, *columns)
    if keys:
        query = query.group_by(*keys)
    if grouping == "month":
        query = query.where(selected.c.energised_month.is_not(None))
    counts: dict[GroupKey, _Counts] = {}
    spread: Spreads = {}
    for row in conn.execute(query):
        named = dict(zip(_KEYS[grouping], row[: len(keys)], strict=True))
        group = (named.get("customer_class"), named.get("unit"), named.get("energised_month"))
        values = row[len(keys) :]
        counts[group] = _Counts(*(int(value) for value in values[:7]))
        if spreads:
            spread[group] = {
                name: Spread(int(count), _float(mean), *(_float(q) for q in quantiles or (None, None)))
                for name, (count, mean, quantiles) in zip(
                    _SPREADS,
                    (values[7 + 3 * index : 10 + 3 * index] for index in range(len(_SPREADS))),
                    strict=True,
                )
            }
    return counts, spread


def _durations(conn: Connection, selected: sa.Subquery) -> Sequence[Any]:
    return conn.execute(
        sa.select(
            selected.c.customer_class,
            selected.c.unit,
            selected.c.energised_month,
            *(selected.c[name] for name in _SPREADS),
        ).where(sa.or_(*(selected.c[name].is_not(None) for name in _SPREADS)))
    ).all()


def _spread_here(durations: Sequence[Any], grouping: Grouping) -> Spreads:
    values: dict[GroupKey, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in durations:
        group = _key(grouping, row)
        for name in _SPREADS:
            if (value := getattr(row, name)) is not None:
                values[group][name].append(value)
    return {
        group: {name: Spread.of(items) for name, items in named.items()} for group, named in values.items()
    }


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _key(grouping: Grouping, row: Any) -> GroupKey:
    names = _KEYS[grouping]
    return (
        row.customer_class if "customer_class" in names else None,
        row.unit if "unit" in names else None,
        row.energised_month if "energised_month" in names else None,
    )


def _group(
    group: GroupKey, counts: _Counts, spreads: dict[str, Spread], returns: dict[str, dict[str, int]]
) -> GroupFigures:
    customer_class, unit, month = group
    return GroupFigures(
        customer_class=customer_class,
        unit=unit,
        month=month,
        cases=counts.cases,
        energised=counts.energised,
        measured=counts.measured,
        working_days=spreads.get("working_days", _NONE),
        calendar_days=spreads.get("calendar_days", _NONE),
        within_commitment=_share(counts.within_commitment, counts.committed),
        within_target=_share(counts.within_target, counts.targeted),
        rework=_rework(returns, counts.cases),
        survey_to_scheme_days=spreads.get("survey_to_scheme_days", _NONE),
        scheme_drafting_days=spreads.get("scheme_drafting_days", _NONE),
    )


def _rework(returns: dict[str, dict[str, int]], cases_in_group: int) -> dict[str, CauseFigures]:
    # Known causes always appear; a cause the source invented is shown under its own name, not dropped.
    extra = sorted(set(returns) - {*REWORK_CAUSES, UNSPECIFIED})
    every: dict[str, int] = defaultdict(int)
    for by_case in returns.values():
        for application_no, count in by_case.items():
            every[application_no] += count
    result = {}
    for cause in (*REWORK_CAUSES, *extra, UNSPECIFIED, ANY_CAUSE):
        by_case = every if cause == ANY_CAUSE else returns.get(cause, {})
        with_cause = len(by_case)
        result[cause] = CauseFigures(with_cause, _share(with_cause, cases_in_group), sum(by_case.values()))
    return result


def in_progress(conn: Connection, where: ProcessFilter) -> int:
    """Cases not closed: at the end of the period (basis energised) or now (basis opened)."""
    table = case_figures
    query = sa.select(sa.func.count()).select_from(table)
    if where.customer_class is not None:
        query = query.where(table.c.customer_class == where.customer_class)
    if where.unit is not None:
        query = query.where(table.c.unit == where.unit)
    if where.basis == "opened":
        if where.period_from is not None:
            query = query.where(table.c.opened_at >= where.period_from)
        if where.period_to is not None:
            query = query.where(table.c.opened_at < where.period_to)
        query = query.where(table.c.closed_at.is_(None))
    elif where.period_to is not None:
        query = query.where(
            table.c.opened_at < where.period_to,
            sa.or_(table.c.closed_at.is_(None), table.c.closed_at >= where.period_to),
        )
    else:
        query = query.where(table.c.closed_at.is_(None))
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
