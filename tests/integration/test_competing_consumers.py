"""Competing consumers keep each case's effect order: two consumers, one queue, the cases one alone builds.

Two InboxConsumers in two threads, each with its own engine (its own connections, as two hub instances
have), consume the workflow queue holding the events of 300 applications shuffled and partly duplicated:
several versions per application, PMS stage reports, many applications archived after several versions,
and customers with several applications. Afterwards every case, timeline and stage visit equals what one
consumer builds from the same events in order, and no handler met a deadlock or a unique violation: the
databases raised no error, nothing was retried, parked or handed back to the broker.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bus import open_bus
from bus.memory import discard_broker
from bus.port import Binding, Bus, Delivery, ExchangeSpec, Message, QueueSpec, Topology
from canonical_model.envelope import CloudEvent
from canonical_model.registry import schema_uri
from ground import clock
from pipeline.consumer import InboxConsumer
from store.database import create_engine, create_schema, drop_schema
from store.schema import cases, stage_visits, timeline
from tests.conftest import MARIADB_URL, POSTGRES_URL, require_service
from yekuo.consumers import CONSUMERS

WORKFLOW = next(spec for spec in CONSUMERS if spec.name == "workflow")
EXCHANGE = "yekuo.events"
ARCHIVED_LATE = "2611030019231"
# Each flow's stages in the default stage model, without the terminal one.
FLOWS = {
    "lv_residential": ("acceptance", "energisation"),
    "lv_non_residential": ("acceptance", "energisation"),
    "hv_single_source": ("acceptance", "site_survey", "scheme_reply", "energisation"),
}


def _application_events(
    number: str, customer_no: str, customer_class: str, rng: random.Random
) -> list[CloudEvent]:
    # Whole seconds: MariaDB keeps no fractions in these columns, and the comparison is across databases.
    start = clock.now().replace(microsecond=0) - timedelta(days=120 - rng.randrange(30))
    document = {
        "application_no": number,
        "business_type": rng.choice(["new_connection", "capacity_increase"]),
        "customer_no": customer_no,
        "requested_capacity_kva": 630.0,
        "customer_class": customer_class,
        "importance_grade": "none",
        "channel": "online",
        "submitted_at": start.isoformat(),
        "org_no": "41401",
    }
    stages = list(FLOWS[customer_class])
    reached = (
        [*stages, "archived"]
        if number == ARCHIVED_LATE or rng.random() < 0.5
        else stages[: rng.randrange(1, len(stages) + 1)]
    )
    events: list[CloudEvent] = []
    at = start
    for stage in reached:
        versions = 2 if number == ARCHIVED_LATE or rng.random() < 0.3 else 1
        for version in range(versions):
            at += timedelta(hours=rng.randrange(2, 60))
            data = {
                **document,
                "stage": stage,
                "updated_at": at.isoformat(),
                "requested_capacity_kva": 630.0 + version,
            }
            events.append(
                _event(number, "/marketing/application", "changed", "application.v1", data, len(events) + 1)
            )
        if stage == "energisation" and customer_class.startswith("hv"):
            report = {"application_no": number, "stage": stage, "at": (at + timedelta(hours=1)).isoformat()}
            events.append(_event(number, "/pms/work_order", "stage_reported", "stage_report.v1", report, 1))
    return events


def _event(
    number: str, source: str, kind: str, schema: str, data: dict[str, Any], sequence: int
) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=source,
        type=f"cn.yekuo.application.{kind}.v1",
        subject=number,
        time=data.get("updated_at") or data["at"],
        dataschema=schema_uri(schema),
        correlationid=str(uuid.uuid4()),
        sequence=sequence,
        data=data,
    )


def _scenario(seed: int) -> list[CloudEvent]:
    rng = random.Random(seed)
    events: list[CloudEvent] = []
    for index in range(300):
        number = ARCHIVED_LATE if index == 0 else f"26110300{index:05d}"
        # Customers with several applications: their keys are shared between cases.
        customer_no = f"4130000{index % 40:03d}"
        customer_class = "lv_residential" if number == ARCHIVED_LATE else rng.choice(sorted(FLOWS))
        events += _application_events(number, customer_no, customer_class, rng)
    return events


class _CountingBus:
    """The consumer's bus, counting the deliveries the broker hands out again."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self.redelivered = 0

    def fetch(self, queue: str, max_messages: int, timeout_s: float) -> list[Delivery]:
        deliveries = self._bus.fetch(queue, max_messages, timeout_s)
        self.redelivered += sum(1 for delivery in deliveries if delivery.redelivered)
        return deliveries

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)


def _publish(bus_url: str, events: list[CloudEvent]) -> None:
    bus = open_bus(bus_url)
    try:
        bus.declare(
            Topology(
                exchanges=(ExchangeSpec(EXCHANGE),),
                queues=(QueueSpec(WORKFLOW.queue, bindings=(Binding(EXCHANGE, "application.#"),)),),
            )
        )
        messages = [
            Message(
                body=event.model_dump_json().encode("utf-8"),
                routing_key=f"application.{event.type.split('.')[3]}",
                message_id=event.id,
                type=event.type,
            )
            for event in events
        ]
        for start in range(0, len(messages), 500):
            bus.publish(EXCHANGE, messages[start : start + 500])
    finally:
        bus.close()


def _consume(url: str, events: list[CloudEvent], consumers: int) -> list[str]:
    """Consume the events with competing consumers, each on its own engine; every problem they met."""
    bus_url = f"memory://{uuid.uuid4()}"
    _publish(bus_url, events)
    problems: list[str] = []
    engines = [create_engine(url) for _ in range(consumers)]
    for engine in engines:
        sa.event.listen(
            engine, "handle_error", lambda context: problems.append(f"database: {context.original_exception}")
        )
    buses = [_CountingBus(open_bus(bus_url)) for _ in range(consumers)]
    workers = [
        InboxConsumer(engine, bus, queue=WORKFLOW.queue, name=WORKFLOW.name, handler=WORKFLOW.handler)
        for engine, bus in zip(engines, buses, strict=True)
    ]
    start = threading.Barrier(consumers)

    def run(worker: InboxConsumer) -> None:
        start.wait()
        while True:
            try:
                if (
                    worker.consume_once(max_messages=20, timeout_s=0.05) == 0
                    and worker.bus.queue_depth(WORKFLOW.queue) == 0
                ):
                    return
            except Exception as exc:  # counted: the test fails on any
                problems.append(f"consumer: {exc!r}")

    threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    try:
        assert not any(thread.is_alive() for thread in threads), "a consumer did not finish"
        for worker, bus in zip(workers, buses, strict=True):
            stats = worker.stats
            if stats.failed or stats.retried or stats.parked or stats.invalid:
                problems.append(f"consumer stats: {stats}")
            if bus.redelivered:
                problems.append(f"{bus.redelivered} deliveries handed out again")
        handled = sum(worker.stats.handled for worker in workers)
        assert handled == len({event.id for event in events}), "every distinct event is applied once"
    finally:
        for bus in buses:
            bus.close()
        for engine in engines:
            engine.dispose()
        discard_broker(bus_url)
    return problems


def _dump(engine: Engine) -> Any:
    with engine.connect() as conn:
        case_rows = conn.execute(sa.select(cases).order_by(cases.c.application_no)).mappings().all()
        entries = (
            conn.execute(sa.select(timeline).order_by(timeline.c.application_no, timeline.c.position))
            .mappings()
            .all()
        )
        visits = (
            conn.execute(
                sa.select(stage_visits).order_by(stage_visits.c.application_no, stage_visits.c.ordinal)
            )
            .mappings()
            .all()
        )
    return (
        [{k: v for k, v in row.items() if k != "updated_at"} for row in case_rows],
        [{k: v for k, v in row.items() if k != "id"} for row in entries],
        [{k: v for k, v in row.items() if k != "id"} for row in visits],
    )


@pytest.fixture(params=["postgresql", "mariadb", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "postgresql":
        require_service("PostgreSQL", 5432)
        yield POSTGRES_URL
    elif request.param == "mariadb":
        require_service("MariaDB", 3306)
        yield MARIADB_URL
    else:
        yield f"sqlite:///{tmp_path}/hub.db"


def _fresh(url: str) -> None:
    engine = create_engine(url)
    try:
        drop_schema(engine)
        create_schema(engine)
    finally:
        engine.dispose()


def test_two_consumers_of_one_queue_build_the_cases_one_consumer_builds(database_url: str) -> None:
    events = _scenario(seed=22)
    rng = random.Random(7)
    messy = events + rng.sample(events, len(events) // 4)
    rng.shuffle(messy)

    _fresh(database_url)
    assert _consume(database_url, events, consumers=1) == []
    engine = create_engine(database_url)
    try:
        expected = _dump(engine)
        _fresh(database_url)
        problems = _consume(database_url, messy, consumers=2)
        found = _dump(engine)
    finally:
        engine.dispose()

    assert problems == []
    archived = next(row for row in found[0] if row["application_no"] == ARCHIVED_LATE)
    assert (archived["status"], archived["stage"], archived["event_count"]) == ("closed", "archived", 6)
    assert len(found[0]) == 300
    assert found[0] == expected[0]
    assert found[1] == expected[1]
    assert found[2] == expected[2]
