"""RabbitMQ-only behaviour of the amqp:// bus: confirm windows, nacks, flow control, lost connections."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pika
import pytest

from bus.port import Binding, ExchangeSpec, Message, QueueSpec, Topology
from bus.rabbitmq import RabbitMQBus
from ground.errors import BusError, BusUnavailableError, ConfigError, PublishNotConfirmedError
from tests.conftest import RABBITMQ_URL, require_service
from tests.support.relay import TcpRelay

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def names() -> Iterator[list[str]]:
    require_service("RabbitMQ", 5672)
    created: list[str] = []
    yield created
    admin = RabbitMQBus(RABBITMQ_URL)
    for name in created:
        admin.delete_queue(name)
        admin.delete_exchange(name)
    admin.close()


def declare_queue(names: list[str], bus: RabbitMQBus) -> tuple[str, str]:
    exchange, queue = f"unit.events.{uuid.uuid4().hex[:12]}", f"unit.queue.{uuid.uuid4().hex[:12]}"
    names += [exchange, queue]
    bus.declare(
        Topology(
            exchanges=(ExchangeSpec(exchange),),
            queues=(QueueSpec(queue, bindings=(Binding(exchange, "#"),)),),
        )
    )
    return exchange, queue


def messages(count: int) -> list[Message]:
    return [Message(body=b"%d" % i, routing_key="k", message_id=f"m-{i}") for i in range(count)]


def test_a_small_confirm_window_still_publishes_everything_in_order(names: list[str]) -> None:
    bus = RabbitMQBus(RABBITMQ_URL, confirm_window=3)
    exchange, queue = declare_queue(names, bus)

    bus.publish(exchange, messages(50))

    received: list[str] = []
    while len(received) < 50 and (batch := bus.fetch(queue, 50, 5.0)):
        received += [d.message.message_id for d in batch]
    assert received == [f"m-{i}" for i in range(50)]
    bus.close()


def test_a_broker_nack_is_publish_not_confirmed(names: list[str]) -> None:
    queue = f"unit.full.{uuid.uuid4().hex[:12]}"
    names.append(queue)
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    connection.channel().queue_declare(
        queue, durable=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
    )
    connection.close()
    bus = RabbitMQBus(RABBITMQ_URL)

    with pytest.raises(PublishNotConfirmedError, match="nacked 2 of 3"):
        bus.publish("", [Message(body=b"", routing_key=queue, message_id=f"m-{i}") for i in range(3)])

    assert bus.queue_depth(queue) == 1
    bus.close()


def test_publishing_waits_while_blocked_then_gives_up_and_recovers_once_unblocked(names: list[str]) -> None:
    bus = RabbitMQBus(RABBITMQ_URL, publish_timeout_s=0.3)
    exchange, queue = declare_queue(names, bus)
    # What pika hands the callback when RabbitMQ raises a resource alarm (connection.blocked).
    bus._on_blocked(None, SimpleNamespace(method=SimpleNamespace(reason="low on memory")))

    with pytest.raises(BusUnavailableError, match="blocked"):
        bus.publish(exchange, messages(1))
    assert bus.queue_depth(queue) == 0

    bus._on_unblocked(None, None)
    bus.publish(exchange, messages(1))
    assert bus.queue_depth(queue) == 1
    bus.close()


def test_a_lost_connection_is_bus_unavailable_and_stays_so(names: list[str]) -> None:
    proxy = TcpRelay(5672)
    bus = RabbitMQBus(RABBITMQ_URL.replace(":5672/", f":{proxy.port}/"))
    exchange, queue = declare_queue(names, bus)
    bus.publish(exchange, messages(1))
    (delivery,) = bus.fetch(queue, 1, 5.0)

    proxy.cut()

    with pytest.raises(BusUnavailableError, match="lost"):
        bus.publish(exchange, messages(1))
    with pytest.raises(BusUnavailableError, match="open a new bus"):
        bus.ack(delivery)
    bus.close()
    other = RabbitMQBus(RABBITMQ_URL)
    assert [d.redelivered for d in other.fetch(queue, 5, 5.0)] == [True]
    other.close()
    proxy.close()


def test_a_batch_confirmed_before_the_connection_was_lost_keeps_its_outcome(names: list[str]) -> None:
    proxy = TcpRelay(5672)
    bus = RabbitMQBus(RABBITMQ_URL.replace(":5672/", f":{proxy.port}/"))
    exchange, _queue = declare_queue(names, bus)
    earlier = bus.send(exchange, messages(20))
    # The broker confirms in order: once the later batch is settled, so is the earlier one.
    bus.send(exchange, [Message(body=b"", routing_key="k", message_id="later")]).wait()

    proxy.cut()
    with pytest.raises(BusUnavailableError, match="lost"):
        bus.publish(exchange, messages(1))

    earlier.wait()
    bus.close()
    proxy.close()


def test_confirms_that_arrived_in_time_count_when_waited_for_late(names: list[str]) -> None:
    bus = RabbitMQBus(RABBITMQ_URL, publish_timeout_s=0.3)
    exchange, queue = declare_queue(names, bus)
    # The publish channel is opened first, so the sending below only hands one message over.
    bus.publish(exchange, messages(1))

    confirmation = bus.send(exchange, [Message(body=b"", routing_key="k", message_id="late")])
    # Nobody reads the connection meanwhile: the broker's confirm waits in the socket past the deadline.
    time.sleep(1.0)

    confirmation.wait()
    assert bus.queue_depth(queue) == 2
    bus.close()


def test_a_bus_opened_again_after_its_node_died_connects_to_a_live_node(names: list[str]) -> None:
    # Two relays to the one broker stand for two nodes of a cluster; the first is cut and stays down.
    first, second = TcpRelay(5672), TcpRelay(5672)
    nodes = ",".join(RABBITMQ_URL.replace(":5672/", f":{relay.port}/") for relay in (first, second))
    bus = RabbitMQBus(nodes)
    exchange, queue = declare_queue(names, bus)
    bus.publish(exchange, messages(1))
    assert (first.accepted, second.accepted) == (1, 0), "the first node of the list that answers"

    first.cut(refuse=True)
    with pytest.raises(BusUnavailableError):
        bus.publish(exchange, messages(1))
    bus.close()

    again = RabbitMQBus(nodes)
    again.publish(exchange, messages(1))
    assert second.accepted == 1
    assert len(again.fetch(queue, 5, 5.0)) == 2
    again.close()
    first.close()
    second.close()


def test_growing_the_batch_size_does_not_mark_pushed_messages_redelivered(names: list[str]) -> None:
    bus = RabbitMQBus(RABBITMQ_URL)
    exchange, queue = declare_queue(names, bus)
    bus.publish(exchange, messages(6))

    first = bus.fetch(queue, 1, 5.0)
    rest = bus.fetch(queue, 5, 5.0)
    rest += bus.fetch(queue, 5, 1.0) if len(rest) < 5 else []

    assert [d.message.message_id for d in first + rest] == [f"m-{i}" for i in range(6)]
    assert not any(d.redelivered for d in first + rest)
    bus.close()


def test_a_consume_channel_closed_by_the_broker_is_replaced_and_its_deliveries_come_back(
    names: list[str],
) -> None:
    bus = RabbitMQBus(RABBITMQ_URL)
    exchange, queue = declare_queue(names, bus)
    bus.publish(exchange, messages(2))
    (held,) = bus.fetch(queue, 1, 5.0)
    # Acking a tag the broker never issued makes it close the channel (PRECONDITION_FAILED), as an
    # overdue ack (consumer_timeout) would.
    assert bus._consume is not None
    bus._consume._impl.basic_ack(9999)
    bus._connection.process_data_events(time_limit=1.0)

    deliveries = bus.fetch(queue, 2, 5.0)
    deliveries += bus.fetch(queue, 1, 5.0) if len(deliveries) < 2 else []

    assert [(d.message.message_id, d.redelivered) for d in deliveries] == [("m-0", True), ("m-1", False)]
    with pytest.raises(BusError, match="not unsettled"):
        bus.ack(held)
    bus.close()


def test_connection_settings_default_but_the_url_wins() -> None:
    require_service("RabbitMQ", 5672)
    bus = RabbitMQBus(RABBITMQ_URL + "?heartbeat=20", heartbeat_s=30, blocked_timeout_s=45.0)
    parameters = bus._connection._impl.params

    assert (parameters.heartbeat, parameters.blocked_connection_timeout) == (20, 45.0)
    bus.close()


def _declare_with_pika(queue: str, arguments: dict[str, object]) -> None:
    """Declare a queue directly, as an earlier release of the hub did (or check one: 406 if inequivalent)."""
    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        connection.channel().queue_declare(queue, durable=True, arguments=arguments)
    finally:
        connection.close()


def test_a_quorum_queue_is_declared_for_three_replicas(names: list[str]) -> None:
    bus = RabbitMQBus(RABBITMQ_URL)
    _exchange, queue = declare_queue(names, bus)
    bus.close()

    # The broker refuses a declaration that differs in any argument it keeps.
    _declare_with_pika(queue, {"x-queue-type": "quorum", "x-quorum-initial-group-size": 3})
    with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="x-quorum-initial-group-size"):
        _declare_with_pika(queue, {"x-queue-type": "quorum"})


def test_a_quorum_queue_from_a_release_without_group_size_is_declared_again_and_keeps_working(
    names: list[str],
) -> None:
    exchange, old, new = (f"unit.upgrade.{uuid.uuid4().hex[:12]}" for _ in range(3))
    names += [exchange, old, new]
    _declare_with_pika(old, {"x-queue-type": "quorum"})
    bus = RabbitMQBus(RABBITMQ_URL)

    # The queue from before comes first: its refusal must not cost the declarations after it.
    bus.declare(
        Topology(
            exchanges=(ExchangeSpec(exchange),),
            queues=(
                QueueSpec(old, bindings=(Binding(exchange, "#"),)),
                QueueSpec(new, bindings=(Binding(exchange, "#"),)),
            ),
        )
    )
    bus.declare(Topology(queues=(QueueSpec(old),)))
    bus.publish(exchange, messages(1))

    assert (bus.queue_depth(old), bus.queue_depth(new)) == (1, 1)
    bus.close()
    _declare_with_pika(old, {"x-queue-type": "quorum"})
    _declare_with_pika(new, {"x-queue-type": "quorum", "x-quorum-initial-group-size": 3})


def test_a_queue_from_before_that_differs_in_another_argument_is_still_refused(names: list[str]) -> None:
    queue = f"unit.upgrade.{uuid.uuid4().hex[:12]}"
    names.append(queue)
    _declare_with_pika(queue, {"x-queue-type": "quorum", "x-message-ttl": 1000})
    bus = RabbitMQBus(RABBITMQ_URL)

    with pytest.raises(ConfigError, match="x-message-ttl"):
        bus.declare(Topology(queues=(QueueSpec(queue, message_ttl_ms=2000),)))

    bus.declare(Topology(queues=(QueueSpec(queue, message_ttl_ms=1000),)))
    bus.close()


def test_a_quorum_group_size_below_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="quorum_group_size"):
        RabbitMQBus(RABBITMQ_URL, quorum_group_size=0)
