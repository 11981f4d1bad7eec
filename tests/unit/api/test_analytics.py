"""The analytics API: stage spreads and bottlenecks, and the process figures, with their filters.

The cases run in March 2026 (no holiday: working days are weekdays); the hub's clock is frozen.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.analytics import ProcessAnalyticsReport, StageAnalyticsReport
from api.analytics import router as analytics_router
from api.context import ApiContext, install_context
from api.problems import install_problem_handlers
from ground.clock import frozen_at
from ground.settings import PROJECT_ROOT
from pipeline.decoded import DecodedEvent
from store.schema import consistency_findings, stage_visits
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer
from tests.unit.workflow.events import application_event
from workflow.cases import CaseTracker
from workflow.config import load_workflow_config

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
RESIDENTIAL = "lv_residential"


def _case(
    tracker: CaseTracker, conn: sa.Connection, number: str, org_no: str, steps: list[tuple[str, str]]
) -> None:
    submitted = f"2026-{steps[0][1]}T09:00:00+08:00"
    for sequence, (stage, day) in enumerate(steps, start=1):
        event = application_event(
            number,
            sequence,
            stage=stage,
            customer_class=RESIDENTIAL,
            submitted_at=submitted,
            updated_at=f"2026-{day}T09:00:00+08:00",
            org_no=org_no,
        )
        tracker(conn, DecodedEvent(event))


@pytest.fixture
def engine(sqlite_engine: Engine) -> Iterator[Engine]:
    tracker = CaseTracker(load_workflow_config(PROJECT_ROOT))
    with frozen_at(NOW):
        with sqlite_engine.begin() as conn:
            # A1: Mon 2 to Wed 4 March: 2 working days; residential commitment (5) and target (15) met.
            _case(
                tracker,
                conn,
                "A1",
                "41401",
                [("acceptance", "03-02"), ("energisation", "03-03"), ("archived", "03-04")],
            )
            # A2: one return for missing documents; Mon 2 to Mon 16 March: 10 working days, 14 calendar days;
            # commitment due Mon 9 March missed, target met. Acceptance (limit 2, due Wed 4) left Thu 5
            # 09:00: 0.375 working days past; energisation from Mon 9 (due Thu 12) left Mon 16 09:00:
            # Fri 13 and 0.375 of Mon 16 past.
            _case(
                tracker,
                conn,
                "A2",
                "41402",
                [
                    ("acceptance", "03-02"),
                    ("energisation", "03-05"),
                    ("acceptance", "03-06"),
                    ("energisation", "03-09"),
                    ("archived", "03-16"),
                ],
            )
            conn.execute(
                stage_visits.update()
                .where(stage_visits.c.application_no == "A2", stage_visits.c.exit_kind == "rework")
                .values(exit_cause="documents_missing")
            )
            # A3: submitted Tue 17 March, still in acceptance.
            _case(tracker, conn, "A3", "41401", [("acceptance", "03-17")])
            conn.execute(
                consistency_findings.insert().values(
                    application_no="A2",
                    rule="licence_missing",
                    category="documents_missing",
                    found_at=datetime(2026, 3, 3, 2, tzinfo=UTC),
                    systems=["marketing"],
                    details={},
                    message="no licence",
                )
            )
        yield sqlite_engine


@pytest.fixture
def client(engine: Engine) -> TestClient:
    app = FastAPI()
    stages = load_workflow_config(PROJECT_ROOT)
    install_context(app, ApiContext(engine, workflow=lambda: stages))
    app.include_router(analytics_router)
    install_problem_handlers(app)
    return TestClient(app)


def test_stage_analytics_show_spread_and_bottlenecks(client: TestClient) -> None:
    body = client.get("/v1/analytics/stages").json()
    StageAnalyticsReport.model_validate(body)
    assert body["unit"] == "working days"
    acceptance = next(item for item in body["by_stage"] if item["stage"] == "acceptance")
    # Acceptance visits: A1 1 day, A2 3 days (2 to 5 March), A2 again 1 day (6 to 9 March); A3 in progress.
    assert (acceptance["completed"], acceptance["in_progress"]) == (3, 1)
    assert (acceptance["min_days"], acceptance["p50_days"], acceptance["max_days"]) == (1.0, 1.0, 3.0)
    assert acceptance["p10_days"] == 1.0 and acceptance["stdev_days"] == pytest.approx(0.94, abs=0.005)
    assert body["rework"] == {"total": 1, "cases": 1}
    stages = [
        (item["stage"], item["excess_days"], item["over_limit"]) for item in body["bottlenecks"]["stages"]
    ]
    assert stages == [("energisation", 1.38, 1), ("acceptance", 0.38, 1)]
    units = [(item["unit"], item["excess_days"]) for item in body["bottlenecks"]["units"]]
    assert units == [("41402", 1.75), ("41401", 0.0)]
    only = client.get("/v1/analytics/stages", params={"unit": "41401"}).json()
    assert [item["unit"] for item in only["bottlenecks"]["units"]] == ["41401"]


def test_process_figures(client: TestClient) -> None:
    body = client.get("/v1/analytics/process").json()
    ProcessAnalyticsReport.model_validate(body)
    overall = body["overall"]
    assert (overall["cases"], overall["energised"], overall["measured"]) == (2, 2, 2)
    assert overall["days_to_power"]["working_days"] == {"count": 2, "mean": 6.0, "p50": 6.0, "p90": 9.2}
    assert overall["days_to_power"]["calendar_days"]["mean"] == 8.0  # 2 and 14
    assert (overall["within_commitment_share"], overall["within_target_share"]) == (0.5, 1.0)
    assert overall["rework"]["documents_missing"] == {"cases": 1, "share": 0.5, "returns": 1}
    assert overall["rework"]["unspecified"] == {"cases": 0, "share": 0.0, "returns": 0}
    assert [item["month"] for item in body["by_month"]] == ["2026-03"]
    assert [item["unit"] for item in body["by_unit"]] == ["41401", "41402"]
    assert body["in_progress"] == 1
    assert body["findings"] == {
        "total": 1,
        "open": 1,
        "cases": 1,
        "by_category": {"documents_missing": 1},
        "by_rule": {"licence_missing": 1},
    }
    assert (body["basis"], body["target_working_days"]) == ("energised", 15)


def test_process_filters(client: TestClient) -> None:
    # Energised by Sunday 15 March: A1 only; at its end A2 was in progress (A3 came on the 17th).
    early = client.get("/v1/analytics/process", params={"from": "2026-03-01", "to": "2026-03-15"}).json()
    assert (early["overall"]["cases"], early["in_progress"]) == (1, 1)
    assert early["findings"]["total"] == 1
    # Submitted from 10 March: A3, in progress.
    opened = client.get("/v1/analytics/process", params={"from": "2026-03-10", "basis": "opened"}).json()
    assert (opened["overall"]["cases"], opened["overall"]["energised"], opened["in_progress"]) == (1, 0, 1)
    assert opened["findings"]["total"] == 0
    unit = client.get("/v1/analytics/process", params={"unit": "41402"}).json()
    assert unit["overall"]["days_to_power"]["working_days"]["mean"] == 10.0
    other = client.get("/v1/analytics/process", params={"customer_class": "hv_dual_source"}).json()
    assert other["overall"]["cases"] == 0 and other["overall"]["within_commitment_share"] is None


def test_bad_parameters_get_a_problem(client: TestClient) -> None:
    reversed_period = client.get("/v1/analytics/process", params={"from": "2026-03-10", "to": "2026-03-01"})
    assert reversed_period.status_code == 422
    assert reversed_period.json()["detail"] == "from 2026-03-10 is after to 2026-03-01"
    assert (
        client.get(
            "/v1/analytics/stages", params={"entered_from": "2026-03-10", "entered_to": "2026-03-01"}
        ).status_code
        == 422
    )
    assert client.get("/v1/analytics/process", params={"basis": "closed"}).status_code == 422
    assert client.get("/v1/analytics/process", params={"from": "March"}).status_code == 422


def test_the_hub_serves_the_analytics_to_readers(engine: Engine) -> None:
    hub = TestClient(hub_app(engine, auth=TEST_AUTH))
    for path in ("/v1/analytics/stages", "/v1/analytics/process"):
        assert hub.get(path).status_code == 401
        answer = hub.get(path, headers=bearer("viewer"))
        assert answer.status_code == 200, answer.text
    assert hub.get("/v1/analytics/process", headers=bearer("viewer")).json()["overall"]["energised"] == 2
