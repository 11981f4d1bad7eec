"""The running hub tracks stage progress from the marketing simulator end to end: SOAP poll, mapping of
STATUS_CODE to stages, case timelines, case events routed to the case feed, and the monitor loop."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from adapters.marketing.source import MarketingSource
from ground.settings import Settings
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import MarketingWorld, status_flow
from store.database import create_engine
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer
from workflow.caselog import case_feed_of
from yekuo.hub import Hub

STAGE = {
    "01": "acceptance",
    "02": "site_survey",
    "03": "scheme_reply",
    "04": "external_works",
    "05": "design_review",
    "06": "mid_inspection",
    "07": "completion_inspection",
    "08": "contract",
    "09": "energisation",
    "10": "archived",
}


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_stage_changes_in_the_marketing_system_show_in_the_case_timeline(tmp_path: Path) -> None:
    world = generate_world(seed=3, customers=30, applications=40)
    settings = Settings(bus_url=f"memory://{uuid.uuid4()}", db_url=f"sqlite:///{tmp_path}/hub.db")
    engine = create_engine(settings.db_url)
    with SimulatorServer(world) as simulator:
        hub = Hub(settings, sources=[MarketingSource(simulator.wsdl_url, page_size=25)], engine=engine)
        hub.start()
        try:
            _wait(lambda: hub.status().cases == 40 and hub.status().pending == 0, "the first sync")
            moving = [row for row in world.all_applications() if row["STATUS_CODE"] != status_flow(row)[-1]][
                :5
            ]
            assert len(moving) == 5
            for row in moving:
                world.advance(row["APP_NO"])
            client = TestClient(hub_app(engine, auth=TEST_AUTH), headers=bearer("viewer"))

            def moved() -> bool:
                stages = [client.get(f"/v1/applications/{row['APP_NO']}").json()["stage"] for row in moving]
                expected = [_stage_now(world, row["APP_NO"]) for row in moving]
                return stages == expected and hub.status().pending == 0

            _wait(moved, "the stage changes")
            _wait(lambda: all(len(_feed(engine, row["APP_NO"])) == 2 for row in moving), "the case feed")
            assert hub.health["monitor"].ok
        finally:
            hub.stop()
    for row in moving:
        timeline = client.get(f"/v1/applications/{row['APP_NO']}/timeline").json()["timeline"]
        assert [entry["kind"] for entry in timeline if entry["kind"] != "assigned"][-1] == "forward"
        assert timeline[-1]["source_system"] in ("marketing", "hub")
        assert [item["data"]["stage_to"] for item in _feed(engine, row["APP_NO"])] == [
            STAGE[row["STATUS_CODE"]],
            _stage_now(world, row["APP_NO"]),
        ]
    engine.dispose()


def _stage_now(world: MarketingWorld, application_no: str) -> str:
    row = world.application(application_no)
    assert row is not None
    return STAGE[row["STATUS_CODE"]]


def _feed(engine: Engine, application_no: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            item for item in case_feed_of(conn, application_no) if item["type"].endswith("stage_changed.v1")
        ]
