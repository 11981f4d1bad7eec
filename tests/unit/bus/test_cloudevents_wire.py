"""CloudEvents on AMQP: a structured body plus `cloudEvents:` properties, both read by the official SDK."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pydantic
import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from bus import open_bus
from bus.codec import cloudevent_attributes, cloudevent_properties, cloudevent_wire
from bus.memory import discard_broker, unique_url
from bus.port import Binding, Delivery, ExchangeSpec, QueueSpec, Topology
from bus.rabbitmq import RabbitMQBus
from canonical_model.envelope import CloudEvent
from ground.settings import Settings
from pipeline.outbox import OutboxRelay, stage_event
from pipeline.records import EventDraft
from store.schema import outbox
from tests.conftest import RABBITMQ_URL, require_service
from tests.support.cloudevents import sdk_reads

SHANGHAI_OPENED = "2026-03-02T08:00:00.250+08:00"


def envelope(**changes: Any) -> CloudEvent:
    fields: dict[str, Any] = {
        "id": "e-1",
        "source": "/marketing/application",
        "type": "cn.yekuo.application.changed.v1",
        "subject": "A0001",
        "time": SHANGHAI_OPENED,
        "dataschema": "urn:yekuo:schema:application.v1",
        "correlationid": "c-1",
        "sequence": 10,
        "data": {"application_no": "A0001"},
    }
    return CloudEvent.model_validate({**fields, **changes})


def test_sequence_is_a_string_on_the_wire_and_an_int_inside() -> None:
    event = envelope()
    wire = json.loads(event.model_dump_json())
    assert wire["sequence"] == "10"
    assert event.sequence == 10
    assert CloudEvent.model_validate_json(event.model_dump_json()) == event
    assert CloudEvent.model_json_schema()["properties"]["sequence"]["type"] == "string"


def test_ordering_compares_sequence_numbers_not_strings() -> None:
    # As strings "10" < "9"; read back from the wire the hub still puts 9 before 10.
    bodies = [envelope(id=f"e-{n}", sequence=n).model_dump_json() for n in (10, 9, 100)]
    ordered = sorted((CloudEvent.model_validate_json(body) for body in bodies), key=lambda e: e.sequence)
    assert [e.sequence for e in ordered] == [9, 10, 100]


@pytest.mark.parametrize("bad", ["007", "+7", "7.0", " 7", "0", "seven", ""])
def test_a_malformed_sequence_string_is_refused_and_a_good_one_beside_it_passes(bad: str) -> None:
    good = json.loads(envelope().model_dump_json())
    with pytest.raises(pydantic.ValidationError, match="sequence"):
        CloudEvent.model_validate_json(json.dumps({**good, "sequence": bad}))
    assert CloudEvent.model_validate_json(json.dumps(good)).sequence == 10


def test_time_is_always_utc_with_a_z() -> None:
    event = envelope()
    assert json.loads(event.model_dump_json())["time"] == "2026-03-02T00:00:00.250000Z"
    assert event.time == datetime(2026, 3, 2, 0, 0, 0, 250000, tzinfo=UTC)


def test_every_attribute_but_data_and_its_content_type_is_an_application_property() -> None:
    properties = cloudevent_properties(envelope())
    assert properties == {
        "cloudEvents:specversion": "1.0",
        "cloudEvents:id": "e-1",
        "cloudEvents:source": "/marketing/application",
        "cloudEvents:type": "cn.yekuo.application.changed.v1",
        "cloudEvents:subject": "A0001",
        "cloudEvents:time": "2026-03-02T00:00:00.250000Z",
        "cloudEvents:dataschema": "urn:yekuo:schema:application.v1",
        "cloudEvents:correlationid": "c-1",
        "cloudEvents:sequence": "10",
    }
    # Readers accept the underscore form of the binding too, and ignore other headers.
    assert cloudevent_attributes({"cloudEvents_id": "x", "x-attempt": 2}) == {"id": "x"}


def test_the_wire_body_and_properties_come_out_as_the_model_writes_them() -> None:
    event = envelope().model_copy(
        update={"data": {"name": "南阳", "load_kw": 1e16, "points": [0.1 + 0.2, None, True, {"q": 2.5e-7}]}}
    )
    body, properties = cloudevent_wire(event)
    assert body == event.model_dump_json().encode("utf-8")
    assert properties == cloudevent_properties(event)


def _draft(subject: str, exchange: str, time: datetime | None = None) -> EventDraft:
    return EventDraft(
        event_type="cn.yekuo.application.changed.v1",
        source="/marketing/application",
        subject=subject,
        dataschema="urn:yekuo:schema:application.v1",
        data={"application_no": subject},
        exchange=exchange,
        routing_key="application.changed.lv_residential",
        time=time,
    )


def relay_to(engine: Engine, url: str, exchange: str, queue: str, bus_factory: Any) -> list[Delivery]:
    """Stage a representative set (one with a +08:00 time), relay it, read it back from the queue."""
    opened = datetime.fromisoformat(SHANGHAI_OPENED)
    with engine.begin() as conn:
        for index in range(12):
            stage_event(
                conn,
                _draft(f"A{index % 3}", exchange, opened if index % 4 == 0 else None),
                correlation_id="c",
            )
    bus = bus_factory(url)
    try:
        relay = OutboxRelay(engine, bus)
        while relay.relay_batches():
            pass
        deliveries: list[Delivery] = []
        # A fetch returns what has arrived so far; a few rounds collect the whole set.
        for _ in range(20):
            batch = bus.fetch(queue, 50, 0.5)
            for delivery in batch:
                bus.ack(delivery)
            deliveries += batch
            if len(deliveries) >= 12:
                break
    finally:
        bus.close()
    assert len(deliveries) == 12
    return deliveries


def check_with_the_sdk(deliveries: list[Delivery]) -> None:
    for delivery in deliveries:
        structured, binary = sdk_reads(delivery)
        assert structured == binary
        assert isinstance(structured["sequence"], str) and structured["sequence"].isdigit()
        assert structured["time"].endswith("Z")
        assert structured["source"] == "urn:yekuo:hub:default/marketing/application"
        assert structured["id"] == delivery.message.message_id
    sequences = sorted(
        int(sdk_reads(d)[0]["sequence"]) for d in deliveries if sdk_reads(d)[0]["subject"] == "A0"
    )
    assert sequences == [1, 2, 3, 4]


def topology(exchange: str, queue: str) -> Topology:
    return Topology(
        exchanges=(ExchangeSpec(exchange),),
        queues=(QueueSpec(queue, bindings=(Binding(exchange, "application.#"),)),),
    )


@pytest.fixture
def memory_url() -> Iterator[str]:
    url = unique_url("cloudevents")
    bus = open_bus(url)
    bus.declare(topology("events", "tap"))
    bus.close()
    yield url
    discard_broker(url)


def test_the_memory_bus_carries_the_properties_the_sdk_reads(sqlite_engine: Engine, memory_url: str) -> None:
    check_with_the_sdk(relay_to(sqlite_engine, memory_url, "events", "tap", open_bus))


@pytest.mark.rabbitmq
def test_rabbitmq_and_the_memory_bus_deliver_the_same_messages_the_sdk_reads(
    sqlite_engine: Engine, memory_url: str
) -> None:
    require_service("RabbitMQ", 5672)
    suffix = uuid.uuid4().hex[:12]
    exchange, queue = f"unit.cloudevents.{suffix}", f"unit.cloudevents.tap.{suffix}"
    admin = RabbitMQBus(RABBITMQ_URL)
    try:
        admin.declare(topology(exchange, queue))
        from_rabbitmq = relay_to(sqlite_engine, RABBITMQ_URL, exchange, queue, RabbitMQBus)
    finally:
        admin.delete_queue(queue)
        admin.delete_exchange(exchange)
        admin.close()
    check_with_the_sdk(from_rabbitmq)
    # The same outbox rows relayed in-process: the same body and properties as from the broker.
    with sqlite_engine.begin() as conn:
        conn.execute(update(outbox).values(sent_at=None, exchange="events"))
    bus = open_bus(memory_url)
    try:
        relay = OutboxRelay(sqlite_engine, bus)
        while relay.relay_batches():
            pass
        in_process = bus.fetch("tap", 50, 0.2)
    finally:
        bus.close()

    def wire(delivery: Delivery) -> tuple[Any, ...]:
        m = delivery.message
        headers = {k: v for k, v in m.headers.items() if k.startswith("cloudEvents:")}
        return (m.body, headers, m.content_type, m.message_id, m.correlation_id, m.type)

    assert sorted(map(wire, in_process)) == sorted(map(wire, from_rabbitmq))


def test_the_published_source_is_absolute_and_names_the_instance() -> None:
    staged = envelope()
    published = staged.published_by("urn:yekuo:hub:prod-gd")
    assert published.source == "urn:yekuo:hub:prod-gd/marketing/application"
    assert urlsplit(published.source).scheme == "urn"
    assert published.producer == staged.producer == "/marketing/application"
    assert published.published_by("urn:yekuo:hub:other") == published


@pytest.mark.parametrize("bad", ["yekuo-hub", "/hub", "https://yekuo.example/hub", "urn:a b", "urn:x?y"])
def test_an_instance_uri_that_would_not_split_back_is_refused(bad: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="instance URI"):
        Settings(instance_uri=bad)
    assert Settings(instance_uri="urn:yekuo:hub:staging").instance_uri == "urn:yekuo:hub:staging"


def test_the_relay_publishes_under_its_instance_uri(sqlite_engine: Engine, memory_url: str) -> None:
    with sqlite_engine.begin() as conn:
        stage_event(conn, _draft("A1", "events"), correlation_id="c")
    bus = open_bus(memory_url)
    try:
        OutboxRelay(sqlite_engine, bus, instance_uri="urn:yekuo:hub:staging").relay_batches()
        (delivery,) = bus.fetch("tap", 5, 0.2)
    finally:
        bus.close()
    structured, binary = sdk_reads(delivery)
    assert structured["source"] == binary["source"] == "urn:yekuo:hub:staging/marketing/application"


def test_a_damaged_outbox_body_goes_out_as_it_is_and_the_events_behind_it_too(
    sqlite_engine: Engine, memory_url: str
) -> None:
    with sqlite_engine.begin() as conn:
        stage_event(conn, _draft("A1", "events"), correlation_id="c")
        stage_event(conn, _draft("A2", "events"), correlation_id="c")
        first = conn.execute(select(outbox.c.id).order_by(outbox.c.id)).scalars().first()
        conn.execute(update(outbox).where(outbox.c.id == first).values(body=b"not json"))
    bus = open_bus(memory_url)
    try:
        assert OutboxRelay(sqlite_engine, bus).relay_batches() == 2
        damaged, good = bus.fetch("tap", 5, 0.2)
    finally:
        bus.close()
    assert damaged.message.body == b"not json" and not cloudevent_attributes(damaged.message.headers)
    assert sdk_reads(good)[0]["subject"] == "A2"
