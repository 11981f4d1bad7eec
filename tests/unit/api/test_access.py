"""The access policy file: its checks name file and line, and it must cover exactly the served routes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from api.access import check_coverage, load_access_policy
from api.security import served_routes
from ground.errors import ConfigError
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH

GOOD = """\
permissions:
  things:read: read things
  pii:read: see personal data
roles:
  viewer: [things:read]
routes:
  GET /health: public
  GET /v1/things: things:read
"""


def _write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "api"
    folder.mkdir(exist_ok=True)
    path = folder / "access.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_policy_loads_with_pii_read_granted_by_no_role(tmp_path: Path) -> None:
    policy = load_access_policy(_write(tmp_path, GOOD))
    assert policy.routes == {("GET", "/health"): None, ("GET", "/v1/things"): "things:read"}
    assert policy.permissions_of(["viewer"], []) == {"things:read"}
    assert policy.permissions_of(["viewer"], ["pii:read", "made:up"]) == {"things:read", "pii:read"}
    assert policy.roles_granting("pii:read") == []


@pytest.mark.parametrize(
    ("broken", "message", "line"),
    [
        (
            GOOD.replace("viewer: [things:read]", "viewer: [things:write]"),
            "unknown permission 'things:write'",
            5,
        ),
        (GOOD.replace("GET /v1/things: things:read", "GET /v1/things: everything"), "unknown permission", 8),
        (GOOD.replace("GET /health", "FETCH /health"), "is not 'METHOD /path'", 7),
        (GOOD.replace("  things:read: read things\n", "  things:read:\n"), "needs a description", 2),
        (GOOD + "owners: []\n", "unknown key 'owners'", 9),
    ],
)
def test_policy_errors_name_file_and_line(tmp_path: Path, broken: str, message: str, line: int) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        load_access_policy(_write(tmp_path, broken))
    assert any(
        text.startswith(f"api/access.yaml:{line}: ") and message in text
        for text in str(raised.value).splitlines()
    )


def test_every_route_needs_an_entry_and_every_entry_a_route(tmp_path: Path) -> None:
    policy = load_access_policy(_write(tmp_path, GOOD))
    check_coverage(policy, [("GET", "/health"), ("GET", "/v1/things")])
    with pytest.raises(ConfigError, match="route DELETE /v1/things has no entry"):
        check_coverage(policy, [("GET", "/health"), ("GET", "/v1/things"), ("DELETE", "/v1/things")])
    with pytest.raises(ConfigError, match="entry GET /v1/things names no route"):
        check_coverage(policy, [("GET", "/health")])


def test_the_app_refuses_to_start_with_an_unguarded_route(tmp_path: Path, sqlite_engine: object) -> None:
    policy = load_access_policy(_write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match="has no entry"):
        hub_app(sqlite_engine, auth=TEST_AUTH, policy=policy)  # type: ignore[arg-type]


def test_the_shipped_policy_covers_the_app(sqlite_engine: object) -> None:
    app: FastAPI = hub_app(sqlite_engine, auth=TEST_AUTH)  # type: ignore[arg-type]
    check_coverage(load_access_policy(), served_routes(app))


def test_a_mount_cannot_be_guarded_and_is_refused() -> None:
    app = FastAPI()
    app.routes.append(Mount("/static", app=StaticFiles(directory=".")))
    with pytest.raises(ConfigError, match="has no HTTP methods"):
        list(served_routes(app))
