"""The API serves tracked cases and customers (masked unless the caller holds pii:read), and reports health
and readiness without credentials."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from pipeline.decoded import DecodedEvent
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer
from workflow.cases import handle_event

from ..workflow.events import application_event, customer_event


def test_application_with_stage_and_timeline(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        handle_event(conn, DecodedEvent(application_event("A1", site_address="南阳市卧龙区车站南路18号")))
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH), headers=bearer("viewer"))
    body = client.get("/v1/applications/A1").json()
    assert body["application_no"] == "A1"
    assert body["stage"] == "acceptance"
    assert body["application"]["site_address"] == "南阳市卧龙区车站南路18号"
    assert body["timeline"][0]["stage_to"] == "acceptance"
    missing = client.get("/v1/applications/NOPE")
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]
    assert missing.json()["code"] == "application-not-found"


def _customer_with_personal_data(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        handle_event(
            conn,
            DecodedEvent(
                customer_event(
                    "C1",
                    identity_document={"type": "resident_id", "number": "411302199001011234"},
                    contacts=[{"name": "李明", "phone": "13800001111"}],
                )
            ),
        )


def test_customer_personal_data_is_masked(sqlite_engine: Engine) -> None:
    _customer_with_personal_data(sqlite_engine)
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH))
    for headers in (bearer("viewer"), bearer("admin")):
        body = client.get("/v1/customers/C1", headers=headers).json()
        assert body["identity_document"]["number"] == "**************1234"
        assert body["contacts"][0]["phone"] == "*******1111"
        assert "411302199001011234" not in client.get("/v1/customers/C1", headers=headers).text
    missing = client.get("/v1/customers/C2", headers=bearer("viewer"))
    assert missing.status_code == 404 and missing.json()["code"] == "customer-not-found"


def test_personal_data_is_shown_only_with_pii_read(sqlite_engine: Engine) -> None:
    _customer_with_personal_data(sqlite_engine)
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH))
    body = client.get("/v1/customers/C1", headers=bearer("viewer", scopes=["pii:read"])).json()
    assert body["identity_document"]["number"] == "411302199001011234"
    assert body["contacts"][0]["phone"] == "13800001111"
    # pii:read alone grants no read of customers: the resource permission is still needed.
    assert client.get("/v1/customers/C1", headers=bearer(scopes=["pii:read"])).status_code == 403


def test_health_ready_and_openapi(sqlite_engine: Engine) -> None:
    checks = {"database": True, "bus": True}
    # Probes and scrapers call these without credentials.
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH, readiness=lambda: checks))
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200
    checks["bus"] = False
    not_ready = client.get("/ready")
    assert not_ready.status_code == 503 and not_ready.json()["checks"]["bus"] is False
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/applications/{application_no}", "/v1/customers/{customer_no}", "/health", "/ready"} <= set(
        paths
    )
