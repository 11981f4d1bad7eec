"""Dashboard login, sessions and CSRF: the cookie's flags and lifetime, what it opens, and what it does not.

The hub's clock is frozen, so tokens are minted and checked at the same known moment.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from starlette.requests import Request

from api.credentials import Caller
from api.problems import ProblemError
from api.security import SESSION_STATE
from api.ui.dashboard import csrf_guard
from api.ui.session import CSRF_HEADER, LOGIN_COOKIE, SESSION_COOKIE, Session, SessionError, SessionSeal
from ground.clock import FixedClock, frozen_at
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, token

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def hub_clock() -> Iterator[FixedClock]:
    with frozen_at(NOW) as fixed:
        yield fixed


@pytest.fixture
def client(sqlite_engine: Engine, hub_clock: FixedClock) -> TestClient:
    return TestClient(hub_app(sqlite_engine, auth=TEST_AUTH))


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page
    return found[1]


def _log_in(client: TestClient, pasted: str) -> tuple[int, list[str]]:
    csrf = _csrf(client.get("/ui/login").text)
    response = client.post("/ui/login", data={"token": pasted, "csrf_token": csrf}, follow_redirects=False)
    return response.status_code, response.headers.get_list("set-cookie")


def _session_cookie(set_cookies: list[str]) -> str:
    [cookie] = [header for header in set_cookies if header.startswith(f"{SESSION_COOKIE}=")]
    return cookie


def test_a_pasted_token_opens_a_session_whose_cookie_is_httponly_strict_and_ends_with_the_token(
    client: TestClient,
) -> None:
    status, set_cookies = _log_in(client, token("viewer", ttl_s=600))
    assert status == 303
    cookie = _session_cookie(set_cookies).lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    # Plain HTTP here: a Secure cookie would never come back.
    assert "secure" not in cookie
    # The token lives 600 s from now (frozen), so the cookie may live no longer.
    assert "max-age=600" in cookie
    page = client.get("/ui/overview")
    assert page.status_code == 200 and "流程总览" in page.text and "tester" in page.text
    # The cookie holds the token sealed: neither the token nor its claims can be read from it.
    assert token("viewer", ttl_s=600) not in cookie and "viewer" not in cookie


def test_over_tls_the_session_cookie_is_secure(sqlite_engine: Engine, hub_clock: FixedClock) -> None:
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH), base_url="https://hub.example")
    status, set_cookies = _log_in(client, token("viewer"))
    assert status == 303
    assert "secure" in _session_cookie(set_cookies).lower()


def test_the_session_ends_with_its_token(
    client: TestClient, hub_clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    _log_in(client, token("viewer", ttl_s=600))
    assert client.get("/ui/cases").status_code == 200
    # Past exp plus the 30 s leeway the hub allows for clock skew.
    hub_clock.advance(timedelta(seconds=631))
    refused = client.get("/ui/cases", follow_redirects=False)
    assert (refused.status_code, refused.headers["location"]) == (303, "/ui/login")
    assert "refused GET /ui/cases from testclient: 401, expired session cookie" in caplog.text


def test_a_refused_token_opens_no_session(client: TestClient) -> None:
    status, set_cookies = _log_in(client, "not.a.token")
    assert status == 401
    assert not any(header.startswith(f"{SESSION_COOKIE}=") for header in set_cookies)
    assert client.get("/ui/overview", follow_redirects=False).status_code == 303


def test_the_login_form_needs_its_csrf_token(client: TestClient) -> None:
    client.get("/ui/login")
    for sent in ({"token": token("viewer")}, {"token": token("viewer"), "csrf_token": "guessed"}):
        response = client.post("/ui/login", data=sent, follow_redirects=False)
        assert response.status_code == 403 and "CSRF" in response.text
        assert not any(h.startswith(f"{SESSION_COOKIE}=") for h in response.headers.get_list("set-cookie"))


def test_a_login_form_from_another_session_is_refused(client: TestClient, sqlite_engine: Engine) -> None:
    other = TestClient(client.app)
    csrf = _csrf(other.get("/ui/login").text)
    client.get("/ui/login")  # this browser's own pre-session cookie, bound to another token
    response = client.post("/ui/login", data={"token": token("viewer"), "csrf_token": csrf})
    assert response.status_code == 403


def test_logout_needs_the_sessions_csrf_token_and_then_ends_it(client: TestClient) -> None:
    _log_in(client, token("viewer"))
    page = client.get("/ui/overview").text
    refused = client.post("/ui/logout", data={"csrf_token": "guessed"}, follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/ui/overview").status_code == 200
    done = client.post("/ui/logout", data={"csrf_token": _csrf(page)}, follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, "/ui/login")
    assert any(
        header.startswith(f'{SESSION_COOKIE}=""') and "max-age=0" in header.lower()
        for header in done.headers.get_list("set-cookie")
    )
    assert client.get("/ui/overview", follow_redirects=False).status_code == 303


def test_the_session_reads_the_api_but_changes_nothing_outside_the_dashboard(client: TestClient) -> None:
    _log_in(client, token("viewer"))
    # Reads: the pages follow the event stream and may link to API documents such as the scheme PDF.
    assert client.get("/v1/applications").status_code == 200
    # A state-changing API call needs its credentials in a header: a cookie a browser adds by itself
    # to a forged request is not enough.
    assert client.post("/v1/feasibility/preview", json={}).status_code == 401


def test_the_session_grants_only_the_tokens_roles(client: TestClient) -> None:
    _log_in(client, token("operator"))
    assert client.get("/ui/overview").status_code == 403
    assert client.get("/admin/adapters").status_code == 200


def test_a_tampered_cookie_is_refused(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    _log_in(client, token("viewer"))
    sealed = client.cookies[SESSION_COOKIE]
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB"))
    assert client.get("/ui/overview", follow_redirects=False).status_code == 303
    assert client.get("/v1/applications").status_code == 401
    assert "401, invalid session cookie" in caplog.text


def test_a_cookie_sealed_under_another_secret_does_not_open(hub_clock: FixedClock) -> None:
    other = TEST_AUTH.model_copy(
        update={"jwt_secret": SecretStr("another-secret-of-the-same-length-0123456789")}
    )
    _, cookie = SessionSeal(TEST_AUTH).start(token("viewer"))
    with pytest.raises(SessionError, match="not sealed by this hub"):
        SessionSeal(other).open(cookie)
    assert SessionSeal(TEST_AUTH).open(cookie).caller.roles == frozenset({"viewer"})


def test_the_login_page_sets_a_pre_session_cookie_only(client: TestClient) -> None:
    response = client.get("/ui/login")
    cookies = response.headers.get_list("set-cookie")
    assert [header.split("=")[0] for header in cookies] == [LOGIN_COOKIE]
    assert "httponly" in cookies[0].lower() and "samesite=strict" in cookies[0].lower()


def _request(method: str, session: Session | None, headers: dict[str, str], body: bytes = b"") -> Request:
    scope = {
        "type": "http",
        "method": method,
        "path": "/ui/any",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "query_string": b"",
        "state": {SESSION_STATE: session} if session is not None else {},
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize(
    ("method", "headers", "body", "allowed"),
    [
        ("GET", {}, b"", True),  # reads change nothing
        ("POST", {}, b"", False),
        ("POST", {CSRF_HEADER: "guessed"}, b"", False),
        ("POST", {CSRF_HEADER: "the-sessions-token"}, b"", True),
        ("POST", FORM, b"csrf_token=guessed", False),
        ("POST", FORM, b"csrf_token=the-sessions-token", True),
        ("DELETE", {}, b"", False),
    ],
)
def test_every_state_changing_request_of_a_session_needs_its_csrf_token(
    hub_clock: FixedClock, method: str, headers: dict[str, str], body: bytes, allowed: bool
) -> None:
    caller = Caller(sub="tester", roles=frozenset({"viewer"}), scopes=frozenset(), via="token")
    session = Session(caller, token="sealed in the cookie", csrf="the-sessions-token", expires_at=0)
    request = _request(method, session, headers, body)
    if allowed:
        asyncio.run(csrf_guard(request))
    else:
        with pytest.raises(ProblemError) as refused:
            asyncio.run(csrf_guard(request))
        assert refused.value.status_code == 403


def test_header_credentials_need_no_csrf_token(hub_clock: FixedClock) -> None:
    # A bearer token is never added by the browser on its own, so a request carrying one was not forged.
    asyncio.run(csrf_guard(_request("POST", None, {"authorization": f"Bearer {token('viewer')}"})))


@pytest.mark.parametrize(
    ("role", "landing"),
    [("viewer", "/ui/overview"), ("operator", "/ui/health"), ("integrator", "/ui/progress")],
)
def test_a_user_lands_on_the_first_page_its_roles_allow(client: TestClient, role: str, landing: str) -> None:
    csrf = _csrf(client.get("/ui/login").text)
    form = {"token": token(role), "csrf_token": csrf}
    response = client.post("/ui/login", data=form, follow_redirects=False)
    # An operator holds admin:read, not resources:read: the overview would refuse it.
    assert (response.status_code, response.headers["location"]) == (303, landing)
    assert client.get("/ui/", follow_redirects=False).headers["location"] == landing
