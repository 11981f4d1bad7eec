"""What the dashboard's pages share, as typed FastAPI dependencies over the UI context create_app installs.

The pages read the database and the hub's services through the API context (api/context.py); this one adds
what only the pages have: their templates and frame, the shipped assets, the session seal and the access
policy's permissions, and the sources of the integration health page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.templating import Jinja2Templates

from api.ui.render import PageFrame
from api.ui.session import SessionSeal

if TYPE_CHECKING:
    from api.ui.health import HealthSources
    from api.ui.login import Permissions


@dataclass(frozen=True)
class UiContext:
    """The dashboard's templates (env, framed by frame), its assets by name, the seal of its sessions,
    permissions (the access policy's roles and scopes to permissions) and the health page's sources."""

    env: Jinja2Templates
    frame: PageFrame
    assets: dict[str, Path]
    seal: SessionSeal
    permissions: Permissions
    health: HealthSources


def install_ui_context(app: FastAPI, context: UiContext) -> None:
    """Make context what the app's dashboard pages get through Ui."""
    app.state.ui_context = context


async def ui_context(request: Request) -> UiContext:
    """The UI context of the app serving the request (a dependency)."""
    context: UiContext = request.app.state.ui_context
    return context


Ui = Annotated[UiContext, Depends(ui_context)]
