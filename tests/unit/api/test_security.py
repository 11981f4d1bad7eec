"""Role × endpoint matrix over every route the app serves, and the ways credentials are refused.

The expected matrix is written out here, apart from api/access.yaml, so a change of the policy that widens
or narrows access fails a test until this table says the same; a route the app serves that is missing here
(or from the policy) fails too.
"""

from __future__ import annotations

import logging
import re
import time

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from api.access import load_access_policy
from api.credentials import CredentialsError, mint_token
from api.security import served_routes
from ground.settings import AuthSettings
from ground.soap import parse_envelope
from store.database import create_engine, create_schema
from tests.support.app import hub_app
from tests.support.auth import (
    INTEGRATOR_API_KEY,
    TEST_AUTH,
    TEST_SECRET,
    api_key_headers,
    bearer,
    token,
)

ROLES = ("viewer", "operator", "integrator", "admin")
PUBLIC = frozenset({"public"})
READERS = frozenset({"viewer", "admin"})
OPERATORS = frozenset({"operator", "admin"})
INTEGRATORS = frozenset({"integrator", "admin"})

EXPECTED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/ready"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/soap/marketing"): PUBLIC,
    ("POST", "/soap/marketing"): frozenset({"integrator", "admin"}),
    ("POST", "/v1/dispatch/files"): frozenset({"integrator", "admin"}),
    ("POST", "/v1/applications"): frozenset({"integrator", "admin"}),
    ("GET", "/v1/submissions/{tracking_id}"): frozenset({"viewer", "integrator", "admin"}),
    ("GET", "/v1/dispatch/files/{sha256}"): frozenset({"viewer", "integrator", "admin"}),
    ("POST", "/v1/feasibility/preview"): frozenset({"viewer", "integrator", "admin"}),
    ("GET", "/v1/applications"): READERS,
    ("GET", "/v1/applications/{application_no}"): READERS,
    ("GET", "/v1/applications/{application_no}/timeline"): READERS,
    ("GET", "/v1/applications/{application_no}/feasibility"): READERS,
    ("GET", "/v1/applications/{application_no}/scheme.pdf"): READERS,
    ("GET", "/v1/analytics/stages"): READERS,
    ("GET", "/v1/analytics/process"): READERS,
    ("GET", "/v1/customers/{customer_no}"): READERS,
    ("GET", "/v1/grid/open-capacity"): READERS,
    ("GET", "/v1/grid/load-types"): READERS,
    ("GET", "/v1/forecast/equipment/{equipment_id}"): READERS,
    ("GET", "/v1/forecast/demand"): READERS,
    ("GET", "/v1/forecast/analyses/load-share"): READERS,
    ("GET", "/v1/forecast/analyses/ev-growth"): READERS,
    ("GET", "/v1/grid/substations"): READERS,
    ("GET", "/v1/grid/substations/{equipment_id}"): READERS,
    ("GET", "/v1/grid/feeders"): READERS,
    ("GET", "/v1/grid/feeders/{equipment_id}"): READERS,
    ("GET", "/v1/grid/transformers"): READERS,
    ("GET", "/v1/grid/transformers/{equipment_id}"): READERS,
    ("GET", "/v1/load-profiles"): READERS,
    ("GET", "/admin/adapters"): OPERATORS,
    ("GET", "/admin/adapters/{name}"): OPERATORS,
    ("GET", "/admin/dead-letters"): OPERATORS,
    ("GET", "/admin/dead-letters/{parked_id}"): OPERATORS,
    ("POST", "/admin/dead-letters/{parked_id}/replay"): OPERATORS,
    ("POST", "/admin/dead-letters/{parked_id}/discard"): OPERATORS,
    ("GET", "/admin/invalid"): OPERATORS,
    ("GET", "/admin/invalid/{parked_id}"): OPERATORS,
    ("POST", "/admin/invalid/{parked_id}/replay"): OPERATORS,
    ("POST", "/admin/invalid/{parked_id}/discard"): OPERATORS,
    ("GET", "/asyncapi.json"): PUBLIC,
    ("GET", "/v1/events"): frozenset({"viewer", "integrator", "admin"}),
    ("GET", "/v1/events/stream"): frozenset({"viewer", "integrator", "admin"}),
    ("POST", "/v1/webhooks"): INTEGRATORS,
    ("GET", "/v1/webhooks"): INTEGRATORS,
    ("GET", "/v1/webhooks/{subscription_id}"): INTEGRATORS,
    ("DELETE", "/v1/webhooks/{subscription_id}"): INTEGRATORS,
    ("GET", "/v1/webhooks/{subscription_id}/deliveries"): INTEGRATORS,
    ("GET", "/v1/webhooks/{subscription_id}/deliveries/{delivery_id}"): INTEGRATORS,
    ("POST", "/v1/webhooks/{subscription_id}/deliveries/{delivery_id}/replay"): INTEGRATORS,
    ("GET", "/ui/"): PUBLIC,
    ("GET", "/ui/login"): PUBLIC,
    ("POST", "/ui/login"): PUBLIC,
    ("POST", "/ui/logout"): PUBLIC,
    ("GET", "/ui/static/{name:path}"): PUBLIC,
    ("GET", "/ui/overview"): READERS,
    ("GET", "/ui/overview/figures"): READERS,
    ("GET", "/ui/cases"): READERS,
    ("GET", "/ui/cases/{application_no}"): READERS,
    ("GET", "/ui/health"): OPERATORS,
    ("GET", "/ui/health/parked/{parked_id}"): OPERATORS,
    ("POST", "/ui/health/parked/{parked_id}/replay"): OPERATORS,
    ("POST", "/ui/health/parked/{parked_id}/discard"): OPERATORS,
    ("GET", "/ui/grid"): READERS,
    ("GET", "/ui/progress"): PUBLIC,
    ("POST", "/ui/progress"): PUBLIC,
    ("POST", "/v1/progress"): PUBLIC,
    ("POST", "/ui/progress/ask"): PUBLIC,
    ("POST", "/v1/assistant/ask"): PUBLIC,
}

SOAP_PATHS = frozenset({"/soap/marketing"})

# Values that satisfy each path parameter's own validation, so the request reaches the handler.
PATH_VALUES = {"parked_id": "1", "sha256": "0" * 64, "name": "ui.css"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('security')}/hub.db")
    create_schema(engine)
    return hub_app(engine, auth=TEST_AUTH)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda match: PATH_VALUES.get(match[1], "X1"), path)


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    body = {"json": {}} if method == "POST" else {}
    if path == "/v1/events/stream":
        # A bad resume id ends the request with 400 once access is granted, instead of a live stream.
        headers = {**headers, "Last-Event-ID": "not-an-id"}
    if (method, path) == ("POST", "/ui/login"):
        return _log_in(client)
    response = client.request(method, _url(path), headers=headers, follow_redirects=False, **body)
    if method == "GET" and path.startswith("/ui/") and response.headers.get("location") == "/ui/login":
        # A dashboard page sends a user without credentials to the login page instead of answering 401.
        return 401
    if path in SOAP_PATHS and response.status_code == 500:
        # SOAP callers are refused with a soap:Client Fault; read it back as the refusal it stands for.
        fault = parse_envelope(response.content)
        if fault.findtext("faultcode") == "soap:Client":
            faultstring = str(fault.findtext("faultstring"))
            if faultstring.startswith("authentication failed: "):
                return 401
            if faultstring.startswith("not authorized: "):
                return 403
    return response.status_code


def _log_in(client: TestClient) -> int:
    """The login form as a browser sends it, in a client of its own so no session outlives the call."""
    browser = TestClient(client.app)
    form = browser.get("/ui/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf is not None, form
    response = browser.post(
        "/ui/login", data={"token": token("viewer"), "csrf_token": csrf[1]}, follow_redirects=False
    )
    return response.status_code


def test_every_served_route_is_in_the_matrix(app: FastAPI) -> None:
    assert set(served_routes(app)) == set(EXPECTED)


def test_the_policy_grants_exactly_the_matrix() -> None:
    policy = load_access_policy()
    for route, allowed in EXPECTED.items():
        needed = policy.routes[route]
        if allowed == PUBLIC:
            assert needed is None, route
        else:
            assert set(policy.roles_granting(needed)) == allowed, route


CASES = [(method, path, role) for (method, path) in EXPECTED for role in ROLES]


@pytest.mark.parametrize(("method", "path", "role"), CASES, ids=[f"{m} {p} as {r}" for m, p, r in CASES])
def test_each_role_reaches_exactly_its_routes(client: TestClient, method: str, path: str, role: str) -> None:
    allowed = EXPECTED[(method, path)]
    status = _call(client, method, path, bearer(role))
    if allowed == PUBLIC or role in allowed:
        assert status not in (401, 403), status
    else:
        assert status == 403


@pytest.mark.parametrize(("method", "path"), list(EXPECTED), ids=[f"{m} {p}" for m, p in EXPECTED])
def test_no_guarded_route_answers_without_credentials(client: TestClient, method: str, path: str) -> None:
    status = _call(client, method, path, {})
    if EXPECTED[(method, path)] == PUBLIC:
        assert status not in (401, 403)
    else:
        assert status == 401


def test_a_token_without_roles_reaches_nothing_guarded(client: TestClient) -> None:
    for method, path in EXPECTED:
        if EXPECTED[(method, path)] != PUBLIC:
            assert _call(client, method, path, bearer()) == 403, (method, path)


def test_the_integrator_api_key_pushes_and_submits_but_reads_nothing(client: TestClient) -> None:
    assert _call(client, "POST", "/soap/marketing", api_key_headers()) not in (401, 403)
    assert _call(client, "POST", "/v1/applications", api_key_headers()) not in (401, 403)
    assert _call(client, "GET", "/v1/applications", api_key_headers()) == 403
    assert _call(client, "GET", "/admin/dead-letters", api_key_headers()) == 403


def _signed(claims: dict[str, object], secret: str = TEST_SECRET, algorithm: str = "HS256") -> dict[str, str]:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": "eve",
        "iss": TEST_AUTH.issuer,
        "aud": TEST_AUTH.audience,
        "iat": now,
        "exp": now + 600,
        "roles": ["admin"],
    }
    return {"Authorization": f"Bearer {jwt.encode({**base, **claims}, secret, algorithm=algorithm)}"}


REFUSED = {
    "bad signature": _signed({}, secret="another-secret-of-the-same-length-0123456789"),
    "expired": _signed({"exp": int(time.time()) - 3600}),
    "wrong audience": _signed({"aud": "another-api"}),
    "wrong issuer": _signed({"iss": "someone-else"}),
    "no expiry": {"Authorization": "Bearer " + jwt.encode({"sub": "eve", "roles": ["admin"]}, TEST_SECRET)},
    "roles not a list": _signed({"roles": "admin"}),
    "not a token": {"Authorization": "Bearer not.a.token"},
    "another scheme": {"Authorization": f"Basic {token('admin')}"},
    "empty bearer": {"Authorization": "Bearer "},
    "unknown API key": {"X-API-Key": INTEGRATOR_API_KEY + "x"},
}


@pytest.mark.parametrize("headers", REFUSED.values(), ids=list(REFUSED))
def test_invalid_credentials_are_401_problems(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/v1/applications", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unauthenticated"
    assert response.headers["www-authenticate"].startswith("Bearer")


_NOT_UTF8_HEADER = jwt.utils.base64url_encode(b"\xb7\xfe{").decode()
_NOT_JSON_HEADER = jwt.utils.base64url_encode(b"alg=HS256").decode()
# What the caller is told, for tokens whose decoder message would quote the token's bytes.
TOLD = [
    (f"Bearer {_NOT_UTF8_HEADER}.e30.c2ln", "the token is not a well-formed JWT"),
    (f"Bearer {_NOT_JSON_HEADER}.e30.c2ln", "the token is not a well-formed JWT"),
    ("Bearer not.a.token", "the token is not a well-formed JWT"),
    (REFUSED["bad signature"]["Authorization"], "the token's signature does not verify"),
    (REFUSED["wrong audience"]["Authorization"], "the token is meant for another audience"),
    (REFUSED["expired"]["Authorization"], "the token has expired"),
]


@pytest.mark.parametrize(
    ("authorization", "detail"),
    TOLD,
    ids=["header not utf-8", "header not json", "not a token", "bad signature", "wrong audience", "expired"],
)
def test_a_401_tells_a_fixed_reason_and_never_the_decoders_message(
    client: TestClient, authorization: str, detail: str
) -> None:
    response = client.get("/v1/applications", headers={"Authorization": authorization})
    assert (response.status_code, response.json()["detail"]) == (401, detail)
    assert "codec" not in response.text and "0xb7" not in response.text


@pytest.mark.parametrize(
    ("headers", "faultstring"),
    [
        ({}, "authentication failed: missing credentials"),
        ({"X-API-Key": "a-key-nobody-was-given-0042"}, "authentication failed: invalid API key"),
        ({"Authorization": "Bearer not.a.token"}, "authentication failed: invalid bearer token"),
        (bearer("viewer"), "not authorized: this operation needs the permission legacy:push"),
    ],
    ids=["missing", "unknown key", "bad token", "no permission"],
)
def test_soap_callers_are_refused_with_a_client_fault_not_a_bearer_challenge(
    client: TestClient, headers: dict[str, str], faultstring: str
) -> None:
    response = client.post(
        "/soap/marketing", content=b"<x/>", headers={**headers, "Content-Type": "text/xml"}
    )
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/xml")
    assert "www-authenticate" not in response.headers
    fault = parse_envelope(response.content)
    assert (fault.findtext("faultcode"), fault.findtext("faultstring")) == ("soap:Client", faultstring)
    assert "a-key-nobody" not in response.text and "not.a.token" not in response.text


def test_the_push_wsdl_stays_public(client: TestClient) -> None:
    response = client.get("/soap/marketing?wsdl")
    assert response.status_code == 200 and b"MarketingPush" in response.content


def test_an_unsigned_token_is_refused(client: TestClient) -> None:
    now = int(time.time())
    claims = {
        "sub": "eve",
        "iss": TEST_AUTH.issuer,
        "aud": TEST_AUTH.audience,
        "exp": now + 600,
        "roles": ["admin"],
    }
    header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    payload = jwt.utils.base64url_encode(jwt.api_jws.json.dumps(claims).encode()).decode()
    response = client.get("/v1/applications", headers={"Authorization": f"Bearer {header}.{payload}."})
    assert response.status_code == 401


def test_a_refusal_names_the_permission_and_the_roles_granting_it(client: TestClient) -> None:
    response = client.get("/admin/dead-letters", headers=bearer("viewer"))
    body = response.json()
    assert response.status_code == 403 and body["code"] == "forbidden"
    assert "admin:read" in body["detail"] and "operator" in body["detail"]


def test_an_unknown_scope_grants_nothing(client: TestClient) -> None:
    assert client.get("/v1/applications", headers=bearer(scopes=["resources:admin", "*"])).status_code == 403


def test_without_a_configured_secret_no_token_is_accepted(sqlite_engine: Engine) -> None:
    client = TestClient(hub_app(sqlite_engine, auth=AuthSettings()))
    assert client.get("/v1/applications", headers=bearer("admin")).status_code == 401
    assert client.get("/health").status_code == 200


def test_a_short_secret_cannot_mint_or_verify() -> None:
    with pytest.raises(CredentialsError, match="at least 32 bytes"):
        mint_token(AuthSettings(jwt_secret=SecretStr("short")), sub="x", roles=["admin"])


def _auth_failures(client: TestClient) -> dict[tuple[str, str], float]:
    """yekuo_api_auth_failures_total by (status, reason), as /metrics exposes it."""
    text = client.get("/metrics").text
    return {
        (sample.labels["status"], sample.labels["reason"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "yekuo_api_auth_failures"
        for sample in family.samples
        if sample.name == "yekuo_api_auth_failures_total"
    }


def test_refusals_are_logged_without_the_credentials_and_counted_beside_a_served_request(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    forged = _signed({}, secret="another-secret-of-the-same-length-0123456789")
    expired = _signed({"exp": int(time.time()) - 3600})
    basic = {"Authorization": f"Basic {token('admin')}"}
    unknown_key = {"X-API-Key": "secret-key-nobody-was-given-0042"}
    viewer = bearer("viewer")
    presented = [forged, expired, basic, unknown_key, viewer]
    before = _auth_failures(client)

    with caplog.at_level(logging.INFO, logger="api.security"):
        statuses = [
            client.get("/v1/applications").status_code,
            client.get("/v1/applications", headers=forged).status_code,
            client.get("/v1/applications", headers=expired).status_code,
            client.get("/v1/applications", headers=basic).status_code,
            client.get("/v1/applications", headers=unknown_key).status_code,
            client.get("/admin/dead-letters", headers=viewer).status_code,
            client.get("/v1/applications", headers=viewer).status_code,
        ]
    after = _auth_failures(client)

    assert statuses == [401, 401, 401, 401, 401, 403, 200]
    messages = [record.getMessage() for record in caplog.records if record.name == "api.security"]
    assert [message.split(": ", 1)[1] for message in messages] == [
        "401, missing credentials",
        "401, invalid bearer token",
        "401, expired bearer token",
        "401, malformed Authorization header",
        "401, invalid API key",
        "403, needs admin:read",
    ]
    assert all(
        record.levelno == logging.WARNING for record in caplog.records if record.name == "api.security"
    )
    assert "GET /admin/dead-letters to tester (token) from testclient" in messages[-1]
    logged = caplog.text
    for headers in presented:
        credential = next(iter(headers.values())).split(" ")[-1]
        # No credential, nor any piece of one (a JWT's header, claims or signature segment).
        assert all(part not in logged for part in credential.split(".") if len(part) >= 8), headers
    for decoder_says in ("Signature", "the token", "not known", "must be 'Bearer"):
        assert decoder_says not in logged
    counted = {label: after.get(label, 0.0) - before.get(label, 0.0) for label in after}
    assert {label: delta for label, delta in counted.items() if delta} == {
        ("401", "missing"): 1.0,
        ("401", "invalid"): 2.0,
        ("401", "expired"): 1.0,
        ("401", "malformed"): 1.0,
        ("403", "admin:read"): 1.0,
    }
