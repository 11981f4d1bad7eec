"""Two hubs on one SQLite file and one in-process broker: one holds every duty, the other idles and is ready,
/ready and /admin/adapters show who holds what, and a stopped hub hands its duties over at once."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from bus.memory import discard_broker, unique_url
from ground import clock
from ground.settings import PROJECT_ROOT, ClusterSettings, Settings
from pipeline.leases import LeaseKeeper
from pipeline.records import SourceBatch
from store.leases import list_leases
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer
from yekuo.hub import Hub

TTL_S = 30.0
DUTIES = {"drain", "monitor", "poll:marketing", "relay", "write:subscriptions"}


class QuietMarketing:
    """A marketing source with nothing new."""

    name = "marketing"

    def poll(self, checkpoint: Mapping[str, Any] | None) -> SourceBatch:
        return SourceBatch([], dict(checkpoint or {}), False)

    def close(self) -> None:
        pass


@pytest.fixture
def bus_url() -> Iterator[str]:
    url = unique_url("hub-leases")
    yield url
    discard_broker(url)


def _hub(engine: Engine, bus_url: str, name: str) -> Hub:
    settings = Settings(
        bus_url=bus_url,
        config_dir=PROJECT_ROOT,
        cluster=ClusterSettings(instance_name=name, lease_ttl_s=TTL_S),
    )
    return Hub(settings, sources=[QuietMarketing()], engine=engine)


def _owners(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        return {lease.duty: lease.owner for lease in list_leases(conn)}


def test_the_second_hub_idles_is_ready_and_shows_who_holds_each_duty(
    sqlite_engine: Engine, bus_url: str
) -> None:
    first, second = _hub(sqlite_engine, bus_url, "hub-1"), _hub(sqlite_engine, bus_url, "hub-2")
    first.start()
    second.start()
    try:
        assert _owners(sqlite_engine) == dict.fromkeys(DUTIES, "hub-1")
        assert {fence.duty for fence in first.leases.held()} == DUTIES
        assert second.leases.held() == []

        api = hub_app(sqlite_engine, auth=TEST_AUTH, readiness=second.readiness, instance=second.leases.owner)
        client = TestClient(api)
        ready = client.get("/ready")
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "ready" and body["instance"] == "hub-2"
        assert {duty: lease["owner"] for duty, lease in body["duties"].items()} == dict.fromkeys(
            DUTIES, "hub-1"
        )
        assert body["duties"]["relay"]["token"] == 1 and body["duties"]["relay"]["expires_at"]
        assert all(lease["live"] for lease in body["duties"].values())

        adapters = client.get("/admin/adapters", headers=bearer("operator")).json()
        [marketing] = adapters["items"]
        assert marketing["poll_lease"]["owner"] == "hub-1" and marketing["poll_lease"]["token"] == 1
        assert marketing["poll_lease"]["live"] is True
        one = client.get("/admin/adapters/marketing", headers=bearer("operator")).json()
        assert one["poll_lease"] == marketing["poll_lease"]
    finally:
        second.stop()
        first.stop()


def test_a_stopped_hub_releases_its_duties_and_the_other_takes_them_before_they_would_expire(
    sqlite_engine: Engine, bus_url: str
) -> None:
    # The clock stands still, so no lease can expire: only the release can hand the duties over. The other
    # instance is a bare keeper, so that its rounds run here only and not also in a hub's keeper thread.
    with clock.frozen_at(clock.system_now()):
        first = _hub(sqlite_engine, bus_url, "hub-1")
        second = LeaseKeeper(sqlite_engine, "hub-2", TTL_S, DUTIES)
        first.start()
        try:
            second.keep()
            assert second.held() == []
            first.stop()
            assert _owners(sqlite_engine) == dict.fromkeys(DUTIES, None)

            second.keep()

            with sqlite_engine.connect() as conn:
                assert {(lease.duty, lease.owner, lease.token) for lease in list_leases(conn)} == {
                    (duty, "hub-2", 2) for duty in DUTIES
                }
            assert {fence.duty for fence in second.held()} == DUTIES
        finally:
            first.stop()


def test_the_monitors_stopping_turns_true_once_its_lease_is_lost(sqlite_engine: Engine, bus_url: str) -> None:
    hub = _hub(sqlite_engine, bus_url, "hub-1")
    hub.start()
    try:
        stopping = hub.stopping_duty("monitor")
        assert not stopping()
        monitor = hub.leases.fence("monitor")
        assert monitor is not None

        hub.leases.lost(monitor)

        assert stopping()
        assert not hub.stopping_duty("relay")()
    finally:
        hub.stop()


def test_a_lease_past_its_expiry_by_the_servers_clock_is_shown_held_but_not_live(
    sqlite_engine: Engine,
) -> None:
    start = clock.system_now()
    with clock.frozen_at(start) as fixed:
        LeaseKeeper(sqlite_engine, "hub-1", TTL_S, ["relay", "poll:marketing"]).keep()
        api = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH, instance="hub-2"))
        assert api.get("/ready").json()["duties"]["relay"]["live"] is True

        fixed.advance(timedelta(seconds=TTL_S + 1))
        ready = api.get("/ready")
        adapters = api.get("/admin/adapters", headers=bearer("operator")).json()

    assert ready.status_code == 200
    assert ready.json()["duties"]["relay"]["owner"] == "hub-1"
    assert ready.json()["duties"]["relay"]["live"] is False
    [marketing] = adapters["items"]
    assert marketing["poll_lease"]["owner"] == "hub-1" and marketing["poll_lease"]["live"] is False


def test_an_api_without_a_hub_shows_no_duties_before_any_was_taken(sqlite_engine: Engine) -> None:
    body = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH, instance="api-only")).get("/ready").json()

    assert body == {"status": "ready", "checks": {}, "instance": "api-only", "duties": {}}
