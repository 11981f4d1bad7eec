"""List conventions shared by every list endpoint, hostile values on every filter, and oversized bodies."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.listing import decode_cursor, encode_cursor, page, page_response
from api.problems import ProblemError
from canonical_model.case import CaseStatus
from pipeline.decoded import DecodedEvent
from store.database import create_engine, create_schema, utcnow
from store.webhooks import create_subscription
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer
from workflow.cases import handle_event
from workflow.workdays import SHANGHAI

from ..workflow.events import application_event

HOSTILE = [
    "' OR 1=1--",
    '" OR ""="',
    "1; DROP TABLE cases; --",
    "%00",
    "\x00",
    "A1\r\nX-Injected: yes",
    "x" * 5000,
    "南阳市卧龙区\u202e\U0001f600",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "${jndi:ldap://x}",
]
CASES = 3


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('listing')}/hub.db")
    create_schema(engine)
    with engine.begin() as conn:
        for number in range(CASES):
            handle_event(conn, DecodedEvent(application_event(f"A{number}")))
    return engine


@pytest.fixture(scope="module")
def app(engine: Engine) -> FastAPI:
    return hub_app(engine, auth=TEST_AUTH)


@pytest.fixture(scope="module")
def path_values(engine: Engine) -> dict[str, str]:
    """A real resource for every path parameter of a listing, so the listing itself answers."""
    with engine.begin() as conn:
        subscription = create_subscription(
            conn,
            owner="platform",
            url="https://platform.example/hooks",
            event_types=[],
            secret="whsec_listing",
            include_pii=False,
            description=None,
            now=utcnow(),
        )
    return {"subscription_id": subscription["id"]}


@pytest.fixture(scope="module")
def client(app: FastAPI) -> TestClient:
    return TestClient(app, headers=bearer("admin"))


@pytest.fixture(scope="module")
def listings(app: FastAPI, path_values: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Every GET whose parameters include a cursor, with its query parameters (from /openapi.json), by
    its path with the path parameters filled in."""
    paths = app.openapi()["paths"]
    found = {}
    for path, operations in paths.items():
        parameters = operations.get("get", {}).get("parameters", [])
        if any(parameter["name"] == "cursor" for parameter in parameters):
            found[path.format(**path_values)] = [
                parameter for parameter in parameters if parameter["in"] == "query"
            ]
    return found


def test_every_listing_takes_limit_cursor_and_sort(
    listings: dict[str, list[dict[str, Any]]], path_values: dict[str, str]
) -> None:
    assert {
        "/v1/applications",
        "/v1/grid/substations",
        "/v1/grid/feeders",
        "/v1/grid/transformers",
        "/v1/load-profiles",
        "/admin/dead-letters",
        "/admin/invalid",
        "/v1/events",
        "/v1/webhooks",
        f"/v1/webhooks/{path_values['subscription_id']}/deliveries",
    } <= set(listings)
    for path, parameters in listings.items():
        names = {parameter["name"] for parameter in parameters}
        assert {"limit", "cursor", "sort"} <= names, path
        limit = next(parameter for parameter in parameters if parameter["name"] == "limit")
        assert limit["schema"]["minimum"] == 1 and limit["schema"]["maximum"] <= 1000, path


def test_every_listing_answers_the_same_shape_and_refuses_foreign_sorts(
    listings: dict[str, list[dict[str, Any]]], client: TestClient
) -> None:
    for path in listings:
        body = client.get(path, params={"limit": 1}).json()
        assert set(body) >= {"items", "limit", "next_cursor"} and body["limit"] == 1, path
        refused = client.get(path, params={"sort": "-password"})
        assert refused.status_code == 422 and refused.json()["code"] == "invalid-sort", path
        assert refused.json()["accepted"], path
        foreign = client.get(path, params={"cursor": encode_cursor("another-listing", ["x"])})
        assert foreign.status_code == 400 and foreign.json()["code"] == "invalid-cursor", path


def test_paging_returns_every_item_once(client: TestClient) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(CASES + 1):
        params: dict[str, Any] = {"limit": 2, "sort": "submitted_at"}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/v1/applications", params=params).json()
        seen += [item["application_no"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"A{number}" for number in range(CASES)]


def test_a_cursor_names_its_listing() -> None:
    cursor = encode_cursor("applications", ["2026-11-20T00:00:00+00:00", "A1"])
    assert decode_cursor("applications", cursor, 2) == ["2026-11-20T00:00:00+00:00", "A1"]
    for other in (("load-profiles", 2), ("applications", 3)):
        with pytest.raises(ProblemError):
            decode_cursor(other[0], cursor, other[1])


def test_hostile_values_on_every_filter_are_refused_or_match_nothing(
    listings: dict[str, list[dict[str, Any]]], client: TestClient
) -> None:
    cases = [
        (path, parameter["name"])
        for path, parameters in listings.items()
        for parameter in parameters
        if parameter["name"] not in ("limit",)
    ]
    assert len(cases) >= 30
    for path, name in cases:
        for value in HOSTILE:
            response = client.get(path, params={name: value})
            assert response.status_code < 500, (path, name, value)
            if response.status_code == 200:
                assert response.json()["items"] == [], (path, name, value)
            else:
                assert response.headers["content-type"] == "application/problem+json", (path, name, value)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_path_values_are_not_found_or_refused(client: TestClient, value: str) -> None:
    for template in ("/v1/applications/{}", "/v1/customers/{}", "/v1/grid/feeders/{}", "/v1/submissions/{}"):
        response = client.get(template.format(quote(value, safe="")))
        assert response.status_code in (400, 404, 422), (template, value, response.status_code)


def test_a_control_character_in_the_query_is_a_400_problem(client: TestClient) -> None:
    response = client.get("/v1/applications", params={"unit": "41401\x00"})
    assert response.status_code == 400 and response.json()["code"] == "bad-request"


def test_an_oversized_body_is_a_413_problem_by_length_and_by_stream(client: TestClient) -> None:
    big = b'{"site_address": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    by_length = client.post(
        "/v1/applications",
        content=big,
        headers={"Content-Type": "application/json", "Idempotency-Key": "big"},
    )
    assert by_length.status_code == 413 and by_length.json()["code"] == "payload-too-large"

    def streamed() -> Any:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    by_stream = client.post(
        "/v1/feasibility/preview", content=streamed(), headers={"Content-Type": "application/json"}
    )
    assert by_stream.status_code == 413 and by_stream.json()["code"] == "payload-too-large"


def test_an_unauthenticated_oversized_body_is_refused_before_it_is_read(app: FastAPI) -> None:
    response = TestClient(app).post("/v1/applications", content=b"x" * (2 * 1024 * 1024))
    assert response.status_code == 401


def test_the_body_bound_is_configurable(sqlite_engine: Engine) -> None:
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH, max_body_bytes=100), headers=bearer("admin"))
    assert client.post("/v1/feasibility/preview", content=b"{" + b" " * 200 + b"}").status_code == 413


def test_a_page_response_is_byte_for_byte_what_a_route_returning_the_dict_sends() -> None:
    items = [
        {
            "application_no": "A1",
            "name": "白河 变电站",
            "opened_at": datetime(2026, 11, 2, 2, 0, tzinfo=UTC),
            "deadline": date(2026, 11, 4),
            "status": CaseStatus.OPEN,
            "outcome": None,
            "overdue": True,
            "working_days_left": -3,
            "load_rate": 0.85,
            "anomalies": ("x", 1),
            "document": {
                "kva": Decimal("630.10"),
                "at": datetime(2026, 11, 2, 10, 0, tzinfo=SHANGHAI),
                "reported_at": datetime(
                    2026, 11, 2, 10, 0, 30, 5, tzinfo=timezone(timedelta(hours=-3, minutes=-30))
                ),
            },
        }
    ]
    body = page(items, 50, "next")
    app = FastAPI()

    @app.get("/page")
    def whole_page() -> dict[str, Any]:
        return body

    sent = TestClient(app).get("/page").content

    assert b'"2026-11-02T02:00:00Z"' in sent and b'"630.10"' in sent
    assert page_response(items, 50, "next").body == sent
