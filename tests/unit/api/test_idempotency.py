"""Idempotency-Key on writes: replay of the same request, refusal of a different one, per caller."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from starlette.types import ASGIApp, Receive, Scope, Send

from api.idempotency import Idempotency, IdempotencyOptions
from api.problems import install_problem_handlers
from api.security import PRINCIPAL_STATE, Principal
from store.idempotency import claim, idempotency_keys
from store.submissions import submissions
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer
from tests.unit.api.test_submissions import REQUEST

from ..pipeline.parked_samples import dead_letter_payload, park_dead_letter


@pytest.fixture
def client(sqlite_engine: Engine) -> TestClient:
    return TestClient(hub_app(sqlite_engine, auth=TEST_AUTH), headers=bearer("integrator", sub="platform-a"))


def _submit(client: TestClient, body: dict[str, Any], key: str, **headers: str) -> Any:
    return client.post("/v1/applications", json=body, headers={"Idempotency-Key": key, **headers})


def _submission_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(submissions)).scalar_one())


def test_the_same_request_with_the_same_key_replays_the_first_response(
    client: TestClient, sqlite_engine: Engine
) -> None:
    first = _submit(client, REQUEST, "k-1")
    again = _submit(client, REQUEST, "k-1")
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert _submission_count(sqlite_engine) == 1


def test_the_same_key_with_another_request_is_a_409_problem(
    client: TestClient, sqlite_engine: Engine
) -> None:
    _submit(client, REQUEST, "k-1")
    changed = copy.deepcopy(REQUEST)
    changed["requested_capacity_kva"] = 13
    response = _submit(client, changed, "k-1")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "idempotency-key-reused"
    assert _submission_count(sqlite_engine) == 1


def test_keys_belong_to_their_caller(client: TestClient, sqlite_engine: Engine) -> None:
    first = _submit(client, REQUEST, "shared")
    other = client.post(
        "/v1/applications",
        json={**REQUEST, "site_address": "南阳市宛城区中州路1号"},
        headers={"Idempotency-Key": "shared-b", **bearer("integrator", sub="platform-b")},
    )
    assert first.status_code == other.status_code == 202
    with sqlite_engine.connect() as conn:
        owners = conn.execute(
            sa.select(idempotency_keys.c.principal, idempotency_keys.c.idempotency_key)
        ).all()
    assert sorted(owners) == [("platform-a", "shared"), ("platform-b", "shared-b")]


def test_a_failed_request_releases_its_key(client: TestClient, sqlite_engine: Engine) -> None:
    invalid = {**REQUEST, "requested_capacity_kva": -1}
    assert _submit(client, invalid, "k-2").status_code == 422
    # Fixing the request and retrying with the same key works: the failure did not spend it.
    assert _submit(client, REQUEST, "k-2").status_code == 202
    assert _submission_count(sqlite_engine) == 1


def test_a_key_still_running_is_a_409_and_an_abandoned_one_is_taken_over(
    client: TestClient, sqlite_engine: Engine
) -> None:
    now = datetime.now(UTC)
    with sqlite_engine.begin() as conn:
        claimed = claim(
            conn,
            "platform-a",
            "k-3",
            now=now,
            stale_after=timedelta(minutes=10),
            retention=timedelta(hours=1),
        )
    assert claimed == "claimed"
    busy = _submit(client, REQUEST, "k-3")
    assert busy.status_code == 409 and busy.json()["code"] == "idempotency-key-in-use"
    with sqlite_engine.begin() as conn:
        conn.execute(idempotency_keys.update().values(claimed_at=now - timedelta(minutes=11)))
    assert _submit(client, REQUEST, "k-3").status_code == 202


def test_an_expired_key_is_a_new_key(client: TestClient, sqlite_engine: Engine) -> None:
    _submit(client, REQUEST, "k-4")
    with sqlite_engine.begin() as conn:
        conn.execute(idempotency_keys.update().values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    again = _submit(client, REQUEST, "k-4")
    # Not replayed by the middleware; the submission's own record still recognises the request.
    assert again.status_code == 202 and "idempotent-replayed" not in again.headers


@pytest.mark.parametrize("key", [b"", b"x" * 192, b"bad\tkey", "键".encode()])
def test_malformed_keys_are_refused(client: TestClient, key: bytes) -> None:
    response = client.post("/v1/applications", json=REQUEST, headers={"Idempotency-Key": key})
    assert response.status_code == 422 and response.json()["code"] == "invalid-parameter"


def test_admin_actions_replay_instead_of_conflicting(sqlite_engine: Engine) -> None:
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH), headers=bearer("operator", sub="alice"))
    dead_id = park_dead_letter(sqlite_engine, dead_letter_payload())
    url = f"/admin/dead-letters/{dead_id}/discard"
    first = client.post(url, headers={"Idempotency-Key": "discard-1"})
    retried = client.post(url, headers={"Idempotency-Key": "discard-1"})
    unkeyed = client.post(url)
    assert (first.status_code, retried.status_code, unkeyed.status_code) == (200, 200, 409)
    assert retried.json() == first.json()


class _AsCaller:
    """Stands in for the access control: names the caller of every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = Principal(sub="uploader", roles=frozenset(), permissions=frozenset(), via="token")
        scope.setdefault("state", {})[PRINCIPAL_STATE] = principal
        await self.app(scope, receive, send)


def test_a_streamed_body_is_fingerprinted_whole_in_chunks(sqlite_engine: Engine) -> None:
    app = FastAPI()
    install_problem_handlers(app)
    received: list[int] = []

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        received.append(size)
        return {"size": size}

    app.add_middleware(Idempotency, engine=sqlite_engine, options=IdempotencyOptions(max_stored_bytes=100))
    app.add_middleware(_AsCaller)
    client = TestClient(app)

    def chunks(last: bytes) -> Any:
        yield b"a" * 70_000
        yield last

    headers = {"Idempotency-Key": "file-1"}
    assert client.post("/upload", content=chunks(b"end"), headers=headers).json() == {"size": 70_003}
    assert (
        client.post("/upload", content=chunks(b"end"), headers=headers).headers["idempotent-replayed"]
        == "true"
    )
    assert client.post("/upload", content=chunks(b"END"), headers=headers).status_code == 409
    assert received == [70_003]
