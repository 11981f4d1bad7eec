"""Access control of the API: who is calling (bearer token or API key) and whether the route allows it.

One ASGI middleware guards every route the app serves, whatever kind of route it is. It finds the route
the request is for, looks up the permission that route needs in the access policy (api/access.yaml) and
answers 401 (no or invalid credentials) or 403 (a permission missing) as problem+json before any handler
runs. Public routes pass without credentials; a path the app does not serve passes on to its 404.
SOAP routes are refused in SOAP's own terms instead: a soap:Client Fault with HTTP 500 and no Bearer
challenge, because SOAP 1.1 clients read a fault from a 500 answer and fail on anything else (SOAP 1.1
section 6.2; WS-I Basic Profile 1.1 R1126).
Handlers get the caller through the `current_principal` dependency.

The web dashboard (api/ui) logs in with the same tokens, kept in a sealed session cookie (api/ui/session.py).
The cookie counts as credentials only for reads (GET, HEAD: the dashboard's pages and the event stream its
pages follow) and for the dashboard's own routes under /ui/, each of whose state-changing requests checks
the session's CSRF token; any other request must carry its credentials in a header. A dashboard page
asked for without valid credentials redirects to the login page instead of answering 401.

Every refusal is logged (request, client address, status and reason; for a 403 also the caller) and
counted in yekuo_api_auth_failures_total{status, reason}. The reason of a 401 is one of missing,
malformed, invalid or expired; neither the log nor the label ever holds the credentials presented, any
part of them, or what the token decoder said about them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.routing import iter_route_contexts
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import RedirectResponse, Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from api.access import AccessPolicy, RouteKey
from api.credentials import Caller, CredentialsError, TokenCache, TokenExpiredError, verify_api_key
from api.problems import problem, problem_response
from api.ui.session import SESSION_COOKIE, Session, SessionError, SessionSeal
from ground.errors import ConfigError
from ground.metrics import AUTH_FAILURES
from ground.settings import AuthSettings
from ground.soap import SOAP_CONTENT_TYPE, FaultCode, build_fault

API_KEY_HEADER = "X-API-Key"
PII_READ = "pii:read"
PRINCIPAL_STATE = "principal"
SESSION_STATE = "ui_session"
UI_PREFIX = "/ui/"
LOGIN_PATH = "/ui/login"
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_CHALLENGE = 'Bearer realm="yekuo-hub"'

log = logging.getLogger(__name__)


class SessionEndedError(CredentialsError):
    """A dashboard session cookie that no longer opens: its token expired, or it was not sealed here."""

    def __init__(self, message: str, *, expired: bool) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: its name, roles and every permission they and its extra scopes grant."""

    sub: str
    roles: frozenset[str]
    permissions: frozenset[str]
    via: str  # "token" or "api_key"

    def can(self, permission: str) -> bool:
        """Whether the caller holds a permission."""
        return permission in self.permissions


def served_routes(app: FastAPI) -> Iterator[RouteKey]:
    """Every (METHOD, path template) the app serves; HEAD is answered as GET and not listed apart.

    A route without methods (a mount, a websocket) cannot be matched against the policy, so it is refused.
    """
    for route in iter_route_contexts(app.routes):
        if route.path is None or route.methods is None:
            raise ConfigError(
                f"route {route.path or route!r} has no HTTP methods; the access policy cannot guard it"
            )
        for method in sorted(route.methods):
            if method != "HEAD":
                yield method, route.path


@dataclass(frozen=True)
class _GuardedPath:
    pattern: re.Pattern[str]
    needs: Mapping[str, str | None]  # METHOD → permission, None when public
    soap: bool = False  # refusals are SOAP Faults, not problems


def route_table(app: FastAPI, policy: AccessPolicy, soap_paths: Collection[str] = ()) -> list[_GuardedPath]:
    """The app's paths in routing order, each with what its methods need (a checked policy covers all).

    soap_paths are the path templates of SOAP endpoints, whose callers are refused with SOAP Faults.
    """
    table: dict[str, dict[str, str | None]] = {}
    for method, path in served_routes(app):
        table.setdefault(path, {})[method] = policy.routes[(method, path)]
    return [_GuardedPath(compile_path(path)[0], needs, path in soap_paths) for path, needs in table.items()]


def _soap_refusal(message: str) -> Response:
    # SOAP 1.1 over HTTP: a fault travels with status 500, whatever the reason; no WWW-Authenticate.
    return Response(build_fault(FaultCode.CLIENT, message), status_code=500, media_type=SOAP_CONTENT_TYPE)


class AccessControl:
    """ASGI middleware enforcing the policy on every HTTP request."""

    def __init__(self, app: ASGIApp, *, table: list[_GuardedPath], policy: AccessPolicy, auth: AuthSettings):
        self.app = app
        self.table = table
        self.policy = policy
        self.auth = auth
        self.sessions = SessionSeal(auth)
        self.tokens = TokenCache(auth, ttl_s=auth.verified_cache_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        path = _route_path(scope)
        guarded = next((entry for entry in self.table if entry.pattern.match(path)), None)
        if guarded is None or method not in guarded.needs:
            # Not served (404) or not with this method (405): the router answers, nothing is exposed.
            await self.app(scope, receive, send)
            return
        needed = guarded.needs[method]
        if needed is not None:
            refusal = self._refusal(scope, needed, f"{method} {path}", guarded.soap)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, needed: str, request_line: str, soap: bool) -> Any:
        instance = scope["path"]
        headers = Headers(scope=scope)
        try:
            caller = self._caller(scope, headers)
        except CredentialsError as exc:
            reason, presented = _unauthenticated(headers, exc)
            log.warning("refused %s from %s: 401, %s %s", request_line, _client(scope), reason, presented)
            AUTH_FAILURES.labels(status="401", reason=reason).inc()
            if _dashboard_page(scope):
                return RedirectResponse(LOGIN_PATH, status_code=303)
            if soap:
                return _soap_refusal(f"authentication failed: {reason} {presented}")
            challenge = (
                _CHALLENGE if headers.get("authorization") is None else f'{_CHALLENGE}, error="invalid_token"'
            )
            return problem_response(
                "unauthenticated", str(exc), instance, headers={"WWW-Authenticate": challenge}
            )
        principal = Principal(
            sub=caller.sub,
            roles=caller.roles,
            permissions=self.policy.permissions_of(caller.roles, caller.scopes),
            via=caller.via,
        )
        if not principal.can(needed):
            log.warning(
                "refused %s to %s (%s) from %s: 403, needs %s",
                request_line,
                principal.sub,
                principal.via,
                _client(scope),
                needed,
            )
            AUTH_FAILURES.labels(status="403", reason=needed).inc()
            if soap:
                return _soap_refusal(f"not authorized: this operation needs the permission {needed}")
            roles = ", ".join(self.policy.roles_granting(needed)) or "none; it is granted as an extra scope"
            return problem_response(
                "forbidden",
                f"this endpoint needs the permission {needed} (roles granting it: {roles})",
                instance,
            )
        scope.setdefault("state", {})[PRINCIPAL_STATE] = principal
        return None

    def _caller(self, scope: Scope, headers: Headers) -> Caller:
        authorization = headers.get("authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise CredentialsError("the Authorization header must be 'Bearer <token>'")
            return self.tokens.verify(token.strip())
        key = headers.get(API_KEY_HEADER)
        if key is not None:
            return verify_api_key(self.auth, key)
        cookie = cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE)
        if cookie and (scope["method"] in _SAFE_METHODS or _route_path(scope).startswith(UI_PREFIX)):
            try:
                session = self.sessions.open(cookie)
            except SessionError as exc:
                raise SessionEndedError(
                    f"the dashboard session has ended ({exc}): log in again",
                    expired=isinstance(exc.__cause__, TokenExpiredError),
                ) from exc
            scope.setdefault("state", {})[SESSION_STATE] = session
            return session.caller
        raise CredentialsError(
            f"credentials are required: Authorization: Bearer <token>, or {API_KEY_HEADER}"
        )


def _unauthenticated(headers: Headers, error: CredentialsError) -> tuple[str, str]:
    """Why credentials were refused (missing, malformed, expired, invalid) and what kind they were.

    Only the headers' presence and shape and the error's class are looked at: the credentials and the
    decoder's message stay out of logs and metrics.
    """
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "malformed", "Authorization header"
        return ("expired" if isinstance(error, TokenExpiredError) else "invalid"), "bearer token"
    if headers.get(API_KEY_HEADER) is not None:
        return "invalid", "API key"
    if isinstance(error, SessionEndedError):
        return ("expired" if error.expired else "invalid"), "session cookie"
    return "missing", "credentials"


def _dashboard_page(scope: Scope) -> bool:
    return scope["method"] in _SAFE_METHODS and _route_path(scope).startswith(UI_PREFIX)


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "an unknown address"


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def current_principal(request: Request) -> Principal:
    """The caller of a guarded route (a dependency); a public route has none and must not ask."""
    principal = request.scope.get("state", {}).get(PRINCIPAL_STATE)
    if not isinstance(principal, Principal):
        raise problem("unauthenticated", "this endpoint is public and has no authenticated caller")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def caller_can_read_pii(request: Request) -> bool:
    """Whether the caller holds pii:read (a dependency); False on a public route."""
    principal = caller_of(request.scope)
    return principal is not None and principal.can(PII_READ)


def session_of(scope: Scope) -> Session | None:
    """The dashboard session a request was authenticated with; None for header credentials."""
    session = scope.get("state", {}).get(SESSION_STATE)
    return session if isinstance(session, Session) else None


def caller_of(scope: Scope) -> Principal | None:
    """The principal the access control attached to a request, for middleware further in."""
    principal = scope.get("state", {}).get(PRINCIPAL_STATE)
    return principal if isinstance(principal, Principal) else None
