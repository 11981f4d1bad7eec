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
from pydantic import BaseModel

from bus import open_bus
from bus.memory import discard_broker
from bus.port import Binding, Bus, Delivery, ExchangeSpec, Message, QueueSpec, Topology
from canonical_model.envelope import CloudEvent
from canonical_model.events import APPLICATION_CHANGED, PROJECTION_UPDATED
from canonical_model.projection import Projection, ProjectionUpdate
from canonical_model.registry import schema_uri
from feasibility.config import load_feasibility_config
from feasibility.consumer import ASSESSING_TYPES, FeasibilityHandler
from feasibility.consumer import TOPICS as FEASIBILITY_TOPICS
from feasibility.service import FeasibilityService
from ground import clock
from pipeline.consumer import InboxConsumer, KeyedHandler
from pipeline.consumers import ConsumerSpec
from pipeline.decoded import DecodedEvent
from store.database import create_engine, create_schema, drop_schema
from store.feasibility import feasibility_assessments
from store.schema import consistency_findings
from tests.conftest import MARIADB_URL, POSTGRES_URL, require_service
from tests.support.cases import dump_cases
from tests.unit.feasibility.builders import (
    LV_UPSTREAM_PEAKS_KW,
    NOW,
    ROOT,
    application,
    lv_upstream,
    reservations,
    store_grid,
    store_peak,
    transformer,
)
from tests.unit.workflow.events import customer_event
from tests.unit.workflow.records import transformer_event
from tests.unit.workflow.test_findings import projection_update
from workflow.grid import handle_grid_event
from yekuo.consumers import CONSUMERS

WORKFLOW = next(spec for spec in CONSUMERS if spec.name == "workflow")
# By the family of the event type (cn.yekuo.<family>...): the routing keys the hub publishes them with.
ROUTING = {
    "application": "application.changed",
    "customer": "customer.changed",
    "projection": "projection.grid.transformer",
}
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


def _publish(bus_url: str, events: list[CloudEvent], spec: ConsumerSpec) -> None:
    bus = open_bus(bus_url)
    try:
        bus.declare(
            Topology(
                exchanges=(ExchangeSpec(EXCHANGE),),
                queues=(
                    QueueSpec(spec.queue, bindings=tuple(Binding(EXCHANGE, topic) for topic in spec.topics)),
                ),
            )
        )
        messages = [
            Message(
                body=event.model_dump_json().encode("utf-8"),
                routing_key=ROUTING[event.type.split(".")[2]],
                message_id=event.id,
                type=event.type,
            )
            for event in events
        ]
        for start in range(0, len(messages), 500):
            bus.publish(EXCHANGE, messages[start : start + 500])
    finally:
        bus.close()


def _consume(url: str, events: list[CloudEvent], consumers: int, spec: ConsumerSpec = WORKFLOW) -> list[str]:
    """Consume the events with competing consumers, each on its own engine; every problem they met."""
    bus_url = f"memory://{uuid.uuid4()}"
    _publish(bus_url, events, spec)
    problems: list[str] = []
    engines = [create_engine(url) for _ in range(consumers)]
    for engine in engines:
        sa.event.listen(
            engine, "handle_error", lambda context: problems.append(f"database: {context.original_exception}")
        )
    buses = [_CountingBus(open_bus(bus_url)) for _ in range(consumers)]
    workers = [
        InboxConsumer(engine, bus, queue=spec.queue, name=spec.name, handler=spec.handler)
        for engine, bus in zip(engines, buses, strict=True)
    ]
    start = threading.Barrier(consumers)

    def run(worker: InboxConsumer) -> None:
        start.wait()
        while True:
            try:
                if (
                    worker.consume_once(max_messages=20, timeout_s=0.05) == 0
                    and worker.bus.queue_depth(spec.queue) == 0
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


def _store_grid(url: str) -> None:
    """PMS transformers for ten of the twelve districts the customers of _changes name."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for index in range(1, 11):
                linked = transformer_event(f"TG00000{index:02d}", transformer_id=f"PB{index}")
                handle_grid_event(conn, DecodedEvent(linked))
    finally:
        engine.dispose()


def _changes(rng: random.Random) -> list[CloudEvent]:
    """Customer records in two versions and transformers' projection notices, beside the applications.

    Competing consumers meet customer keys, case keys and the cases a transformer change locks; the
    districts without a transformer give findings for the transformer changes to re-check.
    """
    changes: list[CloudEvent] = []
    for index in range(40):
        for version in (1, 2):
            changes.append(
                customer_event(
                    f"4130000{index:03d}",
                    version,
                    category="general_commercial",
                    industry_code="H6210",
                    transformer_district_id=f"TG00000{(index + version) % 12:02d}",
                    contract_capacity_kva=630.0,
                    supply_voltage_kv=10.0,
                    urban_rural="urban",
                )
            )
    return changes + [projection_update(f"PB{rng.randrange(1, 11)}") for _ in range(30)]


def test_two_consumers_of_one_queue_build_the_cases_one_consumer_builds(database_url: str) -> None:
    events = _scenario(seed=22)
    rng = random.Random(7)
    messy = events + rng.sample(events, len(events) // 4)
    rng.shuffle(messy)

    _fresh(database_url)
    assert _consume(database_url, events, consumers=1) == []
    engine = create_engine(database_url)
    try:
        expected = dump_cases(engine)
        _fresh(database_url)
        problems = _consume(database_url, messy, consumers=2)
        found = dump_cases(engine)
    finally:
        engine.dispose()

    assert problems == []
    archived = next(row for row in found[0] if row["application_no"] == ARCHIVED_LATE)
    assert (archived["status"], archived["stage"], archived["event_count"]) == ("closed", "archived", 6)
    assert len(found[0]) == 300
    assert found[0] == expected[0]
    assert found[1] == expected[1]
    assert found[2] == expected[2]


def test_customer_and_transformer_changes_beside_the_applications_keep_the_cases(database_url: str) -> None:
    rng = random.Random(11)
    events = _scenario(seed=23)[:400] + _changes(rng)
    messy = events + rng.sample(events, 80)
    rng.shuffle(messy)

    _fresh(database_url)
    _store_grid(database_url)
    assert _consume(database_url, events, consumers=1) == []
    engine = create_engine(database_url)
    try:
        expected = dump_cases(engine)
        _fresh(database_url)
        _store_grid(database_url)
        problems = _consume(database_url, messy, consumers=2)
        found = dump_cases(engine)
        with engine.connect() as conn:
            findings = conn.execute(sa.select(sa.func.count()).select_from(consistency_findings)).scalar_one()
    finally:
        engine.dispose()

    assert problems == []
    assert found == expected
    assert findings > 0, "the customers of districts without a transformer are found"


def test_two_feasibility_consumers_never_promise_more_than_the_headroom() -> None:
    require_service("PostgreSQL", 5432)
    rng = random.Random(5)
    handler = FeasibilityHandler(FeasibilityService(load_feasibility_config(ROOT), clock=lambda: NOW))
    spec = ConsumerSpec(
        "feasibility", FEASIBILITY_TOPICS, KeyedHandler(handler, handler.keys, alone_types=ASSESSING_TYPES)
    )
    # 30 applications of 10 kVA from ten customers, the customers' records, and T1's new load profiles.
    events = [
        _feasibility_event(
            application(f"A{index:02d}", 10).model_copy(update={"customer_no": f"C{index % 10}"}),
            APPLICATION_CHANGED,
            "application.v1",
        )
        for index in range(30)
    ]
    events += [
        customer_event(
            f"C{index}", version, contract_capacity_kva=50.0 + version, transformer_district_id="TG1"
        )
        for index in range(10)
        for version in (1, 2)
    ]
    profile = ProjectionUpdate(
        projection=Projection.LOADS,
        equipment_id="T1",
        source_event_id="load-T1",
        source_event_type="cn.yekuo.load.profile.recorded.v1",
    )
    events += [_feasibility_event(profile, PROJECTION_UPDATED, "projection_update.v1") for _ in range(8)]
    messy = events + rng.sample(events, 12)
    rng.shuffle(messy)

    alone_problems, alone_held, _ = _feasibility_run(events, 1, spec)
    problems, held, assessed = _feasibility_run(messy, 2, spec)

    assert alone_problems == [] and problems == []
    assert assessed == 30
    # All ask the same: one consumer fills T1's headroom with as many as fit, and two never promise more.
    assert 0 < _on_t1(held) <= _on_t1(alone_held)


def _feasibility_run(
    events: list[CloudEvent], consumers: int, spec: ConsumerSpec
) -> tuple[list[str], list[tuple[str, str, float]], int]:
    """Consume on a fresh database with T1 (400 kVA, 150 kW peak): problems, reservations, assessments."""
    _fresh(POSTGRES_URL)
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.begin() as conn:
            store_grid(conn, *lv_upstream(), transformer("T1", "F1", "S1", 50, rated_kva=400))
            store_peak(conn, "T1", 150)
            for equipment_id, peak_kw in LV_UPSTREAM_PEAKS_KW.items():
                store_peak(conn, equipment_id, peak_kw)
        with clock.frozen_at(NOW):
            problems = _consume(POSTGRES_URL, events, consumers=consumers, spec=spec)
        with engine.connect() as conn:
            held = reservations(conn)
            assessed = conn.execute(
                sa.select(sa.func.count()).select_from(feasibility_assessments)
            ).scalar_one()
    finally:
        engine.dispose()
    return problems, held, assessed


def _on_t1(held: list[tuple[str, str, float]]) -> float:
    return sum(kva for _, equipment_id, kva in held if equipment_id == "T1")


def _feasibility_event(document: BaseModel, event_type: str, schema: str) -> CloudEvent:
    subject = getattr(document, "application_no", None) or getattr(document, "equipment_id", "")
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/test",
        type=event_type,
        subject=subject,
        time=NOW,
        dataschema=schema_uri(schema),
        correlationid=str(uuid.uuid4()),
        sequence=1,
        data=document.model_dump(mode="json"),
    )
