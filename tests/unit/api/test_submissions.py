"""Tests of online submissions: validation, 202 with a tracking id, Idempotency-Key, and the status view."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.context import ApiContext, install_context
from api.problems import install_problem_handlers
from api.submissions import SubmissionProblem
from api.submissions import router as submissions_router
from ground.settings import PROJECT_ROOT, SubmissionSettings
from pipeline.decoded import DecodedEvent
from store.database import utcnow
from store.schema import cases
from store.submissions import get_submission, submissions
from tests.unit.workflow.records import low_voltage, the_customer
from workflow.cases import CaseTracker
from workflow.config import load_workflow_config

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
    return _client(sqlite_engine)


def _client(engine: Engine, limits: SubmissionSettings | None = None) -> TestClient:
    # With the hub's problem handlers, as the API serves it: they never echo the refused input back.
    app = FastAPI()
    install_context(app, ApiContext(engine) if limits is None else ApiContext(engine, submissions=limits))
    app.include_router(submissions_router)
    install_problem_handlers(app)
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
    assert any(error["loc"][: len(location)] == location for error in response.json()["errors"])


def test_an_industry_code_outside_gb_t_4754_is_refused(client: TestClient) -> None:
    request = copy.deepcopy(REQUEST)
    request["customer"]["industry_code"] = "Z9999"
    response = client.post("/v1/applications", json=request)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "customer", "industry_code"]


def test_a_value_the_marketing_system_has_no_code_for_is_refused(client: TestClient) -> None:
    response = client.post("/v1/applications", json={**REQUEST, "requested_voltage_kv": 20})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "field 'requested_voltage_kv': no code in table marketing/volt_code for 20.0"
    )


# Every optional text field filled in, so a walk over it reaches every text field of the request.
FULL_REQUEST: dict[str, Any] = {
    **REQUEST,
    "requested_voltage_kv": 0.38,
    "importance_grade": "none",
    "channel": "online",
    "urban_rural": "urban",
    "documents": [{"doc_type": "01", "name": "身份证明", "received": True}],
    "customer": {
        **REQUEST["customer"],
        "industry_code": "C13",
        "address": "南阳市卧龙区人民路8号",
        "contacts": [{"name": "张伟", "phone": "13803770001", "role": "legal"}],
        "bank_account": {"bank": "中国工商银行南阳分行", "account_no": "6222021714000012345"},
    },
}
# C0 (tab and line feed included), DEL, C1 and a lone surrogate.
CONTROL_CHARACTERS = [
    "\x00",
    "\x01",
    "\t",
    "\n",
    "\r",
    "\x1b",
    "\x1f",
    "\x7f",
    "\x80",
    "\x85",
    "\x9f",
    "\ud800",
]


def _text_fields(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _text_fields(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _text_fields(item, (*path, index))
    elif isinstance(value, str):
        yield path


def _with(request: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(request)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


def _post_raw(client: TestClient, body: bytes) -> Any:
    return client.post("/v1/applications", content=body, headers={"Content-Type": "application/json"})


def _locations(response: Any) -> list[list[str]]:
    return [error["loc"] for error in response.json()["errors"]]


def test_the_full_request_is_accepted(client: TestClient) -> None:
    assert client.post("/v1/applications", json=FULL_REQUEST).status_code == 202


@pytest.mark.parametrize("character", CONTROL_CHARACTERS, ids=[f"U+{ord(c):04X}" for c in CONTROL_CHARACTERS])
def test_a_control_character_in_any_text_field_is_refused_naming_the_field(
    client: TestClient, sqlite_engine: Engine, character: str
) -> None:
    fields = list(_text_fields(FULL_REQUEST))
    assert ("site_address",) in fields and ("customer", "contacts", 0, "phone") in fields
    for path in fields:
        for placed in (f"人民路{character}8号", f"{character}8号", f"8号{character}"):
            # ASCII JSON: a lone surrogate travels as its \ud800 escape, as a hostile client would send it.
            response = _post_raw(client, json.dumps(_with(FULL_REQUEST, path, placed)).encode())
            assert response.status_code == 422, (path, placed)
            assert ["body", *map(str, path)] in _locations(response), (path, response.json())
    accepted = client.post("/v1/applications", json=FULL_REQUEST)
    assert accepted.status_code == 202
    with sqlite_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(submissions)).scalar_one() == 1


def test_a_control_character_in_a_field_name_is_refused_without_echoing_it(client: TestClient) -> None:
    response = _post_raw(client, json.dumps({**REQUEST, "site\u0000address": "x"}).encode())
    assert response.status_code == 422
    assert response.json()["errors"][0]["msg"] == "a field name contains a control character"
    assert client.post("/v1/applications", json=REQUEST).status_code == 202


NUMBER_FIELDS = [
    ("requested_capacity_kva",),
    ("requested_voltage_kv",),
    ("site_location", "lon"),
    ("site_location", "lat"),
]
# JSON text, as sent: Python's json module reads NaN, Infinity and 1e400 (as inf) without complaint.
BAD_NUMBERS = [
    "true",
    "false",
    '"50"',
    '"12.5"',
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "1" + "0" * 400,
    "[]",
    "{}",
]
PLACEHOLDER = "@number@"


def _with_number(path: tuple[str | int, ...], text: str) -> bytes:
    body = json.dumps(_with(FULL_REQUEST, path, PLACEHOLDER))
    return body.replace(f'"{PLACEHOLDER}"', text).encode()


@pytest.mark.parametrize("path", NUMBER_FIELDS, ids=[".".join(path) for path in NUMBER_FIELDS])
def test_a_number_that_is_not_a_finite_json_number_is_refused_naming_the_field(
    client: TestClient, path: tuple[str, ...]
) -> None:
    for text in BAD_NUMBERS:
        response = _post_raw(client, _with_number(path, text))
        assert response.status_code == 422, text
        assert ["body", *path] in _locations(response), (text, response.json())
    # The same field with a good number, sent the same way, gets through.
    good = {"requested_capacity_kva": "12", "requested_voltage_kv": "0.38", "lon": "112.53", "lat": "33"}
    assert _post_raw(client, _with_number(path, good[path[-1]])).status_code == 202


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("requested_capacity_kva",), "1e-320"),
        (("requested_capacity_kva",), "1e308"),
        (("requested_capacity_kva",), "0.5"),
        (("requested_capacity_kva",), "200000.5"),
        (("requested_voltage_kv",), "1e308"),
        (("site_location", "lon"), "1e308"),
        (("site_location", "lat"), "-1e308"),
    ],
)
def test_a_number_out_of_range_is_refused_naming_the_field(
    client: TestClient, path: tuple[str, ...], text: str
) -> None:
    response = _post_raw(client, _with_number(path, text))
    assert response.status_code == 422
    assert _locations(response) == [["body", *path]]
    assert client.post("/v1/applications", json=FULL_REQUEST).status_code == 202


@pytest.mark.parametrize("text", ['"true"', "1", "0", '"yes"'])
def test_a_flag_that_is_not_a_json_boolean_is_refused(client: TestClient, text: str) -> None:
    response = _post_raw(client, _with_number(("documents", 0, "received"), text))
    assert response.status_code == 422
    assert _locations(response) == [["body", "documents", "0", "received"]]


def test_the_capacity_range_is_the_configured_one(sqlite_engine: Engine) -> None:
    client = _client(sqlite_engine, SubmissionSettings(min_capacity_kva=10, max_capacity_kva=100))
    for capacity in (9.99, 100.01, 12_000):
        response = client.post("/v1/applications", json={**REQUEST, "requested_capacity_kva": capacity})
        assert response.status_code == 422, capacity
        assert response.json()["errors"] == [
            {
                "loc": ["body", "requested_capacity_kva"],
                "msg": "must be between 10 and 100 kVA",
                "type": "capacity_range",
            }
        ]
    for capacity in (10, 55.5, 100):
        response = client.post("/v1/applications", json={**REQUEST, "requested_capacity_kva": capacity})
        assert response.status_code == 202, capacity


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
        "end_to_end_commitment_days": 5,
        "end_to_end_provisional": False,
        "opened_at": now,
        "updated_at": now,
        "survey_pending": False,
        "rework_count": 0,
        "anomaly_count": 0,
        "event_count": 1,
        "application": {},
        "anomalies": [],
    }


def _known(engine: Engine) -> None:
    """A customer the hub knows (a restaurant, H6210) and an open case at 南阳市卧龙区中州路12号."""
    tracker = CaseTracker(load_workflow_config(PROJECT_ROOT))
    with engine.begin() as conn:
        tracker(conn, DecodedEvent(the_customer()))
        tracker(conn, DecodedEvent(low_voltage("A1", customer_no="4130000777", site_location=None)))


EXISTING: dict[str, Any] = {
    **{key: value for key, value in REQUEST.items() if key != "customer"},
    "customer_no": "4130000001",
    "customer_class": "lv_non_residential",
    "requested_capacity_kva": 50,
    "site_address": "南阳市卧龙区七一路3号",
    "industry_code": "H6210",
}


def test_a_submission_that_disagrees_is_answered_with_its_findings(
    client: TestClient, sqlite_engine: Engine
) -> None:
    _known(sqlite_engine)
    response = client.post("/v1/applications", json={**EXISTING, "industry_code": "C1711"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "consistency-findings"
    assert body["type"].endswith("/consistency-findings") and "industry_code_agrees" in body["detail"]
    [finding] = body["findings"]
    assert finding["rule"] == "industry_code_agrees" and finding["category"] == "information_error"
    assert finding["systems"] == ["submission", "marketing"]
    assert [(v["system"], v["value"]) for v in finding["values"]] == [
        ("submission", "C1711"),
        ("marketing", "H6210"),
    ]
    SubmissionProblem.model_validate(body)
    with sqlite_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(submissions)).scalar_one() == 0


def test_a_submission_that_accepts_its_findings_goes_through_with_them(
    client: TestClient, sqlite_engine: Engine
) -> None:
    _known(sqlite_engine)
    request = {**EXISTING, "industry_code": "C1711", "accept_findings": ["industry_code_agrees"]}
    response = client.post("/v1/applications", json=request)
    assert response.status_code == 202
    [finding] = response.json()["findings"]
    assert finding["rule"] == "industry_code_agrees"
    with sqlite_engine.connect() as conn:
        stored = get_submission(conn, response.json()["tracking_id"])
    assert stored is not None
    assert stored.request["accept_findings"] == ["industry_code_agrees"]
    # The declared trade code is forwarded, so the case shows the same finding once it is created.
    assert stored.arguments["application"]["TRADE_CODE"] == "C1711"
    # No load type stated: general load, written as the marketing system's "00".
    assert stored.arguments["application"]["LOAD_TYPE"] == "00"


def test_a_duplicate_is_refused_while_good_submissions_beside_it_go_through(
    client: TestClient, sqlite_engine: Engine
) -> None:
    _known(sqlite_engine)
    duplicate = client.post("/v1/applications", json={**EXISTING, "site_address": "南阳市卧龙区 中州路12号"})
    good = client.post("/v1/applications", json=EXISTING)
    new_customer = client.post("/v1/applications", json=REQUEST)
    assert duplicate.status_code == 422
    [finding] = duplicate.json()["findings"]
    assert finding["rule"] == "no_duplicate_application" and "A1" in finding["message"]
    address = next(value for value in finding["values"] if value["field"] == "site_address")
    assert address["personal"] is True and "中州路" not in address["value"]
    assert good.status_code == 202 and good.json()["findings"] == []
    assert new_customer.status_code == 202


def test_accepting_a_rule_that_does_not_exist_is_refused_naming_the_field(client: TestClient) -> None:
    response = client.post("/v1/applications", json={**REQUEST, "accept_findings": ["no_such_rule"]})
    assert response.status_code == 422
    assert _locations(response) == [["body", "accept_findings"]]
    assert "no_such_rule" in response.text


def test_without_rules_there_is_no_pre_review(sqlite_engine: Engine) -> None:
    _known(sqlite_engine)
    app = FastAPI()
    install_context(app, ApiContext(sqlite_engine, consistency_rules=lambda: None))
    app.include_router(submissions_router)
    install_problem_handlers(app)
    response = TestClient(app).post("/v1/applications", json={**EXISTING, "industry_code": "C1711"})
    assert response.status_code == 202
