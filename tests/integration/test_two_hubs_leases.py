"""Two hub instances on one PostgreSQL database and one RabbitMQ vhost: the poller and the relay run on one at
a time, so every source version is staged once and every outbox event published once, also when the first
instance stops mid-stream and hands its duties over."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bus import open_bus
from bus.port import Binding, ExchangeSpec, QueueSpec, Topology
from ground.settings import PROJECT_ROOT, ClusterSettings, Settings
from pipeline.config import load_hub_config
from pipeline.records import RawRecord, SourceBatch
from store.leases import list_leases
from store.schema import checkpoints, outbox
from tests.conftest import POSTGRES_URL
from tests.unit.mappings.samples import application_record
from yekuo.hub import Hub

from .delivery_support import wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

VERSIONS = 1_000
PAGE = 50


class SharedLegacySystem:
    """The one legacy system both instances poll: the application changes made so far (changes[0] of them,
    a list the test and both sources share), read in pages from a checkpoint. Each instance has its own
    source object, as two processes would."""

    name = "marketing"

    def __init__(self, changes: list[int]) -> None:
        self._changes = changes

    def poll(self, checkpoint: Mapping[str, Any] | None) -> SourceBatch:
        after = int((checkpoint or {}).get("after", 0))
        made = self._changes[0]
        upto = min(after + PAGE, made)
        records = [
            RawRecord("marketing", "application", no, application_record(APP_NO=no), {"key": no})
            for no in (f"TW{n:07d}" for n in range(after + 1, upto + 1))
        ]
        return SourceBatch(records, {"after": upto}, upto < made)

    def close(self) -> None:
        pass


def _hub(rabbitmq_url: str, engine: Engine, name: str, changes: list[int]) -> Hub:
    settings = Settings(
        bus_url=rabbitmq_url,
        db_url=POSTGRES_URL,
        config_dir=PROJECT_ROOT,
        cluster=ClusterSettings(instance_name=name, lease_ttl_s=15.0),
    )
    return Hub(settings, sources=[SharedLegacySystem(changes)], engine=engine, consumers=[])


@pytest.fixture
def tap(rabbitmq_url: str) -> Iterator[str]:
    """A queue of its own bound to every event exchange of the hub: it counts what reached the bus."""
    settings = Settings()
    exchanges = sorted(
        {settings.exchange, *(route.exchange for route in load_hub_config(PROJECT_ROOT).routes)}
    )
    queue = f"test.tap.{uuid.uuid4().hex[:8]}"
    bus = open_bus(rabbitmq_url, settings.bus_namespace)
    try:
        bus.declare(
            Topology(
                exchanges=tuple(ExchangeSpec(exchange) for exchange in exchanges),
                queues=(QueueSpec(queue, bindings=tuple(Binding(exchange, "#") for exchange in exchanges)),),
            )
        )
        yield queue
    finally:
        bus.delete_queue(queue)
        bus.close()


def _drain(rabbitmq_url: str, queue: str) -> Counter[str]:
    bus = open_bus(rabbitmq_url, Settings().bus_namespace)
    ids: Counter[str] = Counter()
    try:
        while deliveries := bus.fetch(queue, 500, 0.5):
            for delivery in deliveries:
                ids[delivery.message.message_id] += 1
                bus.ack(delivery)
    finally:
        bus.close()
    return ids


def _staged(engine: Engine) -> tuple[int, int, int]:
    """Outbox rows, distinct subjects and rows still unsent."""
    with engine.connect() as conn:
        rows, subjects, unsent = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.count(sa.distinct(outbox.c.subject)),
                sa.func.count(outbox.c.id).filter(outbox.c.sent_at.is_(None)),
            )
        ).one()
    return int(rows), int(subjects), int(unsent)


@pytest.mark.timeout(600)
def test_two_hubs_stage_each_version_once_and_publish_each_event_once_across_a_hand_over(
    rabbitmq_url: str, postgres_engine: Engine, tap: str
) -> None:
    half = VERSIONS // 2
    changes = [half]
    first = _hub(rabbitmq_url, postgres_engine, "hub-1", changes)
    second = _hub(rabbitmq_url, postgres_engine, "hub-2", changes)
    first.start()
    second.start()
    try:
        wait_for(
            lambda: _staged(postgres_engine) == (half, half, 0), 120, lambda: str(_staged(postgres_engine))
        )
        assert second.leases.held() == []
        first.stop()
        with postgres_engine.connect() as conn:
            released = {lease.duty: lease.owner for lease in list_leases(conn)}
        assert released["poll:marketing"] is None and released["relay"] is None

        changes[0] = VERSIONS
        second.leases.keep()
        wait_for(lambda: _staged(postgres_engine)[0] >= VERSIONS, 300, lambda: str(_staged(postgres_engine)))
        wait_for(lambda: _staged(postgres_engine)[2] == 0, 300, lambda: str(_staged(postgres_engine)))
    finally:
        second.stop()
        first.stop()

    assert _staged(postgres_engine) == (VERSIONS, VERSIONS, 0)
    published = _drain(rabbitmq_url, tap)
    with postgres_engine.connect() as conn:
        event_ids = set(conn.execute(sa.select(outbox.c.event_id)).scalars())
        fences = dict(conn.execute(sa.select(outbox.c.fence, sa.func.count()).group_by(outbox.c.fence)).all())
        checkpoint_fence = conn.execute(sa.select(checkpoints.c.fence)).scalar_one()
    assert set(published) == event_ids
    assert max(published.values()) == 1
    # Each instance marked what it published with its own token: 1 before the hand-over, 2 after it.
    assert fences == {1: half, 2: VERSIONS - half}
    assert checkpoint_fence == 2
