"""Pushes from the marketing system and polls of it together: each record version becomes one event, so no
case and no timeline entry is made twice; and hostile pushes to the running hub get SOAP Faults while the
hub keeps serving."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest
from sqlalchemy.engine import Engine

from adapters.marketing.wiring import build_marketing
from api.marketing_push import PUSH_PATH
from ground.settings import MarketingSettings, Settings
from ground.soap import SOAP_ENV_NS, parse_envelope
from ground.webserver import BackgroundServer
from simulators.marketing.push import Pusher, notification
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import MarketingWorld, status_flow
from store.database import create_engine
from tests.integration.marketing_pipeline import (
    application_events,
    case_numbers,
    fast_client,
    kept_case_events,
    marketing_pipeline,
    timeline_entries,
)
from tests.support.app import hub_app
from tests.support.auth import INTEGRATOR_API_KEY, TEST_AUTH, api_key_headers, bearer
from tests.unit.api.test_marketing_push import BILLION_LAUGHS, EXTERNAL_ENTITY
from yekuo.hub import Hub
from yekuo.serve import build_api


@pytest.fixture
def world() -> MarketingWorld:
    return generate_world(seed=101, customers=20, applications=30)


def _open(world: MarketingWorld, count: int) -> list[str]:
    return [row["APP_NO"] for row in world.all_applications() if row["STATUS_CODE"] != status_flow(row)[-1]][
        :count
    ]


def test_push_and_poll_together_never_duplicate_a_case_or_a_timeline_entry(
    world: MarketingWorld, sqlite_engine: Engine
) -> None:
    rows = world.all_applications()
    first_pushed = {row["APP_NO"] for row in rows[:12]}
    moving = [app_no for app_no in _open(world, 30) if app_no not in first_pushed][:6]
    assert len(moving) == 6
    with (
        BackgroundServer(hub_app(sqlite_engine, auth=TEST_AUTH)) as hub_api,
        SimulatorServer(world) as simulator,
        marketing_pipeline(sqlite_engine, fast_client(simulator.wsdl_url), page_size=8) as pipeline,
        Pusher(f"{hub_api.base_url}{PUSH_PATH}", world, api_key=INTEGRATOR_API_KEY) as pusher,
    ):
        for row in rows[:12]:
            pusher.notify(row)  # the versions the listing is about to bring as well
        pusher.drain()
        pipeline.poll_until_done()
        older = {app_no: world.application(app_no) for app_no in moving}
        for app_no in moving:
            world.advance(app_no)
        pusher.drain()
        for row in rows[:12]:
            pusher.notify(row)  # late repeats of versions staged long ago
        for app_no in moving[:3]:
            stale = older[app_no]
            assert stale is not None
            pusher.notify(stale)  # a retried push of the version before the change
        pusher.drain()
        pipeline.sync()
        assert (pusher.sent, pusher.failed) == (12 + 6 + 12 + 3, 0)

    assert sorted(case_numbers(sqlite_engine)) == sorted(row["APP_NO"] for row in rows)
    events = application_events(sqlite_engine)
    versions = {row["APP_NO"]: 2 if row["APP_NO"] in moving else 1 for row in rows}
    assert dict(events) == versions
    assert dict(kept_case_events(sqlite_engine)) == versions
    assert dict(timeline_entries(sqlite_engine)) == versions, "one entry per stage entered, no rework"
    # The listing met the 12 first pushes and the 6 pushed changes again; the stale pushes came too late.
    assert pipeline.source.stats.by_reason == {"same version": 18, "listed already": 3}


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def running_hub(
    world: MarketingWorld, tmp_path: Path
) -> Iterator[tuple[Hub, BackgroundServer, SimulatorServer]]:
    settings = Settings(
        bus_url=f"memory://{uuid.uuid4()}",
        db_url=f"sqlite:///{tmp_path}/hub.db",
        marketing=MarketingSettings(poll_interval_s=0.1),
        auth=TEST_AUTH,
    )
    engine = create_engine(settings.db_url)
    with SimulatorServer(world) as simulator:
        marketing = build_marketing(
            settings.marketing.model_copy(update={"wsdl_url": simulator.wsdl_url}), engine
        )
        hub = Hub(settings, sources=[marketing.source], engine=engine, workers=[marketing.writer_loop])
        hub.start()
        try:
            with BackgroundServer(build_api(hub, marketing)) as api:
                yield hub, api, simulator
        finally:
            hub.stop()
            engine.dispose()


def test_hostile_pushes_get_faults_and_the_running_hub_keeps_serving(
    world: MarketingWorld, running_hub: tuple[Hub, BackgroundServer, SimulatorServer]
) -> None:
    hub, api, _ = running_hub
    _wait(lambda: hub.status().cases == 30 and hub.status().pending == 0, "the first sync")
    endpoint = f"{api.base_url}{PUSH_PATH}"

    def fifty_megabytes() -> Iterator[bytes]:
        yield f'<soap:Envelope xmlns:soap="{SOAP_ENV_NS}"><soap:Body>'.encode()
        for _ in range(50 * 16):
            yield b" " * (64 * 1024)

    for body in (BILLION_LAUGHS, EXTERNAL_ENTITY, fifty_megabytes()):
        response = httpx2.post(endpoint, content=body, headers=api_key_headers(), timeout=30)
        fault = parse_envelope(response.content)
        assert (response.status_code, fault.findtext("faultcode")) == (500, "soap:Client")
        assert "root:" not in response.text

    assert httpx2.get(f"{api.base_url}/health").json() == {"status": "ok"}
    ready = httpx2.get(f"{api.base_url}/ready").json()
    assert ready["status"] == "ready", ready
    # A change that arrives only as a push (the listing is not asked again) still becomes a case update.
    app_no = _open(world, 1)[0]
    row = world.apply_change(app_no, {"ELEC_ADDR": "南阳市卧龙区车站南路99号"})
    accepted = httpx2.post(endpoint, content=notification(row, world), headers=api_key_headers(), timeout=10)
    assert accepted.status_code == 200

    def updated() -> bool:
        case = httpx2.get(f"{api.base_url}/v1/applications/{app_no}", headers=bearer("viewer")).json()
        return bool(case["application"].get("site_address") == "南阳市卧龙区车站南路99号")

    _wait(updated, "the pushed change")
    report = httpx2.get(f"{api.base_url}/admin/adapters/marketing", headers=bearer("operator")).json()
    assert report["available"] is True and report["push_inbox"]["received"] == 1
    assert report["loops"]["poll:marketing"]["ok"] is True
    assert Counter(application_events(hub.engine).values()) == Counter({1: 29, 2: 1})


def test_a_push_wakes_a_poller_that_would_otherwise_sleep_for_an_hour(
    world: MarketingWorld, tmp_path: Path
) -> None:
    settings = Settings(
        bus_url=f"memory://{uuid.uuid4()}",
        db_url=f"sqlite:///{tmp_path}/hub.db",
        marketing=MarketingSettings(poll_interval_s=3600),
        auth=TEST_AUTH,
    )
    engine = create_engine(settings.db_url)
    with SimulatorServer(world) as simulator:
        marketing = build_marketing(
            settings.marketing.model_copy(update={"wsdl_url": simulator.wsdl_url}), engine
        )
        hub = Hub(settings, sources=[marketing.source], engine=engine)
        hub.start()
        try:
            with BackgroundServer(build_api(hub, marketing)) as api:
                # The first sync pages on without pausing; then the poller idles for its hour.
                _wait(lambda: hub.status().cases == 30 and hub.status().pending == 0, "the first sync")
                app_no = _open(world, 1)[0]
                row = world.apply_change(app_no, {"ELEC_ADDR": "南阳市卧龙区车站南路7号"})
                endpoint = f"{api.base_url}{PUSH_PATH}"
                pushed = httpx2.post(endpoint, content=notification(row, world), headers=api_key_headers())
                assert pushed.status_code == 200

                def updated() -> bool:
                    case = httpx2.get(
                        f"{api.base_url}/v1/applications/{app_no}", headers=bearer("viewer")
                    ).json()
                    return bool(case["application"].get("site_address") == "南阳市卧龙区车站南路7号")

                _wait(updated, "the pushed change, taken when the push woke the poller")
        finally:
            hub.stop()
            engine.dispose()
