"""Applications API: tracked cases with filters and cursor pagination, and their timelines.

The case view embeds the latest feasibility assessment of the application, the same document
GET /v1/applications/{no}/feasibility serves, or null while there is none, and the consistency findings
of the case (workflow/findings.py), personal values masked unless the caller holds pii:read; an unmasked
read is recorded in the audit log.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, Field

from api.context import Calendar, Database, Now
from api.listing import (
    LIST_PROBLEMS,
    CursorParam,
    Page,
    check_sort,
    limit_param,
    page_response,
    sort_param,
)
from api.listing import decode_cursor as decode_cursor_of
from api.listing import encode_cursor as encode_cursor_of
from api.problems import problem, problem_responses
from api.security import PII_READ, caller_of
from canonical_model.application import BusinessType, CustomerClass, ImportanceGrade
from canonical_model.case import Case, CaseOutcome, CaseStatus, StageTransition, SurveyAssignment
from canonical_model.common import CanonicalModel
from canonical_model.consistency import FindingValue
from canonical_model.feasibility import FeasibilityAssessment
from store.audit import record_pii_read
from store.database import Connection
from store.feasibility import assessment_document
from workflow.caselog import case_feed_of
from workflow.findings import findings_of
from workflow.queries import CaseFilter, get_case, get_timeline, list_cases
from workflow.workdays import SHANGHAI

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


LISTING = "applications"
SORTS = ("submitted_at",)  # (opened_at, application_no) is the key the case store pages by


def encode_cursor(key: tuple[datetime, str]) -> str:
    """An opaque cursor for the position after a case."""
    return encode_cursor_of(LISTING, [key[0].isoformat(), key[1]])


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor stands for; 400 invalid-cursor when this listing did not make it."""
    opened_at, application_no = decode_cursor_of(LISTING, cursor, 2)
    try:
        moment = datetime.fromisoformat(opened_at)
    except (TypeError, ValueError):
        moment = None
    if moment is None or moment.tzinfo is None or not isinstance(application_no, str):
        raise problem("invalid-cursor", f"cursor {cursor[:80]!r} is not a cursor of this listing")
    return moment, application_no


class CaseNotification(CanonicalModel):
    """A case event the hub published about the application (stage change, assignment, deadline alert)."""

    event_id: str = Field(description="id of the event")
    type: str = Field(description="event type", examples=["cn.yekuo.case.stage_changed.v1"])
    stage: str | None = Field(description="stage the event is about")
    time: AwareDatetime = Field(description="when it happened")
    data: dict[str, Any] = Field(description="the event's data")


EndToEndStatus = Literal[
    "on_track", "at_risk", "overdue", "paused", "met", "missed", "withdrawn", "cancelled"
]


class EndToEndView(CanonicalModel):
    """A case against the utility's end-to-end commitment, counted in working days from acceptance."""

    end_to_end_commitment_days: int = Field(
        ge=1, description="working days the utility commits to from acceptance to power (全流程时限)"
    )
    end_to_end_deadline: date | None = Field(
        description="last working day of the commitment, the customer's works added; null while they run"
    )
    end_to_end_provisional: bool = Field(description="the end-to-end deadline counts days not yet final")
    end_to_end_status: EndToEndStatus = Field(
        description=(
            "on_track, at_risk or overdue while open; paused in the customer's works; met or missed once"
            " energised; withdrawn or cancelled when the case closed without power"
        )
    )
    end_to_end_working_days_left: int | None = Field(
        description="working days left to the end-to-end deadline, negative past it; null unless open"
    )


class ApplicationSummary(EndToEndView):
    """A tracked application as the listing shows it: the case without its documents and timeline."""

    application_no: str = Field(description="application number (申请编号)")
    customer_no: str = Field(description="customer number (户号)")
    customer_class: CustomerClass = Field(description="customer class (客户分类)")
    business_type: BusinessType = Field(description="business type (业务类型)")
    importance_grade: ImportanceGrade = Field(description="important user grade (重要用户等级)")
    flow: str = Field(description="flow of workflow/stages.yaml the case follows (流程)")
    province: str | None = Field(description="province whose limits apply, if configured")
    status: CaseStatus = Field(description="open or closed")
    stage: str = Field(description="current stage (当前环节)")
    stage_entered_at: AwareDatetime = Field(description="when the current stage was entered")
    stage_limit_days: int | None = Field(description="limit of the current stage, working days")
    deadline: date | None = Field(description="due date of the current stage (到期日)")
    deadline_provisional: bool = Field(description="deadline counts unpublished calendar days")
    working_days_left: int | None = Field(
        description="working days left in the current stage; null when closed"
    )
    overdue: bool = Field(description="the current stage is past its deadline")
    at_risk: bool = Field(description="the current stage is close to its deadline")
    opened_at: AwareDatetime = Field(description="when the application was accepted (受理时间)")
    submitted_at: AwareDatetime = Field(description="when the application was submitted (same as opened_at)")
    closed_at: AwareDatetime | None = Field(description="when the terminal stage was entered")
    outcome: CaseOutcome | None = Field(description="energised, withdrawn or cancelled; null while open")
    updated_at: AwareDatetime = Field(description="when the case last changed")
    responsible: str | None = Field(description="responsible supply unit (责任单位)")
    assignee: str | None = Field(description="staff id of the open survey task (勘查人员)")
    rework_count: int = Field(ge=0, description="returns to an earlier stage (返工次数)")
    anomaly_count: int = Field(ge=0, description="transitions the stage model does not allow")


class ApplicationPage(Page[ApplicationSummary]):
    """One page of tracked applications."""


class ApplicationTimeline(CanonicalModel):
    """An application's stage changes and hub actions, in order."""

    application_no: str = Field(description="application number (申请编号)")
    timeline: tuple[StageTransition, ...] = Field(description="the entries, oldest first")


class CaseFinding(CanonicalModel):
    """A consistency finding of the case: records of two systems (or two records) that disagree."""

    rule: str = Field(description="configured rule that found it (workflow/consistency.yaml)")
    category: str = Field(description="rework cause it prevents", examples=["information_error"])
    systems: tuple[str, ...] = Field(description="the systems whose records disagree")
    values: tuple[FindingValue, ...] = Field(
        description="the disagreeing values per system; personal ones masked without pii:read"
    )
    message: str = Field(description="what disagrees, in the rule's words")
    accepted: bool = Field(
        description="the online submission accepted it by naming the rule (accept_findings)"
    )
    found_at: AwareDatetime = Field(description="when the hub found it (again)")
    cleared_at: AwareDatetime | None = Field(
        description="when a later record resolved it; null while it stands"
    )


class CaseView(Case, EndToEndView):
    """A tracked application: the case (case.v1) with its deadline state, documents and notifications."""

    submitted_at: AwareDatetime = Field(description="when the application was submitted (same as opened_at)")
    updated_at: AwareDatetime = Field(description="when the case last changed")
    working_days_left: int | None = Field(
        description="working days left in the current stage; null when closed"
    )
    overdue: bool = Field(description="the current stage is past its deadline")
    at_risk: bool = Field(description="the current stage is close to its deadline")
    anomaly_count: int = Field(ge=0, description="transitions the stage model does not allow")
    assignment: SurveyAssignment | None = Field(description="the latest site-survey assignment, if any")
    application: dict[str, Any] = Field(description="the ConnectionApplication document as last received")
    notifications: tuple[CaseNotification, ...] = Field(description="case events published, oldest first")
    feasibility: FeasibilityAssessment | None = Field(
        description="the latest supply-feasibility assessment, as /feasibility serves it; null while none"
    )
    findings: tuple[CaseFinding, ...] = Field(
        description="consistency findings, standing and cleared, oldest first (一致性核查)"
    )


def latest_feasibility(conn: Connection, application_no: str) -> dict[str, Any] | None:
    """The kept feasibility assessment of an application as /feasibility serves it, or None."""
    document = assessment_document(conn, application_no)
    if document is None:
        return None
    return FeasibilityAssessment.model_validate(document).model_dump(mode="json", exclude_none=True)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=SHANGHAI)


router = APIRouter(tags=["applications"])


@router.get(
    "/v1/applications",
    summary="Tracked applications, filtered and paged",
    responses={200: {"model": ApplicationPage}, **LIST_PROBLEMS},
)
def list_applications(
    engine: Database,
    calendar: Calendar,
    now: Now,
    stage: Annotated[str | None, Query(max_length=64, description="current stage id")] = None,
    customer_class: Annotated[CustomerClass | None, Query(description="customer class")] = None,
    unit: Annotated[str | None, Query(max_length=32, description="responsible supply unit (ORG_NO)")] = None,
    overdue: Annotated[bool | None, Query(description="current stage past its deadline")] = None,
    at_risk: Annotated[bool | None, Query(description="current stage close to its deadline")] = None,
    submitted_from: Annotated[date | None, Query(description="submitted on or after (Asia/Shanghai)")] = None,
    submitted_to: Annotated[date | None, Query(description="submitted on or before (Asia/Shanghai)")] = None,
    limit: Annotated[int, limit_param(DEFAULT_LIMIT, MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    sort: Annotated[str | None, sort_param(SORTS)] = None,
) -> Response:
    check_sort(sort, SORTS)
    if submitted_from is not None and submitted_to is not None and submitted_from > submitted_to:
        raise problem(
            "invalid-parameter", f"submitted_from {submitted_from} is after submitted_to {submitted_to}"
        )
    where = CaseFilter(
        stage=stage,
        customer_class=customer_class.value if customer_class else None,
        unit=unit,
        overdue=overdue,
        at_risk=at_risk,
        submitted_from=_start_of(submitted_from) if submitted_from else None,
        submitted_before=_start_of(submitted_to + timedelta(days=1)) if submitted_to else None,
    )
    after = decode_cursor(cursor) if cursor else None
    with engine.connect() as conn:
        items, following = list_cases(conn, where, limit=limit, after=after, calendar=calendar, now=now)
    return page_response(items, limit, encode_cursor(following) if following else None)


@router.get(
    "/v1/applications/{application_no}",
    summary="A tracked application with its timeline, notifications and latest feasibility assessment",
    responses={200: {"model": CaseView}, **problem_responses("application-not-found")},
)
def read_application(
    application_no: str, request: Request, engine: Database, calendar: Calendar, now: Now
) -> dict[str, Any]:
    principal = caller_of(request.scope)
    unmasked = principal is not None and principal.can(PII_READ)
    # Reading unmasked personal values and recording who did it commit together, or neither happens.
    with engine.begin() as conn:
        case = get_case(conn, application_no, calendar=calendar, now=now)
        if case is None:
            raise problem("application-not-found", f"application {application_no} is not tracked")
        notifications = case_feed_of(conn, application_no)
        feasibility = latest_feasibility(conn, application_no)
        findings = findings_of(conn, application_no, unmasked=unmasked)
        personal = sorted(
            {f"findings.{item['rule']}.{value['field']}" for item in findings for value in item["values"]
             if value["personal"]}
        )  # fmt: skip
        if unmasked and personal and principal is not None:
            record_pii_read(conn, principal.sub, f"application/{application_no}", personal)
    return {**case, "notifications": notifications, "feasibility": feasibility, "findings": findings}


@router.get(
    "/v1/applications/{application_no}/timeline",
    summary="Stage changes and hub actions of an application, in order",
    responses={200: {"model": ApplicationTimeline}, **problem_responses("application-not-found")},
)
def read_timeline(application_no: str, engine: Database) -> dict[str, Any]:
    with engine.connect() as conn:
        entries = get_timeline(conn, application_no)
    if entries is None:
        raise problem("application-not-found", f"application {application_no} is not tracked")
    return {"application_no": application_no, "timeline": entries}
