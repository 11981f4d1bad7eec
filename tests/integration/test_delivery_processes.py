"""The hub process killed mid-batch, and a legacy source that goes away: nothing lost, nothing doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from adapters.marketing.source import MarketingSource
from ground.settings import Settings
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from store.audit import new_chain_key
from store.crypto import new_key
from store.schema import outbox
from tests.conftest import POSTGRES_URL
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, TEST_SECRET
from yekuo.hub import Hub

from .delivery_support import counts, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

APPLICATION_CHANGED = "cn.yekuo.application.changed.v1"


@pytest.fixture
def empty_hub(rabbitmq_url: str, postgres_engine: Engine) -> Iterator[Settings]:
    """Hub tables and queues declared and empty, so counts speak of this test only."""
    settings = Settings(bus_url=rabbitmq_url, db_url=POSTGRES_URL)
    hub = Hub(settings, sources=[], engine=postgres_engine)
    hub.prepare()
    hub.purge_queues()
    yield settings
    hub.purge_queues()


def _application_events_per_subject(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.subject, sa.func.count())
            .where(outbox.c.event_type == APPLICATION_CHANGED)
            .group_by(outbox.c.subject)
        ).all()
    return {subject: count for subject, count in rows}


# One deployment's keys: a hub restarted after a kill must open the personal data the killed one sealed.
_PII_KEYS = json.dumps({"test": new_key()})
_CHAIN_KEY = new_chain_key()


def _start_hub_process(settings: Settings, wsdl_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "YEKUO_BUS_URL": settings.bus_url,
        "YEKUO_DB_URL": settings.db_url,
        "YEKUO_MARKETING__WSDL_URL": wsdl_url,
        "YEKUO_MARKETING__PAGE_SIZE": "40",
        "YEKUO_API_PORT": "0",
        # `yekuo run` refuses to start without a token secret, a key for personal data and an audit key.
        "YEKUO_AUTH__JWT_SECRET": TEST_SECRET,
        "YEKUO_PII__KEYS": _PII_KEYS,
        "YEKUO_AUDIT__CHAIN_KEY": _CHAIN_KEY,
        "YEKUO_AUDIT__ANCHOR_PATH": str(log.parent / "audit-anchors.jsonl"),
    }
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "yekuo.cli", "run"], env=env, stdout=out, stderr=out)


def test_a_hub_killed_mid_batch_resumes_without_loss_or_double_effect(
    empty_hub: Settings, postgres_engine: Engine, tmp_path: Path
) -> None:
    total = 1_500
    world = generate_world(seed=23, customers=600, applications=total)
    log = tmp_path / "hub.log"
    with SimulatorServer(world) as simulator:
        first = _start_hub_process(empty_hub, simulator.wsdl_url, log)
        try:
            wait_for(lambda: counts(postgres_engine)["cases"] >= 300, 120, lambda: log.read_text()[-2000:])
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(30)
        killed_at = counts(postgres_engine)["cases"]
        assert killed_at < total, "the kill came too late to test anything"
        second = _start_hub_process(empty_hub, simulator.wsdl_url, log)
        try:
            wait_for(
                lambda: (c := counts(postgres_engine))["cases"] == total and c["unsent"] == 0,
                180,
                lambda: f"{counts(postgres_engine)}\n{log.read_text()[-2000:]}",
            )
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    final = counts(postgres_engine)
    assert final["cases"] == final["timeline"] == total
    per_subject = _application_events_per_subject(postgres_engine)
    assert len(per_subject) == total
    assert set(per_subject.values()) == {1}, "an application was ingested twice"


def test_a_source_outage_is_reported_and_the_poll_resumes_where_it_stopped(
    empty_hub: Settings, postgres_engine: Engine
) -> None:
    total = 400
    world = generate_world(seed=29, customers=200, applications=total)
    simulator = SimulatorServer(world).start()
    port = simulator.port
    hub = Hub(empty_hub, sources=[MarketingSource(simulator.wsdl_url, page_size=20)], engine=postgres_engine)
    api = TestClient(hub_app(postgres_engine, auth=TEST_AUTH, readiness=hub.readiness))
    hub.start()
    try:
        wait_for(lambda: counts(postgres_engine)["cases"] >= 60, 60, lambda: str(counts(postgres_engine)))
        simulator.stop()
        wait_for(lambda: not hub.health["poll:marketing"].ok, 30, lambda: str(hub.health))
        ready = api.get("/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["poll:marketing"] is False
        assert "marketing" in (hub.health["poll:marketing"].last_error or "")
        stalled = counts(postgres_engine)["cases"]
        assert stalled < total
        simulator = SimulatorServer(world, port=port).start()
        wait_for(
            lambda: (c := counts(postgres_engine))["cases"] == total and c["unsent"] == 0,
            120,
            lambda: str(counts(postgres_engine)),
        )
        wait_for(lambda: hub.health["poll:marketing"].ok, 30, lambda: str(hub.health))
        assert api.get("/ready").status_code == 200
    finally:
        hub.stop()
        simulator.stop()
    final = counts(postgres_engine)
    assert final["cases"] == final["timeline"] == total
    assert set(_application_events_per_subject(postgres_engine).values()) == {1}
