"""Applications API: tracked cases with filters and cursor pagination, timelines and stage analytics."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy.engine import Engine

from canonical_model.application import CustomerClass
from store.database import utcnow
from workflow.analytics import stage_analytics
from workflow.caselog import case_feed_of
from workflow.cases import default_tracker
from workflow.config import WorkflowConfig
from workflow.queries import CaseFilter, get_case, get_timeline, list_cases
from workflow.workdays import SHANGHAI, WorkingCalendar

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def encode_cursor(key: tuple[datetime, str]) -> str:
    """An opaque cursor for the position after a case."""
    raw = json.dumps([key[0].isoformat(), key[1]], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor stands for; HTTP 400 when it was not made by encode_cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        opened_at, application_no = json.loads(raw)
        moment = datetime.fromisoformat(opened_at)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise HTTPException(400, f"cursor {cursor!r} is not a cursor this API returned") from exc
    if moment.tzinfo is None or not isinstance(application_no, str):
        raise HTTPException(400, f"cursor {cursor!r} is not a cursor this API returned")
    return moment, application_no


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=SHANGHAI)


def applications_router(
    engine: Engine,
    *,
    config: WorkflowConfig | None = None,
    calendar: WorkingCalendar | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> APIRouter:
    """The /v1/applications and /v1/analytics routes over the given database.

    config gives stage order and names to the analytics (default: the configured stage model); clock
    gives "now" for deadline state (overdue, at risk, working days left).
    """
    router = APIRouter()
    shared_calendar = calendar or WorkingCalendar()

    def workflow_config() -> WorkflowConfig:
        return config or default_tracker().config

    @router.get("/v1/applications", tags=["applications"], summary="Tracked applications, filtered and paged")
    def list_applications(
        stage: Annotated[str | None, Query(description="current stage id")] = None,
        customer_class: Annotated[CustomerClass | None, Query(description="customer class")] = None,
        unit: Annotated[str | None, Query(description="responsible supply unit (ORG_NO)")] = None,
        overdue: Annotated[bool | None, Query(description="current stage past its deadline")] = None,
        at_risk: Annotated[bool | None, Query(description="current stage close to its deadline")] = None,
        submitted_from: Annotated[
            date | None, Query(description="submitted on or after (Asia/Shanghai)")
        ] = None,
        submitted_to: Annotated[
            date | None, Query(description="submitted on or before (Asia/Shanghai)")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    ) -> dict[str, Any]:
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
            items, following = list_cases(
                conn, where, limit=limit, after=after, calendar=shared_calendar, now=clock()
            )
        return {
            "items": items,
            "limit": limit,
            "next_cursor": encode_cursor(following) if following else None,
        }

    @router.get("/v1/applications/{application_no}", tags=["applications"], summary="A tracked application")
    def read_application(application_no: str) -> dict[str, Any]:
        with engine.connect() as conn:
            case = get_case(conn, application_no, calendar=shared_calendar, now=clock())
            notifications = case_feed_of(conn, application_no) if case is not None else []
        if case is None:
            raise HTTPException(404, f"application {application_no} is not tracked")
        return {**case, "notifications": notifications}

    @router.get(
        "/v1/applications/{application_no}/timeline",
        tags=["applications"],
        summary="Stage changes and hub actions of an application, in order",
    )
    def read_timeline(application_no: str) -> dict[str, Any]:
        with engine.connect() as conn:
            entries = get_timeline(conn, application_no)
        if entries is None:
            raise HTTPException(404, f"application {application_no} is not tracked")
        return {"application_no": application_no, "timeline": entries}

    @router.get(
        "/v1/analytics/stages",
        tags=["analytics"],
        summary="Stage durations (mean, p50, p90 in working days) per stage, class and unit, with rework",
    )
    def read_stage_analytics(
        customer_class: Annotated[CustomerClass | None, Query(description="only this customer class")] = None,
        unit: Annotated[str | None, Query(description="only this supply unit")] = None,
        entered_from: Annotated[date | None, Query(description="stages entered on or after")] = None,
        entered_to: Annotated[date | None, Query(description="stages entered on or before")] = None,
    ) -> dict[str, Any]:
        chosen = workflow_config()
        with engine.connect() as conn:
            analytics = stage_analytics(
                conn,
                stage_order=tuple(chosen.stages),
                customer_class=customer_class.value if customer_class else None,
                unit=unit,
                entered_from=_start_of(entered_from) if entered_from else None,
                entered_to=_start_of(entered_to + timedelta(days=1)) if entered_to else None,
            )
        return {"unit": "working days", "stage_names": dict(chosen.stages), **analytics.as_dict()}

    return router
