"""The dashboard's process overview timed in a real browser, with the cases of the API section stored.

Debian's chromium, driven by Playwright, logs in with a viewer token as a manager would, then opens
/ui/overview again and again. Each load is timed from the navigation's start to the moment its charts are
drawn (the page's own figures and the first canvas of the stage chart), as the browser's performance clock
tells it; the hub serves the page from uvicorn in a thread of this process, as in the API section.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from api.app import create_app
from bench.credentials import bench_credentials
from ground.webserver import BackgroundServer
from yekuo.consumers import CONSUMERS

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and without the background services whose connections a closed network refuses.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
OVERVIEW = "/ui/overview"
# A selector, not a JavaScript predicate: the page's Content-Security-Policy forbids eval.
_DRAWN = "#chart-stages canvas"


@dataclass(frozen=True)
class OverviewTiming:
    """Milliseconds from navigation start to the overview's charts drawn, over repeated loads."""

    loads: int
    p50_ms: float
    max_ms: float


def chromium_missing() -> str | None:
    """Why the browser timing cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: `make tools` installs Debian's chromium"
    return None


def measure_overview(engine: Engine, *, loads: int = 20) -> OverviewTiming:
    """Open the overview `loads` times after one warm-up load and time each until its charts are drawn."""
    # Imported here: Playwright is a development dependency, and only this section needs it.
    from playwright.sync_api import sync_playwright

    credentials = bench_credentials()
    token = credentials.headers["Authorization"].removeprefix("Bearer ")
    app = create_app(engine, auth=credentials.auth, consumers=CONSUMERS)
    samples: list[float] = []
    with (
        BackgroundServer(app, name="bench dashboard") as server,
        sync_playwright() as driver,
        tempfile.TemporaryDirectory() as profile,
    ):
        context = driver.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS), locale="zh-CN"
        )
        try:
            page = context.new_page()
            page.goto(f"{server.base_url}/ui/login")
            page.fill("#token", token)
            page.click("#login")
            page.wait_for_url(f"**{OVERVIEW}")
            page.wait_for_selector(_DRAWN, state="attached")
            for _ in range(loads):
                page.goto(f"{server.base_url}{OVERVIEW}", wait_until="commit")
                page.wait_for_selector(_DRAWN, state="attached")
                samples.append(float(page.evaluate("performance.now()")))
        finally:
            context.close()
    return OverviewTiming(len(samples), statistics.median(samples), max(samples))
