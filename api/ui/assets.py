"""GET /ui/static/{name}: the dashboard's scripts, styles, charting library and CJK font, from the hub.

Only files known when the app is built are served (a fixed name → file table): a name with `..` or one
that was not shipped is a 404, never a read elsewhere on disk. Intranets have no internet, so nothing the
pages use comes from a CDN.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pylopdf_fonts_zh_cn
from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.problems import problem, problem_responses
from api.ui.context import Ui

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
ECHARTS = "vendor/echarts.min.js"
FONT = "fonts/NotoSansSC-Regular.otf"
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".otf": "font/otf"}
# Assets change only with a new release of the hub; a day keeps pages fast without pinning old files long.
_CACHE = "public, max-age=86400"


def shipped_assets(static_dir: Path = STATIC_DIR) -> dict[str, Path]:
    """Every servable asset by its name under /ui/static/.

    Without the charting library the pages still serve their figures and tables, and say that charts are
    missing: a checkout where `make install` has not run yet keeps a working API.
    """
    assets = {
        path.relative_to(static_dir).as_posix(): path
        for path in sorted(static_dir.rglob("*"))
        if path.is_file() and path.suffix in _MEDIA_TYPES
    }
    if ECHARTS not in assets:
        log.warning("%s is missing: `make install` installs Apache ECharts there", static_dir / ECHARTS)
    assets[FONT] = pylopdf_fonts_zh_cn.sans_path()
    return assets


router = APIRouter(include_in_schema=False)


@router.get("/ui/static/{name:path}", responses=problem_responses("not-found"))
def static_asset(name: str, ui: Ui) -> FileResponse:
    path = ui.assets.get(name)
    if path is None:
        raise problem("not-found", f"no dashboard asset named {name[:80]!r}")
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers={"Cache-Control": _CACHE})
