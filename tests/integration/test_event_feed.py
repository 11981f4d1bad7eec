"""The event feed with real services: every event the pipeline publishes reaches it, in commit order.

- The marketing pipeline (simulator, ingest, outbox, relay, consumers) fills the feed with every event it
  publishes, the hub's own case events included, each once.
- On PostgreSQL and MariaDB a second writer waits for the first to commit, so feed ids appear in order.
- On RabbitMQ, the event_feed queue's bindings take every canonical routing key the hub publishes.
- A running hub carries an event from its outbox through the bus and the feed to a webhook receiver.
- Webhook delivery, retry, parking and replay behave the same on PostgreSQL and MariaDB.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pytest_httpserver import HTTPServer
from sqlalchemy.engine import Engine
from werkzeug import Request, Response

from api import events
from api.context import ApiContext, install_context
from bus import open_bus
from bus.memory import discard_broker, unique_url
from bus.port import Message
from ground.settings import PROJECT_ROOT, Settings, WebhookSettings
from pipeline.consumer import InboxConsumer
from pipeline.consumers import consumer_topology
from pipeline.outbox import stage_event
from pipeline.records import EventDraft
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from store.database import create_engine, create_schema, drop_schema
from store.event_feed import append_event, read_feed
from store.schema import outbox
from store.webhooks import (
    SubscriptionLimitError,
    count_subscriptions,
    create_subscription,
    delete_subscription,
    get_delivery,
    list_deliveries,
    replay_delivery,
)
from subscriptions.feed import FeedPruner
from subscriptions.settings import SubscriptionSettings
from subscriptions.webhooks import WebhookDispatcher
from tests.conftest import MARIADB_URL, POSTGRES_URL, require_service
from tests.integration.marketing_pipeline import fast_client, marketing_pipeline
from tests.unit.api.test_events import customer_event, grid_event
from yekuo.consumers import EVENT_FEED
from yekuo.hub import Hub

NOW = datetime(2026, 3, 2, tzinfo=UTC)
# pytest-httpserver listens on localhost, which webhook deliveries may reach only when allowed.
LOCAL_RECEIVER = WebhookSettings(allowed_hosts=["localhost"])


def test_every_event_the_pipeline_publishes_reaches_the_feed_once(sqlite_engine: Engine) -> None:
    world = generate_world(seed=7, customers=20, applications=30)
    with (
        SimulatorServer(world) as simulator,
        marketing_pipeline(
            sqlite_engine,
            fast_client(simulator.wsdl_url),
            consumers=("workflow", "case_feed", "marketing_writeback", "event_feed"),
        ) as pipeline,
    ):
        pipeline.sync()
        pipeline.deliver()  # the case events the workflow published while handling the first round
    with sqlite_engine.connect() as conn:
        published = set(conn.execute(sa.select(outbox.c.event_id)).scalars())
        entries = read_feed(conn, after=0, limit=10_000)
    assert [entry.id for entry in entries] == list(range(1, len(entries) + 1))
    assert {entry.event["id"] for entry in entries} == published
    types = {entry.event_type for entry in entries}
    assert {"cn.yekuo.application.changed.v1", "cn.yekuo.customer.changed.v1"} <= types
    assert any(event_type.startswith("cn.yekuo.case.") for event_type in types)

    app = FastAPI()
    install_context(app, ApiContext(sqlite_engine))
    app.include_router(events.router)
    with TestClient(app) as client:
        page = client.get("/v1/events", params={"type": "cn.yekuo.case", "limit": 1000}).json()
        after = client.get("/v1/events", params={"type": "cn.yekuo.case", "cursor": page["next_cursor"]})
    assert {item["event"]["id"] for item in page["items"]} == {
        entry.event["id"] for entry in entries if entry.event_type.startswith("cn.yekuo.case.")
    }
    assert (page["limit"], page["gap"]) == (1000, False)
    # Drained, the feed still hands out a cursor to poll again from.
    assert after.json() == {"items": [], "limit": 100, "next_cursor": page["next_cursor"], "gap": False}


def _engine(url: str, port: int, name: str) -> Iterator[Engine]:
    require_service(name, port)
    engine = create_engine(url)
    drop_schema(engine)
    create_schema(engine)
    yield engine
    drop_schema(engine)
    engine.dispose()


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def server_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "postgres":
        yield from _engine(POSTGRES_URL, 5432, "PostgreSQL")
    else:
        yield from _engine(MARIADB_URL, 3306, "MariaDB")


def test_a_second_writer_waits_for_the_first_so_ids_appear_in_commit_order(server_engine: Engine) -> None:
    first = server_engine.connect()
    transaction = first.begin()
    first_id = append_event(first, customer_event(1).model_dump(mode="json"), NOW)
    second_ids: list[int | None] = []

    def second_writer() -> None:
        with server_engine.begin() as conn:
            second_ids.append(append_event(conn, customer_event(2).model_dump(mode="json"), NOW))

    thread = threading.Thread(target=second_writer)
    thread.start()
    try:
        thread.join(timeout=1.0)
        # Holding the counter's row lock, the first writer keeps the second from taking an id.
        assert thread.is_alive()
        assert second_ids == []
        with server_engine.connect() as reader:
            assert read_feed(reader, after=0) == []
        transaction.commit()
        thread.join(timeout=30)
    finally:
        if transaction.is_active:
            transaction.rollback()
        first.close()
    assert not thread.is_alive()
    assert (first_id, second_ids) == (1, [2])
    with server_engine.connect() as reader:
        assert [entry.event["id"] for entry in read_feed(reader, after=0)] == ["evt-1", "evt-2"]


@pytest.mark.parametrize("owners_first", [True, False], ids=["known caller", "first subscription"])
def test_the_subscription_cap_holds_against_a_concurrent_creation(
    server_engine: Engine, owners_first: bool
) -> None:
    new = {
        "url": "https://platform.example/hooks",
        "event_types": [],
        "secret": "whsec_test",
        "include_pii": False,
        "description": None,
        "now": NOW,
    }
    if owners_first:
        with server_engine.begin() as conn:
            create_subscription(conn, owner="platform", max_per_owner=2, **new)
    first = server_engine.connect()
    transaction = first.begin()
    create_subscription(first, owner="platform", max_per_owner=2 if owners_first else 1, **new)
    outcome: list[str] = []

    def second_creation() -> None:
        try:
            with server_engine.begin() as conn:
                create_subscription(conn, owner="platform", max_per_owner=2 if owners_first else 1, **new)
            outcome.append("created")
        except SubscriptionLimitError:
            outcome.append("refused")

    thread = threading.Thread(target=second_creation)
    thread.start()
    try:
        thread.join(timeout=1.0)
        # The first creation holds the caller's lock: the second waits, then counts it.
        assert thread.is_alive()
        transaction.commit()
        thread.join(timeout=30)
    finally:
        if transaction.is_active:
            transaction.rollback()
        first.close()
    assert not thread.is_alive()
    assert outcome == ["refused"]
    with server_engine.begin() as conn:
        assert count_subscriptions(conn, "platform") == (2 if owners_first else 1)
        create_subscription(conn, owner="another-platform", max_per_owner=1, **new)  # its own cap


@pytest.mark.rabbitmq
def test_the_feed_queue_on_rabbitmq_takes_every_canonical_routing_key(
    rabbitmq_url: str, sqlite_engine: Engine
) -> None:
    bus = open_bus(rabbitmq_url)
    topology = consumer_topology(["yekuo.events"], [EVENT_FEED])
    try:
        bus.declare(topology)
        bus.purge(EVENT_FEED.queue)
        events = [customer_event(1), grid_event(2), customer_event(3, event_type="cn.yekuo.case.overdue.v1")]
        keys = ["customer.changed.residential", "grid.feeder.changed", "case.overdue.hv_single_source"]
        bus.publish(
            "yekuo.events",
            [
                Message(body=event.model_dump_json().encode(), routing_key=key, message_id=event.id)
                for event, key in zip(events, keys, strict=True)
            ],
        )
        consumer = InboxConsumer(
            sqlite_engine, bus, queue=EVENT_FEED.queue, name=EVENT_FEED.name, handler=EVENT_FEED.handler
        )
        handled = 0
        for _ in range(50):
            handled += consumer.consume_once(timeout_s=0.5)
            if handled >= len(events):
                break
    finally:
        for queue in topology.queues:
            bus.delete_queue(queue.name)
        bus.close()
    with sqlite_engine.connect() as conn:
        assert [entry.event["id"] for entry in read_feed(conn, after=0)] == ["evt-1", "grid-2", "evt-3"]


def test_a_running_hub_delivers_a_published_event_to_a_webhook(
    tmp_path: Path, sqlite_engine: Engine, httpserver: HTTPServer
) -> None:
    received: list[dict[str, Any]] = []
    arrived = threading.Event()

    def receive(request: Request) -> Response:
        received.append(json.loads(request.get_data()))
        arrived.set()
        return Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(receive)
    settings = Settings(
        bus_url=unique_url("feed"),
        db_url=str(sqlite_engine.url),
        config_dir=PROJECT_ROOT,
        webhooks=LOCAL_RECEIVER,
    )
    hub = Hub(settings, sources=[], engine=sqlite_engine)
    hub.prepare()
    with sqlite_engine.begin() as conn:
        create_subscription(
            conn,
            owner="platform",
            url=httpserver.url_for("/hook"),
            event_types=["cn.yekuo.customer"],
            secret="whsec_test",
            include_pii=False,
            description=None,
            now=NOW,
        )
        event = customer_event(1)
        staged = stage_event(
            conn,
            EventDraft(
                event_type=event.type,
                source=event.source,
                subject=event.subject,
                dataschema=event.dataschema,
                data=event.data,
                exchange=settings.exchange,
                routing_key="customer.changed.residential",
            ),
            correlation_id="corr-hub",
        )
    hub.start()
    try:
        assert arrived.wait(timeout=60), f"no delivery; loops: {hub.health}"
    finally:
        hub.stop()
        discard_broker(settings.bus_url)
    assert [body["id"] for body in received] == [staged.id]
    assert received[0]["data"]["identity_document"]["number"].endswith("1234")
    assert received[0]["data"]["identity_document"]["number"] != event.data["identity_document"]["number"]
    assert hub.health["write:subscriptions"].ok


def test_webhook_delivery_retry_and_replay_work_on_the_server_databases(
    server_engine: Engine, httpserver: HTTPServer
) -> None:
    statuses = {"evt-1": [500, 500]}
    delivered: list[str] = []

    def receive(request: Request) -> Response:
        event_id = request.headers["X-Yekuo-Event-Id"]
        script = statuses.get(event_id, [])
        status = script.pop(0) if script else 200
        if status == 200:
            delivered.append(event_id)
        return Response(status=status)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(receive)
    clock = {"now": NOW}
    settings = SubscriptionSettings(webhook_max_attempts=2, webhook_initial_backoff_s=5)
    dispatcher = WebhookDispatcher(
        server_engine, settings, webhooks=LOCAL_RECEIVER, clock=lambda: clock["now"], owner="hub-a"
    )
    try:
        with server_engine.begin() as conn:
            subscription = create_subscription(
                conn,
                owner="platform",
                url=httpserver.url_for("/hook"),
                event_types=[],
                secret="whsec_test",
                include_pii=False,
                description="portability",
                now=NOW,
            )
        for number in (1, 2):
            with server_engine.begin() as conn:
                append_event(conn, customer_event(number).model_dump(mode="json"), NOW)
        while dispatcher.step():
            pass
        clock["now"] += timedelta(seconds=5)
        while dispatcher.step():
            pass
        assert delivered == ["evt-2"]  # evt-1 parked after its two tries
        with server_engine.begin() as conn:
            [parked] = list_deliveries(conn, subscription["id"], status="parked", after=0, limit=10)
            assert replay_delivery(conn, subscription["id"], parked["id"])
        while dispatcher.step():
            pass
        assert delivered == ["evt-2", "evt-1"]
        with server_engine.connect() as conn:
            detail = get_delivery(conn, subscription["id"], parked["id"])
        assert detail is not None
        assert [entry["status_code"] for entry in detail["attempt_log"]] == [500, 500, 200]
        assert (
            FeedPruner(server_engine, SubscriptionSettings(feed_max_rows=1), clock=lambda: NOW).prune() == 1
        )
        with server_engine.begin() as conn:
            assert delete_subscription(conn, subscription["id"], owner="platform")
    finally:
        dispatcher.close()
