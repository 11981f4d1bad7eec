"""Rendering of the dashboard's pages: Jinja2 templates with the labels, number formats and page frame.

Every page gets `user` (the principal), `csrf` (the session's CSRF token for its forms), `nav`, `charts`
(whether the charting library is installed) and the filters below. Times are shown in Asia/Shanghai.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.security import caller_of, session_of
from api.ui.labels import label
from workflow.workdays import SHANGHAI

TEMPLATES_DIR = Path(__file__).with_name("templates")
# The pages of the top bar, with the permission each needs: a link the user could not follow is not shown.
NAV = (
    ("/ui/overview", "流程总览", "resources:read"),
    ("/ui/cases", "工单", "resources:read"),
    ("/ui/health", "集成监控", "admin:read"),
    ("/ui/grid", "电网资源", "resources:read"),
)
# Scripts, styles, fonts and data only from the hub itself; no inline script, no framing by other sites.
# Inline styles stay allowed: the charting library positions its tooltips with them.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@dataclass(frozen=True)
class PageFrame:
    """What every page of one dashboard shares: stage names in stage order and whether charts can draw."""

    stage_names: Mapping[str, str]
    charts: bool

    def stage_name(self, stage: object) -> str:
        """The stage's name from workflow/stages.yaml; an unknown id is shown as it is."""
        return "—" if stage is None else self.stage_names.get(str(stage), str(stage))


def _moment(value: object) -> str:
    if value is None:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if isinstance(moment, datetime):
        return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    return str(moment)


def _day(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).date().isoformat()
    return value.isoformat() if isinstance(value, date) else str(value)


def _share(value: object) -> str:
    return "—" if not isinstance(value, int | float) else f"{value * 100:.1f}%"


def _number(value: object) -> str:
    if value is None:
        return "—"
    return f"{value:g}" if isinstance(value, float) else str(value)


def templates(frame: PageFrame) -> Jinja2Templates:
    """The dashboard's template environment (autoescaping on, as Jinja2Templates sets it)."""
    env = Jinja2Templates(directory=TEMPLATES_DIR)
    env.env.filters.update(
        label=lambda code, table: label(table, code),
        stage=frame.stage_name,
        moment=_moment,
        day=_day,
        share=_share,
        number=_number,
    )
    env.env.globals.update(stage_names=frame.stage_names, charts=frame.charts)
    return env


def render(env: Jinja2Templates, request: Request, name: str, context: Mapping[str, Any]) -> HTMLResponse:
    """A page with the frame every page needs; pages are never cached, as they show personal data."""
    principal = caller_of(request.scope)
    session = session_of(request.scope)
    nav = [(href, title) for href, title, needs in NAV if principal is not None and principal.can(needs)]
    response = env.TemplateResponse(
        request,
        name,
        {"user": principal, "csrf": session.csrf if session else None, "nav": nav, **context},
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response
