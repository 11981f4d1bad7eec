"""The API serves tracked cases and masked customers, and reports health and readiness."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from workflow.cases import handle_event

from ..workflow.events import application_event, customer_event


def test_application_with_stage_and_timeline(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        handle_event(conn, application_event("A1", site_address="南阳市卧龙区车站南路18号"))
    client = TestClient(create_app(sqlite_engine))
    body = client.get("/v1/applications/A1").json()
    assert body["application_no"] == "A1"
    assert body["stage"] == "acceptance"
    assert body["application"]["site_address"] == "南阳市卧龙区车站南路18号"
    assert body["timeline"][0]["stage_to"] == "acceptance"
    missing = client.get("/v1/applications/NOPE")
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]


def test_customer_personal_data_is_masked(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        handle_event(
            conn,
            customer_event(
                "C1",
                identity_document={"type": "resident_id", "number": "411302199001011234"},
                contacts=[{"name": "李明", "phone": "13800001111"}],
            ),
        )
    client = TestClient(create_app(sqlite_engine))
    body = client.get("/v1/customers/C1").json()
    assert body["identity_document"]["number"] == "**************1234"
    assert body["contacts"][0]["phone"] == "*******1111"
    assert "411302199001011234" not in client.get("/v1/customers/C1").text
    assert client.get("/v1/customers/C2").status_code == 404


def test_health_ready_and_openapi(sqlite_engine: Engine) -> None:
    checks = {"database": True, "bus": True}
    client = TestClient(create_app(sqlite_engine, readiness=lambda: checks))
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200
    checks["bus"] = False
    not_ready = client.get("/ready")
    assert not_ready.status_code == 503 and not_ready.json()["checks"]["bus"] is False
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/applications/{application_no}", "/v1/customers/{customer_no}", "/health", "/ready"} <= set(
        paths
    )
