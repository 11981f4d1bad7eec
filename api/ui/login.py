"""Login and logout of the dashboard: a user pastes a hub token; the session cookie carries it sealed.

Cookies are HttpOnly, SameSite=Strict and Secure when the request came over TLS. The session cookie's
path is / so that the event stream (/v1/events/stream) the pages follow sees it too, and it expires with
its token. Both forms are bound to a CSRF token: the login form to a pre-session cookie, the logout form to
the session; a form without the right one is refused with 403.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.credentials import Caller
from api.ui.context import Ui, UiContext
from api.ui.render import NAV, render
from api.ui.session import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    LOGIN_FORM_TTL_S,
    SESSION_COOKIE,
    SessionError,
    check_csrf,
)
from ground import clock

HOME = "/ui/overview"
# Where a caller with none of the pages' permissions lands: the public progress lookup.
PUBLIC_PAGE = "/ui/progress"
# The access policy's roles and extra scopes to the permissions they grant (AccessPolicy.permissions_of).
Permissions = Callable[[frozenset[str], frozenset[str]], frozenset[str]]
# A pasted token is a few hundred bytes; anything much longer is not one.
MAX_FORM_BYTES = 16 * 1024
_FORM_TYPE = "application/x-www-form-urlencoded"


async def form_fields(request: Request) -> dict[str, str]:
    """The fields of an urlencoded form (the first value of each); empty for any other body."""
    if request.headers.get("content-type", "").split(";")[0].strip() != _FORM_TYPE:
        return {}
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    return {name: values[0] for name, values in parse_qs(body.decode("utf-8", "replace")).items()}


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def landing_page(caller: Caller, permissions: Permissions) -> str:
    """The first page of the navigation the caller may see: an operator lands on integration health, not
    on an overview it is refused."""
    granted = permissions(caller.roles, caller.scopes)
    return next((href for href, _, needs in NAV if needs in granted), PUBLIC_PAGE)


router = APIRouter(include_in_schema=False)


def login_page(ui: UiContext, request: Request, error: str | None, status: int) -> HTMLResponse:
    """The login form, with a fresh form token in its cookie."""
    csrf, cookie = ui.seal.login_form()
    response = render(ui.env, request, "login.html", {"login_csrf": csrf, "error": error})
    response.status_code = status
    _cookie(response, request, LOGIN_COOKIE, cookie, LOGIN_FORM_TTL_S)
    return response


@router.get("/ui/")
def home(request: Request, ui: Ui) -> RedirectResponse:
    cookie = request.cookies.get(SESSION_COOKIE)
    try:
        target = landing_page(ui.seal.open(cookie).caller, ui.permissions) if cookie else HOME
    except SessionError:
        target = HOME  # an ended session: the page sends the user on to the login form
    return RedirectResponse(target, status_code=303)


@router.get("/ui/login")
def show_login(request: Request, ui: Ui) -> HTMLResponse:
    return login_page(ui, request, None, 200)


@router.post("/ui/login")
async def log_in(request: Request, ui: Ui) -> Response:
    seal = ui.seal
    fields = await form_fields(request)
    try:
        seal.check_login_form(request.cookies.get(LOGIN_COOKIE), fields.get(CSRF_FIELD))
    except SessionError as exc:
        return login_page(ui, request, str(exc), 403)
    try:
        session, cookie = seal.start(fields.get("token", "").strip())
    except SessionError as exc:
        return login_page(ui, request, f"令牌无效: {exc}", 401)
    response = RedirectResponse(landing_page(session.caller, ui.permissions), status_code=303)
    lifetime = max(0, session.expires_at - int(clock.now().timestamp()))
    _cookie(response, request, SESSION_COOKIE, cookie, lifetime)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/ui/logout")
async def log_out(request: Request, ui: Ui) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        try:
            session = ui.seal.open(cookie)
        except SessionError:
            session = None  # an ended session: only the cookie is left to clear
        if session is not None:
            try:
                check_csrf(session.csrf, (await form_fields(request)).get(CSRF_FIELD))
            except SessionError as exc:
                return HTMLResponse(f"403: {exc}", status_code=403)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
