"""The applications API: filters, cursor pagination, detail and timeline."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api import applications
from api.applications import CaseView
from api.context import ApiContext, install_context
from api.feasibility import router as feasibility_router
from canonical_model.case import Case
from feasibility.config import load_feasibility_config
from feasibility.service import FeasibilityService
from ground import clock
from ground.settings import PROJECT_ROOT
from pipeline.decoded import DecodedEvent
from store.audit import list_entries
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer
from tests.unit.feasibility.builders import application
from tests.unit.workflow.events import application_event
from tests.unit.workflow.records import low_voltage, the_customer, transformer_event
from workflow.cases import CaseTracker
from workflow.config import load_workflow_config
from workflow.consistency_config import load_consistency_config
from workflow.grid import handle_grid_event
from workflow.workdays import published_years_of_package

# Monday 30 November 2026, 10:00 in Asia/Shanghai.
NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


@pytest.fixture
def client(sqlite_engine: Engine) -> TestClient:
    config = load_workflow_config(PROJECT_ROOT)
    tracker = CaseTracker(config)
    with sqlite_engine.begin() as conn:
        # 24 residential cases submitted 2-25 November in acceptance (2 working days): mostly overdue.
        for day in range(2, 26):
            number = f"R{day:02d}"
            at = f"2026-11-{day:02d}T10:00:00+08:00"
            tracker(
                conn,
                DecodedEvent(
                    application_event(
                        number,
                        1,
                        customer_class="lv_residential",
                        submitted_at=at,
                        updated_at=at,
                        org_no="41401" if day % 2 else "41402",
                    )
                ),
            )
        # A high-voltage case in scheme reply since 27 November: 15 working days, not at risk.
        tracker(conn, DecodedEvent(application_event("H1", 1, submitted_at="2026-11-26T10:00:00+08:00")))
        tracker(
            conn,
            DecodedEvent(
                application_event(
                    "H1",
                    2,
                    stage="scheme_reply",
                    submitted_at="2026-11-26T10:00:00+08:00",
                    updated_at="2026-11-27T10:00:00+08:00",
                )
            ),
        )
    app = FastAPI()
    install_context(app, ApiContext(sqlite_engine, clock=lambda: NOW))
    app.include_router(applications.router)
    return TestClient(app)


def _numbers(client: TestClient, **params: str | int) -> list[str]:
    numbers: list[str] = []
    cursor = None
    while True:
        query: dict[str, str | int] = {**params, **({"cursor": cursor} if cursor else {})}
        body = client.get("/v1/applications", params=query).json()
        numbers += [item["application_no"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return numbers


def test_cursor_pagination_returns_every_case_once_in_submission_order(client: TestClient) -> None:
    first = client.get("/v1/applications", params={"limit": 10}).json()
    assert len(first["items"]) == 10 and first["limit"] == 10 and first["next_cursor"]
    assert _numbers(client, limit=7) == [f"R{day:02d}" for day in range(2, 26)] + ["H1"]


def test_filters(client: TestClient) -> None:
    assert _numbers(client, stage="scheme_reply") == ["H1"]
    assert _numbers(client, customer_class="hv_single_source") == ["H1"]
    assert len(_numbers(client, unit="41401")) == 13  # H1 and the odd days
    # Acceptance of residential cases lasts 2 working days; on Monday 30 November those submitted up to
    # Wednesday 25 are due by the 27th: all overdue. Not one is due today or tomorrow, so none is at risk.
    assert _numbers(client, overdue="true") == [f"R{day:02d}" for day in range(2, 26)]
    assert _numbers(client, overdue="false") == ["H1"]
    assert _numbers(client, at_risk="true") == []
    assert _numbers(client, submitted_from="2026-11-24", submitted_to="2026-11-25") == ["R24", "R25"]


def test_bad_queries_are_client_errors(client: TestClient) -> None:
    assert client.get("/v1/applications", params={"limit": 201}).status_code == 422
    assert client.get("/v1/applications", params={"customer_class": "mv"}).status_code == 422
    response = client.get("/v1/applications", params={"cursor": "not-a-cursor"})
    assert response.status_code == 400 and "not a cursor" in response.json()["detail"]


def test_detail_and_timeline(client: TestClient) -> None:
    detail = client.get("/v1/applications/H1").json()
    for field in ("application_no", "customer_no", "customer_class", "stage", "application", "timeline"):
        assert field in detail
    assert detail["stage"] == "scheme_reply"
    assert detail["deadline"] == "2026-12-18" and detail["working_days_left"] == 14
    assert (detail["overdue"], detail["at_risk"]) == (False, False)
    timeline = client.get("/v1/applications/H1/timeline").json()
    assert [entry["kind"] for entry in timeline["timeline"]] == ["opened", "forward"]
    assert timeline["timeline"] == detail["timeline"]
    # The detail is a superset of the published Case schema (case.v1).
    Case.model_validate({name: detail[name] for name in Case.model_fields})
    assert client.get("/v1/applications/NOPE").status_code == 404
    assert client.get("/v1/applications/NOPE/timeline").status_code == 404


@pytest.mark.usefixtures("client")  # the tracked cases
def test_the_case_view_embeds_the_latest_feasibility_assessment(sqlite_engine: Engine) -> None:
    rules = load_feasibility_config(PROJECT_ROOT)
    served = FastAPI()
    install_context(served, ApiContext(sqlite_engine, feasibility_rules=rules))
    served.include_router(applications.router)
    served.include_router(feasibility_router)
    both = TestClient(served)
    before = both.get("/v1/applications/H1").json()
    assert before["feasibility"] is None
    with sqlite_engine.begin() as conn:
        FeasibilityService(rules).assess_application(conn, application("H1", 400), correlation_id="c1")
    assessed = both.get("/v1/applications/H1").json()
    kept = both.get("/v1/applications/H1/feasibility")
    assert kept.status_code == 200
    assert assessed["feasibility"] == kept.json()
    assert assessed["feasibility"]["application_no"] == "H1"
    assert assessed["feasibility"]["requested_capacity_kva"] == 400
    # Only that application's view carries it.
    assert both.get("/v1/applications/R02").json()["feasibility"] is None
    # The documented model describes the whole answer, with and without an assessment.
    CaseView.model_validate(assessed)
    CaseView.model_validate(before)


def test_the_hub_app_serves_the_applications_routes(sqlite_engine: Engine) -> None:
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH), headers=bearer("viewer"))
    assert client.get("/v1/applications").json() == {"items": [], "limit": 50, "next_cursor": None}
    assert client.get("/v1/applications/X").status_code == 404


def test_the_case_shows_its_end_to_end_deadline(client: TestClient) -> None:
    # High voltage single source accepted Thursday 26 November: 22 working days, due Monday 28 December,
    # which waits for the 2027 holiday notice (after 15 December) unless the package already has it.
    detail = client.get("/v1/applications/H1").json()
    assert detail["end_to_end_commitment_days"] == 22
    assert detail["end_to_end_deadline"] == "2026-12-28"
    assert detail["end_to_end_provisional"] is (2027 not in published_years_of_package())
    assert (detail["end_to_end_status"], detail["end_to_end_working_days_left"]) == ("on_track", 20)
    # Residential accepted Monday 2 November: 5 working days, due Monday 9 November, 15 working days ago.
    [late] = [
        item
        for item in client.get("/v1/applications", params={"limit": 100}).json()["items"]
        if item["application_no"] == "R02"
    ]
    assert (late["end_to_end_deadline"], late["end_to_end_status"]) == ("2026-11-09", "overdue")
    assert late["end_to_end_working_days_left"] == -15


def test_the_case_view_shows_its_findings_with_personal_values_masked_by_role(sqlite_engine: Engine) -> None:
    tracker = CaseTracker(
        load_workflow_config(PROJECT_ROOT), consistency=load_consistency_config(PROJECT_ROOT)
    )
    with clock.frozen_at(NOW), sqlite_engine.begin() as conn:
        handle_grid_event(conn, DecodedEvent(transformer_event("TG0000001")))
        tracker(conn, DecodedEvent(the_customer()))
        tracker(
            conn,
            DecodedEvent(
                low_voltage("F1", site_location={"lon": 112.5, "lat": 33.01}, industry_code="C1711")
            ),
        )
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH))

    viewed = client.get("/v1/applications/F1", headers=bearer("viewer"))
    assert viewed.status_code == 200
    findings = {item["rule"]: item for item in viewed.json()["findings"]}
    assert set(findings) == {"site_within_supply_radius", "industry_code_agrees"}
    radius = findings["site_within_supply_radius"]
    assert radius["systems"] == ["marketing", "pms"] and radius["category"] == "information_error"
    assert datetime.fromisoformat(radius["found_at"]) == NOW and radius["cleared_at"] is None
    site = next(value for value in radius["values"] if value["field"] == "site_location")
    assert site["personal"] is True and "112.5" not in site["value"]
    assert [value["value"] for value in findings["industry_code_agrees"]["values"]] == ["C1711", "H6210"]
    CaseView.model_validate(viewed.json())

    unmasked = client.get("/v1/applications/F1", headers=bearer("viewer", scopes=["pii:read"], sub="agent-7"))
    radius = next(item for item in unmasked.json()["findings"] if item["rule"] == "site_within_supply_radius")
    site = next(value for value in radius["values"] if value["field"] == "site_location")
    assert site["value"] == "112.500000,33.010000"
    with sqlite_engine.connect() as conn:
        reads = list_entries(conn, action="pii.read")
    assert [(entry.actor, entry.subject, entry.detail["fields"]) for entry in reads] == [
        ("agent-7", "application/F1", ["findings.site_within_supply_radius.site_location"])
    ]


def _submit(engine: Engine, number: str, at: str, unit: str = "41401") -> None:
    tracker = CaseTracker(load_workflow_config(PROJECT_ROOT))
    with engine.begin() as conn:
        event = application_event(
            number, 1, customer_class="lv_residential", submitted_at=at, updated_at=at, org_no=unit
        )
        tracker(conn, DecodedEvent(event))


@pytest.mark.parametrize("params", [{}, {"unit": "41401"}, {"customer_class": "lv_residential"}])
def test_pages_neither_repeat_nor_skip_a_case_while_cases_arrive_between_them(
    client: TestClient, sqlite_engine: Engine, params: dict[str, str]
) -> None:
    # Three more submitted at the same moment as R10, so pages break inside a tie of submission times.
    for suffix in ("a", "b", "c"):
        _submit(sqlite_engine, f"R10{suffix}", "2026-11-10T10:00:00+08:00")
    before = _numbers(client, **params)
    seen: list[str] = []
    cursor = None
    arrivals = iter(range(1, 100))
    while True:
        body = client.get(
            "/v1/applications", params={**params, "limit": 4, **({"cursor": cursor} if cursor else {})}
        ).json()
        seen += [item["application_no"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        # One case behind the page just read (earlier, or in its tie), one ahead of it, before each next page.
        index = next(arrivals)
        _submit(sqlite_engine, f"B{index:02d}", "2026-11-01T10:00:00+08:00")
        _submit(sqlite_engine, f"R10{index:02d}", "2026-11-10T10:00:00+08:00")
        _submit(sqlite_engine, f"Z{index:02d}", "2026-11-28T10:00:00+08:00")

    assert len(seen) == len(set(seen))
    assert [number for number in seen if number in before] == before
    after = _numbers(client, **params)
    # What arrived ahead of the cursor is read in its place; what arrived behind it is not.
    assert seen == [number for number in after if number in set(seen)]
    assert not any(number.startswith("B") for number in seen)
    assert [number for number in seen if number.startswith("Z")] == [
        number for number in after if number.startswith("Z")
    ]
