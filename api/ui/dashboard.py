"""The dashboard's router: login, the pages and the static assets, with CSRF checked on every page route.

A page module adds its router to `router` here under `csrf_guard`; the routes it serves need entries in
api/access.yaml like any API route, and create_app refuses to start without them.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import problem
from api.security import session_of
from api.ui.assets import ECHARTS, shipped_assets
from api.ui.assets import router as assets_router
from api.ui.cases import router as cases_router
from api.ui.context import UiContext
from api.ui.grid import router as grid_page_router
from api.ui.health import HealthSources
from api.ui.health import router as health_router
from api.ui.login import Permissions, form_fields
from api.ui.login import router as login_router
from api.ui.overview import router as overview_router
from api.ui.progress import router as progress_page_router
from api.ui.render import PageFrame, templates
from api.ui.session import CSRF_FIELD, CSRF_HEADER, SessionError, SessionSeal, check_csrf
from ground.settings import AuthSettings
from workflow.config import WorkflowConfig

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def csrf_guard(request: Request) -> None:
    """Refuse with 403 a state-changing request made with a session cookie but without its CSRF token.

    The token comes in the X-CSRF-Token header (scripts) or the csrf_token form field (forms). A request
    with header credentials (a bearer token, an API key) carries nothing a browser adds by itself, so it
    needs none.
    """
    if request.method in _SAFE_METHODS:
        return
    session = session_of(request.scope)
    if session is None:
        return
    presented = request.headers.get(CSRF_HEADER) or (await form_fields(request)).get(CSRF_FIELD)
    try:
        check_csrf(session.csrf, presented)
    except SessionError as exc:
        raise problem("forbidden", str(exc)) from exc


class EmptyFiltersLeftOut:
    """ASGI middleware: a dashboard page's query parameters without a value are left out.

    A filter form sends every field, and an empty one means "any"; the pages share the API's typed
    parameters (an enum, a date, a boolean), which would refuse an empty value with 422.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/ui/") and scope.get("query_string"):
            pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            kept = urlencode([(name, value) for name, value in pairs if value != ""])
            scope = {**scope, "query_string": kept.encode("latin-1")}
        await self.app(scope, receive, send)


def dashboard_context(
    *,
    auth: AuthSettings,
    config: Callable[[], WorkflowConfig],
    health: HealthSources,
    permissions: Permissions,
) -> UiContext:
    """What the pages share: their templates framed with the stage model's names (config), the shipped
    assets and the session seal of auth. health gives the integration health page the hub's operator
    service, metrics and adapter reports; permissions turns roles and scopes into permissions (the access
    policy), to land a user on a page it may see."""
    assets = shipped_assets()
    frame = PageFrame(stage_names=config().stages, charts=ECHARTS in assets)
    return UiContext(
        env=templates(frame),
        frame=frame,
        assets=assets,
        seal=SessionSeal(auth),
        permissions=permissions,
        health=health,
    )


# Every /ui route: login and the assets, then the pages under csrf_guard.
router = APIRouter(include_in_schema=False)
router.include_router(assets_router)
router.include_router(login_router)
_pages = APIRouter(dependencies=[Depends(csrf_guard)])
_pages.include_router(overview_router)
_pages.include_router(cases_router)
_pages.include_router(health_router)
_pages.include_router(grid_page_router)
_pages.include_router(progress_page_router)
router.include_router(_pages)
