"""/openapi.json is complete (security, permissions, problems, Idempotency-Key, examples), and a bounded
schemathesis run generated from it finds no server error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from store.database import create_engine, create_schema
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer

# SOAP 1.1 answers every fault with HTTP 500 by design; the push's hostile-input tests cover it.
SOAP_PUSH = ("POST", "/soap/marketing")
MAX_EXAMPLES = 12
# The event stream stays open for as long as the client listens; schemathesis keeps what arrived until its
# request timeout and checks that. A short one keeps each accepted stream request to a second.
STREAM = ("GET", "/v1/events/stream")
STREAM_LISTEN_S = 1.0


def _app(folder: Path) -> FastAPI:
    engine = create_engine(f"sqlite:///{folder}/hub.db")
    create_schema(engine)
    with pytest.MonkeyPatch.context() as patch:
        # The upload needs a drop folder, or it answers 503 by design.
        patch.setenv("YEKUO_DISPATCH__DROP_DIR", str(folder / "drop"))
        return hub_app(engine, auth=TEST_AUTH)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return _app(tmp_path_factory.mktemp("openapi"))


@pytest.fixture(scope="module")
def document(app: FastAPI) -> dict[str, Any]:
    response = TestClient(app).get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def test_security_schemes_are_declared(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer" and schemes["bearerAuth"]["bearerFormat"] == "JWT"
    assert (schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("header", "X-API-Key")


PUBLIC_PATHS = {
    "/health",
    "/ready",
    "/metrics",
    "/soap/marketing",
    "/asyncapi.json",
    "/v1/progress",
    "/v1/assistant/ask",
}


def test_every_operation_states_its_security_and_its_problems(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        assert "500" in responses, (method, path)
        if operation["security"]:
            assert operation["x-permission"] in operation["description"], (method, path)
            for status in ("401", "403"):
                content = responses[status]["content"]["application/problem+json"]
                assert content["schema"] == {"$ref": "#/components/schemas/Problem"}, (method, path)
                assert content["example"]["status"] == int(status), (method, path)
        else:
            assert path in PUBLIC_PATHS, (method, path)


def test_every_write_documents_its_idempotency_key(document: dict[str, Any]) -> None:
    writes = [
        (method, path, op)
        for method, path, op in _operations(document)
        if method in ("POST", "PUT", "DELETE")
    ]
    assert len(writes) >= 8
    for method, path, operation in writes:
        names = {parameter["name"] for parameter in operation.get("parameters", [])}
        assert "Idempotency-Key" in names, (method, path)
        assert "409" in operation["responses"] and "413" in operation["responses"], (method, path)


def test_every_success_response_has_a_schema_or_an_example(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        success = {
            status: response for status, response in operation["responses"].items() if status[0] == "2"
        }
        assert success, (method, path)
        for status, response in success.items():
            if status == "204":
                assert not response.get("content"), (method, path)  # no content, by definition
                continue
            content = response.get("content", {})
            assert any(
                "example" in body or "examples" in body or body.get("schema", {}) not in ({},)
                for body in content.values()
            ), (method, path)


def test_the_problem_schema_is_published(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code", "instance"} <= set(problem["required"])


@pytest.fixture(scope="module")
def api_schema(app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema").exclude(method=SOAP_PUSH[0], path=SOAP_PUSH[1])


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_gets_a_server_error(case: schemathesis.Case) -> None:
    listen: dict[str, Any] = (
        {"timeout": STREAM_LISTEN_S} if (case.method.upper(), case.path) == STREAM else {}
    )
    case.call_and_validate(
        headers=bearer("admin", scopes=["pii:read"]), checks=[not_a_server_error], **listen
    )


def test_the_event_stream_documents_its_body(document: dict[str, Any]) -> None:
    ok = document["paths"][STREAM[1]]["get"]["responses"]["200"]["content"]["text/event-stream"]
    assert ok["example"].startswith("retry: ") and "\nid: " in ok["example"] and "\ndata: {" in ok["example"]
    assert "400" in document["paths"][STREAM[1]]["get"]["responses"]
