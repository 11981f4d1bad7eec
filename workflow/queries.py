"""Read side of the workflow state, for the API, the report and the demo summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from canonical_model.case import CaseOutcome, CaseStatus
from canonical_model.events import CASE_ASSIGNED
from store.database import utcnow
from store.schema import case_events, cases, customers, stage_visits, timeline
from workflow.workdays import WorkingCalendar, local_date

# Outcomes of a case closed without power.
_UNDELIVERED = frozenset({CaseOutcome.WITHDRAWN.value, CaseOutcome.CANCELLED.value})


@dataclass(frozen=True)
class CaseFilter:
    """Which cases a listing returns; None means any. Submitted dates are Asia/Shanghai dates, inclusive."""

    stage: str | None = None
    customer_class: str | None = None
    unit: str | None = None
    overdue: bool | None = None
    at_risk: bool | None = None
    submitted_from: datetime | None = None
    submitted_before: datetime | None = None


def _deadline_state(row: Row[Any], today: date, calendar: WorkingCalendar) -> dict[str, Any]:
    open_case = row.status == CaseStatus.OPEN.value
    deadline: date | None = row.deadline
    if not open_case or deadline is None:
        return {"working_days_left": None, "overdue": False, "at_risk": False}
    overdue = today > deadline
    return {
        "working_days_left": calendar.days_left(today, deadline),
        "overdue": overdue,
        "at_risk": not overdue and row.at_risk_from is not None and today >= row.at_risk_from,
    }


def _end_to_end_state(row: Row[Any], today: date, calendar: WorkingCalendar) -> dict[str, Any]:
    """The case against its end-to-end commitment: met or missed once energised, else where it stands today.

    A case withdrawn or cancelled was never delivered, so it neither met nor missed the commitment: its
    status is its outcome.
    """
    deadline: date | None = row.end_to_end_deadline
    left: int | None = None
    if row.outcome in _UNDELIVERED:
        status = row.outcome
    elif deadline is None:
        status = "paused"
    elif row.status != CaseStatus.OPEN.value:
        closed = local_date(row.closed_at) if row.closed_at is not None else today
        status = "met" if closed <= deadline else "missed"
    else:
        left = calendar.days_left(today, deadline)
        if today > deadline:
            status = "overdue"
        elif row.end_to_end_at_risk_from is not None and today >= row.end_to_end_at_risk_from:
            status = "at_risk"
        else:
            status = "on_track"
    return {
        "end_to_end_commitment_days": row.end_to_end_commitment_days,
        "end_to_end_deadline": deadline,
        "end_to_end_provisional": row.end_to_end_provisional,
        "end_to_end_status": status,
        "end_to_end_working_days_left": left,
    }


def _summary(row: Row[Any], today: date, calendar: WorkingCalendar) -> dict[str, Any]:
    return {
        "application_no": row.application_no,
        "customer_no": row.customer_no,
        "customer_class": row.customer_class,
        "business_type": row.business_type,
        "importance_grade": row.importance_grade,
        "flow": row.flow,
        "province": row.province,
        "status": row.status,
        "stage": row.stage,
        "stage_entered_at": row.stage_entered_at,
        "stage_limit_days": row.stage_limit_days,
        "deadline": row.deadline,
        "deadline_provisional": row.deadline_provisional,
        **_deadline_state(row, today, calendar),
        **_end_to_end_state(row, today, calendar),
        "opened_at": row.opened_at,
        "submitted_at": row.opened_at,
        "closed_at": row.closed_at,
        "outcome": row.outcome,
        "updated_at": row.updated_at,
        "responsible": row.responsible,
        "assignee": row.assignee,
        "rework_count": row.rework_count,
        "anomaly_count": row.anomaly_count,
    }


# What a summary shows: the documents (application, anomalies) stay in the database; reading and decoding
# them was half of what a list page cost.
_SUMMARY_COLUMNS = tuple(
    cases.c[name]
    for name in (
        "application_no", "customer_no", "customer_class", "business_type", "importance_grade", "flow",
        "province", "status", "stage", "stage_entered_at", "stage_limit_days", "deadline", "at_risk_from",
        "deadline_provisional", "end_to_end_commitment_days", "end_to_end_deadline",
        "end_to_end_at_risk_from", "end_to_end_provisional", "opened_at", "closed_at", "outcome",
        "updated_at", "responsible", "assignee", "rework_count", "anomaly_count",
    )
)  # fmt: skip


def _entries(conn: Connection, application_no: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(timeline).where(timeline.c.application_no == application_no).order_by(timeline.c.position)
    ).all()
    return [
        {
            "application_no": application_no,
            "position": entry.position,
            "at": entry.at,
            "kind": entry.kind,
            "stage_from": entry.stage_from,
            "stage_to": entry.stage_to,
            "visit": entry.visit,
            "source_system": entry.source_system,
            "source_event_id": entry.source_event_id,
            "responsible": entry.responsible,
            "note": entry.note,
            "cause": entry.cause,
        }
        for entry in rows
    ]


def get_case(
    conn: Connection,
    application_no: str,
    *,
    calendar: WorkingCalendar | None = None,
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """A case with its application document, deadline state at `now`, assignment and timeline, or None."""
    row = conn.execute(sa.select(cases).where(cases.c.application_no == application_no)).first()
    if row is None:
        return None
    assignment = conn.execute(
        sa.select(case_events.c.data)
        .where(case_events.c.application_no == application_no, case_events.c.event_type == CASE_ASSIGNED)
        .order_by(case_events.c.time.desc(), case_events.c.event_id.desc())
        .limit(1)
    ).scalar()
    return {
        **_summary(row, local_date(now or utcnow()), calendar or WorkingCalendar()),
        "anomalies": row.anomalies,
        "assignment": assignment,
        "application": row.application,
        "timeline": _entries(conn, application_no),
    }


def get_timeline(conn: Connection, application_no: str) -> list[dict[str, Any]] | None:
    """A case's timeline in order, or None when the case is not tracked."""
    exists = conn.execute(sa.select(cases.c.application_no).where(cases.c.application_no == application_no))
    if exists.first() is None:
        return None
    return _entries(conn, application_no)


def _overdue(today: date) -> sa.ColumnElement[bool]:
    return sa.and_(cases.c.status == CaseStatus.OPEN.value, cases.c.deadline < today)


def _at_risk(today: date) -> sa.ColumnElement[bool]:
    return sa.and_(
        cases.c.status == CaseStatus.OPEN.value, cases.c.at_risk_from <= today, cases.c.deadline >= today
    )


@dataclass(frozen=True)
class StageCount:
    """Open cases in one stage, and how many of them are at risk or past the stage's deadline."""

    stage: str
    cases: int
    at_risk: int
    overdue: int


def open_cases_by_stage(
    conn: Connection,
    *,
    customer_class: str | None = None,
    unit: str | None = None,
    now: datetime | None = None,
) -> list[StageCount]:
    """Open cases counted per current stage (one grouped query), with the same at-risk and overdue tests as
    the listing's filters, so each count is what the listing filtered the same way pages through."""
    today = local_date(now or utcnow())
    query = sa.select(
        cases.c.stage,
        sa.func.count(),
        sa.func.sum(sa.case((_at_risk(today), 1), else_=0)),
        sa.func.sum(sa.case((_overdue(today), 1), else_=0)),
    ).where(cases.c.status == CaseStatus.OPEN.value)
    if customer_class is not None:
        query = query.where(cases.c.customer_class == customer_class)
    if unit is not None:
        query = query.where(cases.c.responsible == unit)
    rows = conn.execute(query.group_by(cases.c.stage)).all()
    return [StageCount(row[0], int(row[1]), int(row[2] or 0), int(row[3] or 0)) for row in rows]


def list_cases(
    conn: Connection,
    where: CaseFilter,
    *,
    limit: int,
    after: tuple[datetime, str] | None = None,
    calendar: WorkingCalendar | None = None,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], tuple[datetime, str] | None]:
    """Up to `limit` case summaries in (submitted time, application number) order after `after`.

    Returns the page and the key to continue after, or None when the page is the last one.
    """
    today = local_date(now or utcnow())
    query = sa.select(*_SUMMARY_COLUMNS)
    if where.stage is not None:
        query = query.where(cases.c.stage == where.stage)
    if where.customer_class is not None:
        query = query.where(cases.c.customer_class == where.customer_class)
    if where.unit is not None:
        query = query.where(cases.c.responsible == where.unit)
    if where.submitted_from is not None:
        query = query.where(cases.c.opened_at >= where.submitted_from)
    if where.submitted_before is not None:
        query = query.where(cases.c.opened_at < where.submitted_before)
    overdue, at_risk = _overdue(today), _at_risk(today)
    if where.overdue is not None:
        query = query.where(overdue if where.overdue else sa.not_(sa.func.coalesce(overdue, False)))
    if where.at_risk is not None:
        query = query.where(at_risk if where.at_risk else sa.not_(sa.func.coalesce(at_risk, False)))
    if after is not None:
        opened_at, application_no = after
        # The first condition alone bounds the index range on every dialect; the second skips the rows of
        # that moment already sent.
        query = query.where(
            cases.c.opened_at >= opened_at,
            sa.or_(cases.c.opened_at > opened_at, cases.c.application_no > application_no),
        )
    rows = conn.execute(query.order_by(cases.c.opened_at, cases.c.application_no).limit(limit + 1)).all()
    page = rows[:limit]
    chosen = calendar or WorkingCalendar()
    items = [_summary(row, today, chosen) for row in page]
    following = (page[-1].opened_at, page[-1].application_no) if len(rows) > limit and page else None
    return items, following


def _used_days(row: Row[Any], calendar: WorkingCalendar, now: datetime) -> float | None:
    """Working days a visit took; one not left yet has used those up to now, unless it is in a terminal
    stage (no limit), whose time is no work."""
    if row.left_at is not None:
        return float(row.duration_days) if row.duration_days is not None else None
    return calendar.working_time(row.entered_at, now) if row.limit_days is not None else None


def stage_visits_of(
    conn: Connection, application_no: str, *, calendar: WorkingCalendar, now: datetime
) -> list[dict[str, Any]]:
    """A case's stage visits in order: entry, exit, limit, deadline and the working days used."""
    rows = conn.execute(
        sa.select(stage_visits)
        .where(stage_visits.c.application_no == application_no)
        .order_by(stage_visits.c.ordinal)
    ).all()
    return [
        {
            "stage": row.stage,
            "unit": row.unit,
            "entered_at": row.entered_at,
            "left_at": row.left_at,
            "exit_kind": row.exit_kind,
            "exit_cause": row.exit_cause,
            "observed": row.observed,
            "limit_days": row.limit_days,
            "deadline": row.deadline,
            "used_days": _used_days(row, calendar, now),
            "over_limit": row.over_limit,
        }
        for row in rows
    ]


def get_customer(conn: Connection, customer_no: str) -> dict[str, Any] | None:
    """The latest canonical customer document, or None."""
    value = conn.execute(
        sa.select(customers.c.document).where(customers.c.customer_no == customer_no)
    ).scalar()
    return dict(value) if value is not None else None


def case_customer_no(conn: Connection, application_no: str) -> str | None:
    """The customer number of a tracked application, or None when the hub tracks no such case."""
    value = conn.execute(
        sa.select(cases.c.customer_no).where(cases.c.application_no == application_no)
    ).scalar()
    return str(value) if value is not None else None


def is_tracked(conn: Connection, application_no: str) -> bool:
    """Whether the hub tracks a case of the application."""
    query = sa.select(cases.c.application_no).where(cases.c.application_no == application_no)
    return conn.execute(query).first() is not None


def count_cases(conn: Connection) -> int:
    """How many applications are tracked."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(cases)).scalar_one())
