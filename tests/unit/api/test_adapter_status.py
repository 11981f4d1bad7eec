"""Tests of GET /admin/adapters: each adapter's report, and which adapters are degraded."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection, Engine

from adapters.marketing.breaker import CircuitBreaker
from adapters.marketing.status import MarketingStatus
from api.adapter_status import AdapterReport
from ground.errors import SourceUnavailableError
from simulators.marketing.contract import WSDL_PATH
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer
from tests.unit.adapters.marketing.conftest import quick_client


def test_the_default_report_shows_the_marketing_adapter_from_the_database(sqlite_engine: Engine) -> None:
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH), headers=bearer("operator"))
    body = client.get("/admin/adapters").json()
    [marketing] = body["items"]
    assert marketing["name"] == "marketing"
    assert marketing["push_inbox"] == {"received": 0, "waiting": 0, "taken_up_to": 0}
    assert body["degraded"] == []
    assert client.get("/admin/adapters/marketing").json()["watermark"] is None


def test_an_open_circuit_or_a_failing_loop_marks_the_adapter_degraded(sqlite_engine: Engine) -> None:
    breaker = CircuitBreaker("marketing", failure_threshold=1, reset_timeout_s=60)
    breaker.failed(SourceUnavailableError("HTTP 503"))

    def other(conn: Connection) -> dict[str, Any]:
        return {"available": True, "loops": {"poll:other": {"ok": False}}}

    def fine(conn: Connection) -> dict[str, Any]:
        return {"available": True, "loops": {}}

    reports: dict[str, AdapterReport] = {
        "marketing": MarketingStatus(client=quick_client(str(WSDL_PATH), breaker=breaker)),
        "other": other,
        "fine": fine,
    }
    client = TestClient(
        hub_app(sqlite_engine, auth=TEST_AUTH, adapter_reports=reports), headers=bearer("operator")
    )
    body = client.get("/admin/adapters").json()
    assert body["degraded"] == ["marketing", "other"]
    marketing = client.get("/admin/adapters/marketing").json()
    assert marketing["circuit"]["state"] == "open" and marketing["available"] is False
    missing = client.get("/admin/adapters/nothing")
    assert missing.status_code == 404 and "known: fine, marketing, other" in missing.json()["detail"]
