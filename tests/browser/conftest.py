"""A live hub on 127.0.0.1 with seeded cases, and Debian's chromium driven by Playwright.

The hub is the demo's: the marketing simulator with a seeded world, the hub polling it over SOAP on the
in-process bus with SQLite, and its API (dashboard included) served by uvicorn on a free port. Each test
gets a fresh browser profile; every request the browser makes is recorded, and a test fails when one went
anywhere but 127.0.0.1. Screenshots go to var/screenshots/.

Playwright never downloads a browser here: it launches /usr/bin/chromium (`make tools` installs it). Its
sync API keeps an event loop running in the main thread while it is started, so the driver and the hub
live for one test module only: tests run after it in the same session (TestClient, asyncio.run) need the
thread free again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright
from sqlalchemy.engine import Engine

from adapters.marketing.source import MarketingSource
from bench.dashboard_timing import CHROMIUM, CHROMIUM_ARGS
from ground.settings import PROJECT_ROOT, Settings
from ground.webserver import BackgroundServer
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import MarketingWorld
from store.database import create_engine
from tests.support.auth import TEST_AUTH
from yekuo.hub import Hub
from yekuo.serve import build_api

SCREENSHOTS = PROJECT_ROOT / "var" / "screenshots"
APPLICATIONS = 40
LOCAL_HOST = "127.0.0.1"


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 90.0) -> None:
    """Poll until the condition holds; fail naming what was awaited."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@dataclass
class LiveHub:
    """The running hub: its dashboard's base URL, its database and the legacy world it polls."""

    base_url: str
    engine: Engine
    world: MarketingWorld
    hub: Hub

    def settled(self) -> bool:
        """Every seeded application is tracked and nothing waits in the outbox."""
        status = self.hub.status()
        return status.cases >= self.world.application_count and status.pending == 0


@pytest.fixture(scope="module")
def live_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    world = generate_world(seed=19, customers=30, applications=APPLICATIONS)
    folder = tmp_path_factory.mktemp("browser-hub")
    settings = Settings(
        bus_url=f"memory://{uuid.uuid4()}", db_url=f"sqlite:///{folder}/hub.db", auth=TEST_AUTH
    )
    engine = create_engine(settings.db_url)
    with SimulatorServer(world) as simulator:
        hub = Hub(settings, sources=[MarketingSource(simulator.wsdl_url, page_size=25)], engine=engine)
        hub.start()
        try:
            with BackgroundServer(build_api(hub), host=LOCAL_HOST, port=0, name="hub-api") as api:
                live = LiveHub(api.base_url, engine, world, hub)
                wait_for(live.settled, "the hub's first sync")
                yield live
        finally:
            hub.stop()
    engine.dispose()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make tools` installs Debian's chromium"
    with sync_playwright() as driver:
        yield driver


@dataclass
class Browser:
    """A fresh chromium profile with the log of every URL it requested."""

    context: BrowserContext
    base_url: str
    requested: list[str] = field(default_factory=list)

    def page(self) -> Page:
        """A new tab."""
        return self.context.new_page()

    def log_in(self, page: Page, pasted: str) -> None:
        """Paste a token into the login form, as a user does, and wait for the overview."""
        page.goto(f"{self.base_url}/ui/login")
        page.fill("#token", pasted)
        page.click("#login")
        page.wait_for_url("**/ui/overview")


@pytest.fixture
def browser(playwright: Playwright, live_hub: LiveHub, tmp_path: Path) -> Iterator[Browser]:
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=str(CHROMIUM),
        headless=True,
        args=list(CHROMIUM_ARGS),
        locale="zh-CN",
        viewport={"width": 1400, "height": 1000},
    )
    opened = Browser(context, live_hub.base_url)
    context.on("request", lambda request: opened.requested.append(request.url))
    try:
        yield opened
    finally:
        context.close()
    elsewhere = [url for url in opened.requested if urlsplit(url).hostname != LOCAL_HOST]
    assert not elsewhere, f"requests left {LOCAL_HOST}: {elsewhere}"


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as var/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
