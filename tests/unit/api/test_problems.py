"""Every error of the API is RFC 9457 problem+json with a stable code, framework errors included."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.problems import PROBLEM_TYPES, TYPE_BASE, install_problem_handlers, problem
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer


@pytest.fixture
def client(sqlite_engine: Engine) -> TestClient:
    return TestClient(hub_app(sqlite_engine, auth=TEST_AUTH), headers=bearer("admin"))


def _assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "code", "instance"} <= set(body)
    assert (body["status"], body["code"], body["type"]) == (status, code, TYPE_BASE + code)
    assert body["title"] == PROBLEM_TYPES[code].title
    assert body["instance"] == response.request.url.path
    return body


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/v1/applications/A404", {}, 404, "application-not-found"),
        ("GET", "/v1/applications/A404/feasibility", {}, 404, "feasibility-not-found"),
        ("GET", "/v1/customers/C404", {}, 404, "customer-not-found"),
        ("GET", "/v1/grid/feeders/XL404", {}, 404, "equipment-not-found"),
        ("GET", "/v1/submissions/S404", {}, 404, "submission-not-found"),
        ("GET", "/v1/dispatch/files/" + "0" * 64, {}, 404, "dispatch-file-not-found"),
        ("GET", "/admin/adapters/nope", {}, 404, "adapter-not-found"),
        ("GET", "/admin/dead-letters/404", {}, 404, "parked-message-not-found"),
        ("GET", "/no/such/path", {}, 404, "not-found"),
        ("DELETE", "/v1/applications", {}, 405, "method-not-allowed"),
        ("GET", "/v1/applications", {"params": {"limit": "many"}}, 422, "validation-failed"),
        ("GET", "/v1/applications", {"params": {"cursor": "bm9wZQ"}}, 400, "invalid-cursor"),
        ("GET", "/v1/applications", {"params": {"sort": "-opened_at"}}, 422, "invalid-sort"),
        ("GET", "/v1/grid/substations", {"params": {"bbox": "1,2,3"}}, 422, "invalid-parameter"),
        (
            "POST",
            "/v1/feasibility/preview",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "malformed-json",
        ),
        ("POST", "/v1/feasibility/preview", {"content": b"{not json"}, 415, "unsupported-media-type"),
        (
            "POST",
            "/v1/webhooks",
            {"content": b'{"url": "https://example.org/hook"}', "headers": {"Content-Type": "text/plain"}},
            415,
            "unsupported-media-type",
        ),
        (
            "POST",
            "/v1/dispatch/files",
            {"params": {"name": "../x.csv"}, "content": b"x"},
            400,
            "invalid-file-name",
        ),
    ],
)
def test_errors_are_problems(
    client: TestClient, method: str, path: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    _assert_problem(client.request(method, path, **kwargs), status, code)


def test_a_validation_problem_lists_each_error_without_echoing_the_input(client: TestClient) -> None:
    secret = "411302199001011234"
    response = client.post("/v1/feasibility/preview", json={"requested_capacity_kva": -1, "note": secret})
    body = _assert_problem(response, 422, "validation-failed")
    assert any(error["loc"][-1] == "requested_capacity_kva" for error in body["errors"])
    assert secret not in response.text


def test_malformed_json_is_a_400_that_names_the_place_but_not_the_content(client: TestClient) -> None:
    secret = "411302199001011234"
    response = client.post(
        "/v1/feasibility/preview",
        content=f'{{"note": "{secret}", "requested_capacity_kva": }}'.encode(),
        headers={"Content-Type": "application/json"},
    )
    body = _assert_problem(response, 400, "malformed-json")
    assert "Expecting value at character" in body["detail"] and secret not in response.text


def test_a_json_body_with_a_json_suffix_media_type_still_validates(client: TestClient) -> None:
    response = client.post(
        "/v1/feasibility/preview",
        content=b'{"requested_capacity_kva": -1}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    _assert_problem(response, 422, "validation-failed")


def test_a_wrong_content_type_is_named_and_the_accepted_one_offered(client: TestClient) -> None:
    response = client.post(
        "/v1/feasibility/preview",
        content=b'{"requested_capacity_kva": 100}',
        headers={"Content-Type": "text/csv"},
    )
    body = _assert_problem(response, 415, "unsupported-media-type")
    assert "'text/csv'" in body["detail"] and response.headers["accept"] == "application/json"


def test_an_unexpected_error_is_a_500_problem_that_reveals_nothing() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("password=hunter2 at db-host-7")

    response = TestClient(app, raise_server_exceptions=False).get("/boom")
    body = _assert_problem(response, 500, "internal-error")
    assert "hunter2" not in response.text and "db-host" not in body["detail"]


def test_problem_codes_are_stable_slugs_with_one_status_each() -> None:
    for code, kind in PROBLEM_TYPES.items():
        assert code == code.lower() and " " not in code
        assert 400 <= kind.status <= 599
    with pytest.raises(KeyError):
        problem("no-such-code", "unlisted codes are a programming error")
