"""Delivery guarantees against the real broker and database: restarts, poison messages, unroutable events."""

from __future__ import annotations

import dataclasses
import subprocess
import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bus import open_bus
from bus.port import ExchangeSpec, Topology
from ground.errors import UnroutableError
from ground.settings import DeliverySettings, Settings
from pipeline.consumers import ConsumerSpec
from pipeline.decoded import DecodedEvent
from pipeline.outbox import OutboxRelay, stage_event
from store.parking import list_parked
from store.schema import outbox
from tests.conftest import POSTGRES_URL
from workflow.cases import handle_event
from yekuo.hub import Hub

from .delivery_support import application_draft, counts, stage_applications, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

WORKFLOW = ConsumerSpec("workflow", ("application.#", "customer.#"), handle_event)


def _settings(rabbitmq_url: str, delays_ms: list[int] | None = None) -> Settings:
    delivery = DeliverySettings(retry_delays_ms=delays_ms) if delays_ms else DeliverySettings()
    return Settings(bus_url=rabbitmq_url, db_url=POSTGRES_URL, delivery=delivery)


@pytest.fixture
def clean_queues(rabbitmq_url: str) -> Iterator[None]:
    """Leave no test message behind in the shared broker's hub queues."""
    yield
    bus = open_bus(rabbitmq_url)
    try:
        for queue in (WORKFLOW.queue, WORKFLOW.parking_queue):
            bus.purge(queue)
    finally:
        bus.close()


def _purge(url: str, queue: str) -> None:
    bus = open_bus(url)
    try:
        bus.purge(queue)
    finally:
        bus.close()


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


# 10,000 events through the full workflow on PostgreSQL take a few minutes on two cores.
@pytest.mark.timeout(900)
def test_a_broker_restart_mid_stream_loses_nothing_and_applies_nothing_twice(
    rabbitmq_url: str, postgres_engine: Engine, clean_queues: None
) -> None:
    total = 10_000
    hub = Hub(_settings(rabbitmq_url), sources=[], engine=postgres_engine, consumers=[WORKFLOW])
    hub.prepare()
    _purge(rabbitmq_url, WORKFLOW.queue)
    stage_applications(postgres_engine, total)
    hub.start()
    restarted = threading.Event()
    try:
        wait_for(lambda: counts(postgres_engine)["cases"] >= 1_500, 120, lambda: str(counts(postgres_engine)))
        _rabbitmqctl("stop_app")
        try:
            # While the broker is away the hub keeps its events in the outbox and backs off.
            wait_for(lambda: not all(h.ok for h in hub.health.values()), 30, lambda: str(hub.health))
        finally:
            _rabbitmqctl("start_app")
            _rabbitmqctl("await_startup")
            restarted.set()
        wait_for(
            lambda: (c := counts(postgres_engine))["cases"] == total and c["unsent"] == 0,
            300,
            lambda: str(counts(postgres_engine)),
        )
    finally:
        if not restarted.is_set():
            _rabbitmqctl("start_app")
        hub.stop()
    final = counts(postgres_engine)
    assert final == {"cases": total, "timeline": total, "inbox": total, "unsent": 0}


def test_a_poison_message_is_parked_after_its_retries_and_the_rest_flows(
    rabbitmq_url: str, postgres_engine: Engine, clean_queues: None
) -> None:
    def poisoned(conn: Connection, decoded: DecodedEvent) -> None:
        if decoded.event.subject == "POISON":
            raise ValueError("stage code 'ZZ' is not in the stage model")
        handle_event(conn, decoded)

    spec = ConsumerSpec("workflow", WORKFLOW.topics, poisoned)
    hub = Hub(_settings(rabbitmq_url, [200, 400]), sources=[], engine=postgres_engine, consumers=[spec])
    hub.prepare()
    _purge(rabbitmq_url, spec.queue)
    stage_applications(postgres_engine, 20, prefix="A")
    with postgres_engine.begin() as conn:
        stage_event(conn, application_draft("POISON"), correlation_id="poison")
    stage_applications(postgres_engine, 20, prefix="B")
    hub.start()
    try:

        def parked_rows() -> list[object]:
            with postgres_engine.connect() as conn:
                return list(list_parked(conn, "dead"))

        wait_for(
            lambda: len(parked_rows()) == 1 and counts(postgres_engine)["cases"] == 40,
            60,
            lambda: f"{counts(postgres_engine)}, parked {len(parked_rows())}",
        )
    finally:
        hub.stop()
    with postgres_engine.connect() as conn:
        [row] = list_parked(conn, "dead")
    assert row.reason_code == "retries_exhausted"
    assert "3 failed attempt(s)" in row.reason and "stage code 'ZZ'" in row.reason
    assert [f["attempt"] for f in row.payload["failures"]] == [1, 2, 3]
    assert row.payload["queue"] == "yekuo.workflow"
    assert '"subject":"POISON"' in row.payload["body"]


def test_an_unroutable_publish_is_an_error_and_the_event_stays_in_the_outbox(
    rabbitmq_url: str, postgres_engine: Engine
) -> None:
    # An exchange of its own: no queue bound elsewhere (a test tap, a bench) can route the key by chance.
    exchange = f"yekuo.test.unroutable.{uuid.uuid4().hex[:8]}"
    draft = dataclasses.replace(application_draft("LOST"), exchange=exchange, routing_key="nobody.binds.this")
    with postgres_engine.begin() as conn:
        event = stage_event(conn, draft, correlation_id="c")
    bus = open_bus(rabbitmq_url)
    try:
        bus.declare(Topology(exchanges=(ExchangeSpec(exchange),)))
        with pytest.raises(UnroutableError, match=r"nobody\.binds\.this"):
            OutboxRelay(postgres_engine, bus).relay_batches()
        bus.delete_exchange(exchange)
    finally:
        bus.close()
    with postgres_engine.connect() as conn:
        row = conn.execute(sa.select(outbox).where(outbox.c.event_id == event.id)).one()
    assert row.sent_at is None and row.attempts == 1 and "nobody.binds.this" in row.last_error
