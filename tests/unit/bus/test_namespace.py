"""Bus namespaces: two deployments on one broker get their own exchanges and queues and share nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pydantic
import pytest

from bus import open_bus
from bus.memory import discard_broker, unique_url
from bus.namespace import broker_name
from bus.port import Binding, ExchangeSpec, Message, QueueSpec, Topology
from bus.retry import RetryPolicy, next_hop
from ground.errors import ConfigError
from ground.settings import Settings
from pipeline.consumers import consumer_topology
from tests.conftest import RABBITMQ_URL, require_service
from yekuo.consumers import CONSUMERS

WORKFLOW = next(spec for spec in CONSUMERS if spec.name == "workflow")
POLICY = RetryPolicy(delays_ms=(20,))


@pytest.fixture
def url() -> Iterator[str]:
    shared = unique_url("namespaces")
    for namespace in ("staging", "production"):
        bus = open_bus(shared, namespace)
        bus.declare(consumer_topology(["yekuo.events"], CONSUMERS, POLICY))
        bus.close()
    yield shared
    discard_broker(shared)


def event(message_id: str) -> Message:
    return Message(body=b"{}", routing_key="application.changed.lv_residential", message_id=message_id)


def test_the_default_namespace_keeps_the_hub_s_names() -> None:
    assert broker_name("yekuo", "yekuo.workflow") == "yekuo.workflow"
    assert broker_name("staging", "yekuo.workflow") == "staging.workflow"
    assert broker_name("staging", "yekuo.workflow.parking") == "staging.workflow.parking"
    assert broker_name("staging", "yekuo.retry") == "staging.retry"
    assert broker_name("staging", "events") == "staging.events"


def test_two_namespaces_on_one_broker_do_not_see_each_other_s_messages(url: str) -> None:
    staging, production = open_bus(url, "staging"), open_bus(url, "production")
    try:
        staging.publish("yekuo.events", [event("s-1"), event("s-2")])
        production.publish("yekuo.events", [event("p-1")])
        from_staging = staging.fetch(WORKFLOW.queue, 10, 0.1)
        from_production = production.fetch(WORKFLOW.queue, 10, 0.1)
        assert [d.message.message_id for d in from_staging] == ["s-1", "s-2"]
        assert [d.message.message_id for d in from_production] == ["p-1"]
        # The hub keeps its own names: a delivery names the queue and exchange it asked for.
        assert {(d.queue, d.exchange) for d in from_staging} == {(WORKFLOW.queue, "yekuo.events")}
        for delivery in (*from_staging, *from_production):
            (staging if delivery.message.message_id.startswith("s") else production).ack(delivery)
        assert staging.queue_depth(WORKFLOW.queue) == production.queue_depth(WORKFLOW.queue) == 0
    finally:
        staging.close()
        production.close()


def test_on_the_broker_the_names_are_the_namespace_s(url: str) -> None:
    staging, raw = open_bus(url, "staging"), open_bus(url)
    try:
        staging.publish("yekuo.events", [event("s-1")])
        assert raw.queue_depth("staging.workflow") == 1
        assert raw.queue_depth("production.workflow") == 0
        with pytest.raises(ConfigError):
            raw.queue_depth("yekuo.workflow")
    finally:
        staging.close()
        raw.close()


def test_a_parked_message_stays_in_its_namespace(url: str) -> None:
    staging, production = open_bus(url, "staging"), open_bus(url, "production")
    try:
        staging.publish("yekuo.events", [event("s-1")])
        delivery = staging.fetch(WORKFLOW.queue, 1, 0.1)[0]
        # One retry (its delay queue dead-letters the copy back), then the parking lot.
        for attempt in range(2):
            exchange, copy, parks = next_hop(delivery, RuntimeError("handler failed"), POLICY)
            staging.publish(exchange, [copy])
            staging.ack(delivery)
            assert parks is (attempt == 1)
            if not parks:
                delivery = staging.fetch(WORKFLOW.queue, 1, 2.0)[0]
                assert delivery.message.message_id == "s-1"
        assert staging.queue_depth(WORKFLOW.parking_queue) == 1
        assert production.queue_depth(WORKFLOW.parking_queue) == 0
    finally:
        staging.close()
        production.close()


def test_a_bad_namespace_is_refused_before_connecting() -> None:
    with pytest.raises(ConfigError, match="lower-case word"):
        open_bus("amqp://guest:guest@127.0.0.1:1/", "Staging.Events")
    with pytest.raises(pydantic.ValidationError, match="lower-case word"):
        Settings(bus_namespace="a.b")
    assert Settings(bus_namespace="staging").bus_namespace == "staging"
    assert Settings().bus_namespace == "yekuo"


@pytest.mark.rabbitmq
def test_two_namespaces_on_rabbitmq_do_not_see_each_other_s_messages() -> None:
    require_service("RabbitMQ", 5672)
    namespaces = [f"unit-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    topology = Topology(
        exchanges=(ExchangeSpec("yekuo.events"),),
        queues=(QueueSpec(WORKFLOW.queue, bindings=(Binding("yekuo.events", "application.#"),)),),
    )
    buses = [open_bus(RABBITMQ_URL, namespace) for namespace in namespaces]
    try:
        for bus, namespace in zip(buses, namespaces, strict=True):
            bus.declare(topology)
            bus.publish("yekuo.events", [event(f"{namespace}-1")])
        for bus, namespace in zip(buses, namespaces, strict=True):
            deliveries = bus.fetch(WORKFLOW.queue, 10, 2.0)
            assert [d.message.message_id for d in deliveries] == [f"{namespace}-1"]
            assert deliveries[0].exchange == "yekuo.events"
            bus.ack(deliveries[0])
            assert bus.queue_depth(WORKFLOW.queue) == 0
    finally:
        for bus in buses:
            bus.delete_queue(WORKFLOW.queue)
            bus.delete_exchange("yekuo.events")
            bus.close()
