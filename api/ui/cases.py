"""Page 2, cases (工单): the list with the filters and cursor paging of GET /v1/applications, and a case.

The case page shows the stage visits (entry, exit, working days used against the limit, responsible unit),
the deadlines and the alerts the hub published, the latest feasibility assessment with its ranked schemes
and its rule trace as a table, the consistency findings and a link to the supply-scheme reply PDF when an
assessment exists. Personal values (the findings' and the customer's contact phones) are masked unless
the user holds pii:read; an unmasked read is recorded in the audit log, as the API records it.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from api.analytics import local_period
from api.applications import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor, latest_feasibility
from api.context import Calendar, Database, Now
from api.listing import CursorParam
from api.problems import problem
from api.security import PII_READ, caller_of
from api.ui.context import Ui
from api.ui.labels import CUSTOMER_CLASSES
from api.ui.render import render
from canonical_model.application import CustomerClass
from canonical_model.customer import Customer
from canonical_model.events import CASE_EVENTS, CASE_STAGE_CHANGED
from canonical_model.pii import mask_document
from store.audit import record_pii_read
from store.database import Connection
from workflow.caselog import case_feed_of
from workflow.findings import findings_of
from workflow.queries import CaseFilter, get_case, get_customer, list_cases, stage_visits_of

CONTACT_PHONES = "contacts.[].phone"


def _personal_fields(findings: list[dict[str, Any]]) -> list[str]:
    """The personal values among the findings, named as GET /v1/applications/{no} names them in the audit."""
    named = {
        f"findings.{item['rule']}.{value['field']}"
        for item in findings
        for value in item["values"]
        if value["personal"]
    }
    return sorted(named)


def _customer_view(conn: Connection, customer_no: str, unmasked: bool) -> dict[str, Any] | None:
    document = get_customer(conn, customer_no)
    if document is None:
        return None
    return document if unmasked else mask_document(document, Customer)


router = APIRouter(include_in_schema=False)


@router.get("/ui/cases")
def case_list(
    request: Request,
    engine: Database,
    calendar: Calendar,
    now: Now,
    ui: Ui,
    stage: Annotated[str | None, Query(max_length=64)] = None,
    customer_class: Annotated[CustomerClass | None, Query()] = None,
    unit: Annotated[str | None, Query(max_length=32)] = None,
    overdue: Annotated[bool | None, Query()] = None,
    at_risk: Annotated[bool | None, Query()] = None,
    submitted_from: Annotated[date | None, Query()] = None,
    submitted_to: Annotated[date | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> HTMLResponse:
    submitted_after, submitted_before = local_period(submitted_from, submitted_to)
    where = CaseFilter(
        stage=stage or None,
        customer_class=customer_class.value if customer_class else None,
        unit=unit or None,
        overdue=overdue,
        at_risk=at_risk,
        submitted_from=submitted_after,
        submitted_before=submitted_before,
    )
    after = decode_cursor(cursor) if cursor else None
    with engine.connect() as conn:
        items, following = list_cases(conn, where, limit=limit, after=after, calendar=calendar, now=now)
    kept = {
        "stage": where.stage,
        "customer_class": where.customer_class,
        "unit": where.unit,
        "overdue": None if overdue is None else str(overdue).lower(),
        "at_risk": None if at_risk is None else str(at_risk).lower(),
        "submitted_from": submitted_from.isoformat() if submitted_from else None,
        "submitted_to": submitted_to.isoformat() if submitted_to else None,
        "limit": str(limit) if limit != DEFAULT_LIMIT else None,
    }
    query = {name: value for name, value in kept.items() if value}
    next_query = {**query, "cursor": encode_cursor(following)} if following else None
    return render(
        ui.env,
        request,
        "cases.html",
        {"items": items, "query": query, "next_query": next_query, "classes": CUSTOMER_CLASSES},
    )


@router.get("/ui/cases/{application_no}")
def case_page(
    application_no: str, request: Request, engine: Database, calendar: Calendar, now: Now, ui: Ui
) -> HTMLResponse:
    principal = caller_of(request.scope)
    unmasked = principal is not None and principal.can(PII_READ)
    # Reading unmasked personal values and recording who saw them commit together, or neither happens.
    with engine.begin() as conn:
        case = get_case(conn, application_no, calendar=calendar, now=now)
        if case is None:
            raise problem("application-not-found", f"application {application_no} is not tracked")
        visits = stage_visits_of(conn, application_no, calendar=calendar, now=now)
        notifications = case_feed_of(conn, application_no)
        feasibility = latest_feasibility(conn, application_no)
        findings = findings_of(conn, application_no, unmasked=unmasked)
        customer = _customer_view(conn, case["customer_no"], unmasked)
        if unmasked and principal is not None:
            personal = _personal_fields(findings)
            if personal:
                record_pii_read(conn, principal.sub, f"application/{application_no}", personal)
            if customer is not None and any(contact.get("phone") for contact in customer.get("contacts", [])):
                record_pii_read(conn, principal.sub, f"customer/{case['customer_no']}", [CONTACT_PHONES])
    alerts = [item for item in notifications if item["type"] != CASE_STAGE_CHANGED]
    return render(
        ui.env,
        request,
        "case.html",
        {
            "case": case,
            "visits": visits,
            "alerts": alerts,
            "feasibility": feasibility,
            "findings": findings,
            "customer": customer,
            "unmasked": unmasked,
            "live_events": list(CASE_EVENTS),
        },
    )
