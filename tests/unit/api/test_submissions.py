"""Tests of online submissions: validation, 202 with a tracking id, Idempotency-Key, and the status view."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.submissions import submissions_router
from store.database import utcnow
from store.schema import cases
from store.submissions import get_submission, submissions

REQUEST: dict[str, Any] = {
    "business_type": "new_connection",
    "requested_capacity_kva": 12,
    "customer_class": "lv_residential",
    "site_address": "南阳市卧龙区人民路8号",
    "site_location": {"lon": 112.53, "lat": 33.0},
    "org_no": "41401",
    "documents": [{"doc_type": "01", "name": "身份证明"}],
    "customer": {
        "name": "张伟",
        "category": "residential",
        "identity_document": {"type": "resident_id", "number": "411303199001011234"},
        "contacts": [{"name": "张伟", "phone": "13803770001"}],
    },
}


@pytest.fixture
def client(sqlite_engine: Engine) -> TestClient:
    app = FastAPI()
    app.include_router(submissions_router(sqlite_engine))
    return TestClient(app)


def test_a_submission_is_accepted_at_once_with_a_tracking_id(
    client: TestClient, sqlite_engine: Engine
) -> None:
    response = client.post("/v1/applications", json=REQUEST)
    assert response.status_code == 202
    body = response.json()
    tracking_id = body["tracking_id"]
    assert response.headers["Location"] == body["status_url"] == f"/v1/submissions/{tracking_id}"
    assert body["replayed"] is False
    with sqlite_engine.connect() as conn:
        stored = get_submission(conn, tracking_id)
    assert stored is not None and stored.status == "pending"
    assert stored.arguments["application"]["BUSI_TYPE_CODE"] == "101"
    assert stored.arguments["application"]["CHANNEL_CODE"] == "02"
    assert stored.arguments["customer"]["CERT_TYPE_CODE"] == "01"
    view = client.get(f"/v1/submissions/{tracking_id}").json()
    assert (view["status"], view["application_no"], view["case_tracked"]) == ("pending", None, False)
    assert view["links"] == {"self": f"/v1/submissions/{tracking_id}", "application": None}


def test_the_same_idempotency_key_returns_the_first_submission(
    client: TestClient, sqlite_engine: Engine
) -> None:
    first = client.post("/v1/applications", json=REQUEST, headers={"Idempotency-Key": "k-1"})
    again = client.post("/v1/applications", json=REQUEST, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 202
    assert again.json()["tracking_id"] == first.json()["tracking_id"]
    assert again.json()["replayed"] is True
    other = client.post("/v1/applications", json=REQUEST, headers={"Idempotency-Key": "k-2"})
    assert other.json()["tracking_id"] != first.json()["tracking_id"]
    with sqlite_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(submissions)).scalar_one() == 2


def test_a_key_reused_for_another_request_is_refused(client: TestClient) -> None:
    client.post("/v1/applications", json=REQUEST, headers={"Idempotency-Key": "k-1"})
    changed = {**REQUEST, "requested_capacity_kva": 16}
    response = client.post("/v1/applications", json=changed, headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 409
    assert "was used for a different request" in response.json()["detail"]


def _without(key: str) -> dict[str, Any]:
    return {name: value for name, value in REQUEST.items() if name != key}


@pytest.mark.parametrize(
    ("request_body", "location"),
    [
        ({**REQUEST, "customer_no": "4130012345"}, ["body"]),
        (_without("customer"), ["body"]),
        ({**REQUEST, "requested_capacity_kva": 0}, ["body", "requested_capacity_kva"]),
        ({**REQUEST, "business_type": "teleport"}, ["body", "business_type"]),
        (_without("org_no"), ["body", "org_no"]),
        ({**REQUEST, "surprise": 1}, ["body", "surprise"]),
    ],
    ids=["both-customers", "no-customer", "no-capacity", "unknown-business-type", "no-unit", "unknown-field"],
)
def test_invalid_requests_are_refused_naming_the_field(
    client: TestClient, request_body: dict[str, Any], location: list[str]
) -> None:
    response = client.post("/v1/applications", json=request_body)
    assert response.status_code == 422
    assert any(error["loc"][: len(location)] == location for error in response.json()["detail"])


def test_an_industry_code_outside_gb_t_4754_is_refused(client: TestClient) -> None:
    request = copy.deepcopy(REQUEST)
    request["customer"]["industry_code"] = "Z9999"
    response = client.post("/v1/applications", json=request)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "customer", "industry_code"]


def test_a_value_the_marketing_system_has_no_code_for_is_refused(client: TestClient) -> None:
    response = client.post("/v1/applications", json={**REQUEST, "requested_voltage_kv": 20})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "field 'requested_voltage_kv': no code in table marketing/volt_code for 20.0"
    )


def test_an_unknown_tracking_id_is_not_found(client: TestClient) -> None:
    assert client.get("/v1/submissions/nope").status_code == 404


def test_a_submitted_application_links_its_case(client: TestClient, sqlite_engine: Engine) -> None:
    tracking_id = client.post("/v1/applications", json=REQUEST).json()["tracking_id"]
    with sqlite_engine.begin() as conn:
        conn.execute(
            submissions.update()
            .where(submissions.c.tracking_id == tracking_id)
            .values(status="submitted", application_no="2612010000001", attempts=1, submitted_at=utcnow())
        )
    view = client.get(f"/v1/submissions/{tracking_id}").json()
    assert (view["status"], view["application_no"], view["case_tracked"]) == (
        "submitted",
        "2612010000001",
        False,
    )
    assert view["links"]["application"] == "/v1/applications/2612010000001"
    with sqlite_engine.begin() as conn:
        conn.execute(sa.insert(cases), [_case("2612010000001")])
    assert client.get(f"/v1/submissions/{tracking_id}").json()["case_tracked"] is True


def _case(application_no: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "application_no": application_no,
        "customer_no": "4130012345",
        "customer_class": "lv_residential",
        "business_type": "new_connection",
        "importance_grade": "none",
        "flow": "two_step",
        "status": "open",
        "stage": "acceptance",
        "stage_visit": "acceptance#1",
        "stage_entered_at": now,
        "deadline_provisional": False,
        "provisional": False,
        "calendar": "none",
        "opened_at": now,
        "updated_at": now,
        "survey_pending": False,
        "rework_count": 0,
        "anomaly_count": 0,
        "event_count": 1,
        "application": {},
        "anomalies": [],
    }
