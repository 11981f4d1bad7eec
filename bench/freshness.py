"""Freshness: from a marketing-system push until the API shows the case and its feasibility verdict.

Two processes, as in production where the legacy system is another machine:
- this one runs the hub (yekuo.hub.Hub: poller with its push inbox, relay, consumers, as `yekuo run`
  does) and its API, whose push endpoint wakes the poller once a notification is stored;
- a child runs the marketing simulator, changes one application at a time at a fixed rate (a new site
  address carrying a marker), pushes each change to the hub's SOAP endpoint (/soap/marketing) with the
  integrator's API key, and polls GET /v1/applications/{no} until the case shows the marker and a
  feasibility assessment made after the change.

The poller's pick-up time of each change is recorded too, splitting freshness into push to pick-up and
the hub's own pipeline (pick-up to readable case and verdict). Both processes read time.monotonic(), one
system-wide clock on Linux; assessment times are compared with time.time(), also shared.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from multiprocessing import get_context
from multiprocessing.connection import Connection as Pipe
from typing import Any

import httpx2
from sqlalchemy.engine import Engine

from adapters.marketing.source import MarketingSource
from api.app import create_app
from api.marketing_push import PUSH_PATH
from bench.credentials import bench_credentials
from ground.errors import BusError
from ground.settings import Settings
from ground.webserver import BackgroundServer
from pipeline.config import HubConfig
from pipeline.consumers import ConsumerSpec
from pipeline.records import SourceBatch
from pipeline.routing import Router
from simulators.marketing.push import Pusher
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from yekuo.hub import Hub

VISIBLE_TIMEOUT_S = 30.0
# STATUS_CODE of applications in the feasibility rules' release stages (mappings/codes/marketing/
# status_code.yaml: 09 energisation, 10 archived).
CLOSED_STATUS = frozenset({"09", "10"})
_OBSERVE_EVERY_S = 0.02
# Reads of the API in flight at once: watching must not load the hub it watches, even when it lags.
_OBSERVERS_IN_FLIGHT = 4
_SYNC_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class ChangeTiming:
    """When one change was made in the marketing system and when the API first showed it with a verdict
    assessed after it (None: never)."""

    application_no: str
    changed_at: float
    visible_at: float | None


class TimedSource:
    """A polling source that notes when each application record was picked up by a poll."""

    def __init__(self, source: MarketingSource) -> None:
        self.source = source
        self.name = source.name
        self.picked: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def poll(self, checkpoint: Mapping[str, Any] | None) -> SourceBatch:
        """Poll the wrapped source and note the time for each application in the batch."""
        batch = self.source.poll(checkpoint)
        now = time.monotonic()
        with self._lock:
            for record in batch.records:
                if record.record_type == "application":
                    self.picked.setdefault(record.key, []).append(now)
        return batch

    def close(self) -> None:
        """Close the wrapped source."""
        self.source.close()

    def pick_up_after(self, application_no: str, moment: float) -> float | None:
        """The first poll that returned the application at or after moment."""
        with self._lock:
            times = self.picked.get(application_no, [])
            return next((picked for picked in times if picked >= moment), None)


@dataclass(frozen=True)
class FreshnessResult:
    """Every change's timings and poll pick-up, and the hub's troubles while the changes ran.

    loop_failures counts transient failures of the hub's loops (broker or database away); errors_logged
    counts error log lines (a handler failing on an event, for instance).
    """

    changes: list[ChangeTiming]
    picked_up: dict[str, float | None]
    poll_interval_s: float
    initial_cases: int
    loop_failures: int
    errors_logged: int


def _marker(index: int) -> str:
    return f"南阳市卧龙区车站南路{index}号(变更{index})"


def _shows_change(case: Mapping[str, Any], marker: str, changed_wall: float) -> bool:
    """The case holds the changed address and a feasibility verdict assessed after the change."""
    application = case.get("application") or {}
    assessment = case.get("feasibility") or {}
    assessed_at = assessment.get("assessed_at")
    return (
        application.get("site_address") == marker
        and isinstance(assessed_at, str)
        and datetime.fromisoformat(assessed_at).timestamp() >= changed_wall
    )


async def _observe(
    client: httpx2.AsyncClient,
    in_flight: asyncio.Semaphore,
    application_no: str,
    marker: str,
    changed_at: float,
    changed_wall: float,
) -> float | None:
    deadline = changed_at + VISIBLE_TIMEOUT_S
    while time.monotonic() < deadline:
        async with in_flight:
            response = await client.get(f"/v1/applications/{application_no}")
        if response.status_code == 200 and _shows_change(response.json(), marker, changed_wall):
            return time.monotonic()
        await asyncio.sleep(_OBSERVE_EVERY_S)
    return None


async def _change_stream(
    server: SimulatorServer, api_url: str, headers: dict[str, str], numbers: Sequence[str], rate: float
) -> list[ChangeTiming]:
    async with httpx2.AsyncClient(base_url=api_url, headers=headers, timeout=10.0) as client:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05
        in_flight = asyncio.Semaphore(_OBSERVERS_IN_FLIGHT)
        observers = []
        for index, application_no in enumerate(numbers):
            delay = start + index / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            marker = _marker(index)
            changed_at, changed_wall = time.monotonic(), time.time()
            # The world's change goes out as a push (the Pusher subscribed to it) right away.
            server.world.apply_change(application_no, {"ELEC_ADDR": marker})
            watch = _observe(client, in_flight, application_no, marker, changed_at, changed_wall)
            observers.append((application_no, changed_at, asyncio.create_task(watch)))
        return [ChangeTiming(number, changed_at, await task) for number, changed_at, task in observers]


def simulate_marketing(pipe: Pipe, seed: int, applications: int, changes: int, rate: float) -> None:
    """Child process: serve a seeded marketing world, then make `changes` changes at `rate` per second.

    Protocol on the pipe: send (wsdl_url, application count); receive the hub API's base URL, the headers
    that authenticate a reader and the API key to push with, once the hub has the whole world; send the
    list of ChangeTiming.
    """
    world = generate_world(seed, customers=max(1, applications // 2), applications=applications)
    numbers = [row["APP_NO"] for row in world.all_applications()]
    # Only open applications get a new assessment; energised and archived ones have none to wait for.
    assessed = [row["APP_NO"] for row in world.all_applications() if row["STATUS_CODE"] not in CLOSED_STATUS]
    chosen = random.Random(seed).sample(assessed, min(changes, len(assessed)))
    with SimulatorServer(world) as server:
        pipe.send((server.wsdl_url, len(numbers)))
        api_url, headers, push_api_key = pipe.recv()
        with Pusher(f"{api_url}{PUSH_PATH}", world, api_key=push_api_key):
            pipe.send(asyncio.run(_change_stream(server, api_url, headers, chosen, rate)))


def _bench_config(config: HubConfig, exchange: str) -> HubConfig:
    routes = tuple(replace(route, exchange=exchange) for route in config.routes)
    return replace(config, routes=routes, router=Router(routes, config.mappings))


def _wait_for_sync(hub: Hub, applications: int) -> int:
    deadline = time.monotonic() + _SYNC_TIMEOUT_S
    while True:
        status = hub.status()
        if status.cases >= applications and not status.pending:
            return status.cases
        if time.monotonic() > deadline:
            raise BusError(
                f"the hub did not take in the marketing world in {_SYNC_TIMEOUT_S:.0f} s: {status}"
            )
        time.sleep(0.2)


def measure_freshness(
    settings: Settings,
    engine: Engine,
    config: HubConfig,
    consumers: Sequence[ConsumerSpec],
    *,
    applications: int,
    changes: int,
    rate: float,
    seed: int = 21,
) -> FreshnessResult:
    """Run the hub against a simulator in a child process and time each change until the API shows it."""
    context = get_context("spawn")
    parent_end, child_end = context.Pipe()
    child = context.Process(
        target=simulate_marketing, args=(child_end, seed, applications, changes, rate), name="bench-marketing"
    )
    child.start()
    try:
        wsdl_url, world_size = parent_end.recv()
        source = TimedSource(MarketingSource(wsdl_url, page_size=settings.marketing.page_size))
        hub = Hub(
            settings,
            sources=[source],
            engine=engine,
            config=_bench_config(config, settings.exchange),
            consumers=consumers,
        )
        hub.start()
        try:
            credentials = bench_credentials()
            app = create_app(
                engine,
                auth=credentials.auth,
                consumers=hub.consumers,
                readiness=hub.readiness,
                on_push=functools.partial(hub.wake, f"poll:{source.name}"),
            )
            with BackgroundServer(app, name="bench hub api") as api:
                initial = _wait_for_sync(hub, world_size)
                failures_before = _loop_failures(hub)
                with _counting_errors() as errors:
                    parent_end.send((api.base_url, credentials.headers, credentials.push_api_key))
                    timings: list[ChangeTiming] = parent_end.recv()
                loop_failures = _loop_failures(hub) - failures_before
        finally:
            hub.stop()
    finally:
        child.join(10)
        if child.is_alive():
            child.terminate()
    picked = {
        timing.application_no: source.pick_up_after(timing.application_no, timing.changed_at)
        for timing in timings
    }
    return FreshnessResult(
        timings, picked, settings.marketing.poll_interval_s, initial, loop_failures, errors.count
    )


def _loop_failures(hub: Hub) -> int:
    return sum(health.failures for health in hub.status().loops.values())


class _ErrorCount(logging.Handler):
    """Counts error log records, whoever writes them."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@contextmanager
def _counting_errors() -> Iterator[_ErrorCount]:
    handler = _ErrorCount()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
