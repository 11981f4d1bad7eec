"""The in-process bus's own details: topic matching, the broker registry, threads and dead-letter corners."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bus import memory
from bus.memory import MemoryBus, open_memory_bus, topic_matches
from bus.port import Binding, Delivery, ExchangeSpec, Message, QueueSpec, Topology
from ground.errors import BusError, ConfigError

# Each row was checked against RabbitMQ 3.10's topic exchange.
TOPIC_TABLE = [
    ("a.b", "a.b", True),
    ("a.b", "a.b.", False),
    ("A", "a", False),
    ("a.*", "a.b", True),
    ("a.*", "a", False),
    ("a.*", "a.b.c", False),
    ("a.*", "a.", True),
    ("*", "", False),
    ("*", ".", False),
    ("*.*", "a.", True),
    ("*.*", ".a", True),
    ("*.*", "a..", False),
    ("a.#", "a", True),
    ("a.#", "a.b.c", True),
    ("#", "", True),
    ("#", "a.b", True),
    ("", "", True),
    ("", "a", False),
    ("#.b", "b", True),
    ("#.b", "a.b", True),
    ("#.b", "a.b.c", False),
    ("a.#.c", "a.c", True),
    ("a.#.c", "a.b.d.c", True),
    ("a.*.#", "a", False),
    ("a.*.#", "a.b", True),
    ("#.#", "", True),
    ("#.*", "", False),
    ("#.*", "a.b", True),
    ("a.#.#.b", "a.b", True),
    ("#.a.#", "a", True),
    ("#.a.#", "b.a.c.a", True),
]


@pytest.mark.parametrize(("pattern", "routing_key", "matches"), TOPIC_TABLE)
def test_topic_matching_follows_rabbitmq(pattern: str, routing_key: str, matches: bool) -> None:
    assert topic_matches(pattern, routing_key) is matches


@pytest.fixture
def url() -> Iterator[str]:
    url = memory.unique_url("unit")
    yield url
    memory.discard_broker(url)


def declare_one(bus: MemoryBus, queue: str = "q", **options: object) -> None:
    bus.declare(
        Topology(
            exchanges=(ExchangeSpec("events"),),
            queues=(QueueSpec(queue, bindings=(Binding("events", "#"),), **options),),  # type: ignore[arg-type]
        )
    )


def message(message_id: str, routing_key: str = "k") -> Message:
    return Message(body=b"{}", routing_key=routing_key, message_id=message_id)


def test_buses_on_one_url_share_a_broker_and_other_names_are_isolated(url: str) -> None:
    publisher = open_memory_bus(url)
    declare_one(publisher)
    publisher.publish("events", [message("m-1")])

    assert open_memory_bus(url + "/").queue_depth("q") == 1
    with pytest.raises(ConfigError, match="'q' does not exist"):
        open_memory_bus(memory.unique_url()).queue_depth("q")


def test_each_open_is_a_new_connection_with_its_own_delivery_tags(url: str) -> None:
    first, second = open_memory_bus(url), open_memory_bus(url)
    declare_one(first)
    first.publish("events", [message("m-1"), message("m-2")])

    (one,) = first.fetch("q", 1, 0)
    (two,) = second.fetch("q", 1, 0)

    assert (one.delivery_tag, two.delivery_tag) == (1, 1)
    with pytest.raises(BusError, match="not unsettled"):
        first.ack(two)


def test_reset_broker_forgets_everything_but_open_buses_keep_working(url: str) -> None:
    bus = open_memory_bus(url)
    declare_one(bus)
    bus.publish("events", [message("m-1")])
    (held,) = bus.fetch("q", 1, 0)

    memory.reset_broker(url)

    with pytest.raises(ConfigError):
        bus.queue_depth("q")
    bus.ack(held)
    declare_one(bus)
    assert bus.queue_depth("q") == 0


def test_discarded_broker_is_replaced_by_a_fresh_one(url: str) -> None:
    declare_one(open_memory_bus(url))

    memory.discard_broker(url)

    with pytest.raises(ConfigError):
        open_memory_bus(url).queue_depth("q")


def test_a_waiting_fetch_wakes_when_another_thread_publishes(url: str) -> None:
    declare_one(open_memory_bus(url))
    received: list[Delivery] = []
    waiting = threading.Event()

    def consume() -> None:
        bus = open_memory_bus(url)
        waiting.set()
        received.extend(bus.fetch("q", 5, 10.0))

    consumer = threading.Thread(target=consume)
    consumer.start()
    waiting.wait()
    open_memory_bus(url).publish("events", [message("m-1")])
    consumer.join(10.0)

    assert [d.message.message_id for d in received] == ["m-1"]


def test_delivered_headers_are_a_fresh_copy_every_time(url: str) -> None:
    bus = open_memory_bus(url)
    declare_one(bus, queue_type="classic")
    bus.publish("events", [Message(body=b"", routing_key="k", message_id="m-1", headers={"a": [1]})])
    (first,) = bus.fetch("q", 1, 0)
    first.message.headers["a"].append(2)

    bus.nack(first, requeue=True)
    (again,) = bus.fetch("q", 1, 0)

    assert again.message.headers == {"a": [1]}


def test_a_queue_expiring_into_itself_drops_the_message_like_rabbitmq(url: str) -> None:
    bus = open_memory_bus(url)
    declare_one(bus, dead_letter_exchange="events", message_ttl_ms=50)
    bus.declare(Topology(queues=(QueueSpec("idle"),)))
    bus.publish("events", [message("m-1")])

    # Waiting on another queue lets the broker expire the message (more than once, were it looping).
    assert bus.fetch("idle", 1, 0.3) == []
    assert bus.queue_depth("q") == 0


def test_dead_lettering_to_a_missing_exchange_drops_the_message(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    bus = open_memory_bus(url)
    declare_one(bus, dead_letter_exchange="gone")
    bus.publish("events", [message("m-1")])
    (delivery,) = bus.fetch("q", 1, 0)

    bus.nack(delivery, requeue=False)

    assert bus.queue_depth("q") == 0
    assert "exchange 'gone' does not exist" in caplog.text


def test_settling_after_the_queue_was_deleted_is_quiet(url: str) -> None:
    bus = open_memory_bus(url)
    declare_one(bus)
    bus.publish("events", [message("m-1"), message("m-2")])
    first, second = bus.fetch("q", 2, 0)

    bus.delete_queue("q")
    bus.nack(first, requeue=True)
    bus.ack(second)
    declare_one(bus)

    assert bus.queue_depth("q") == 0


def test_declare_checks_everything_before_declaring_anything(url: str) -> None:
    bus = open_memory_bus(url)

    with pytest.raises(ConfigError, match="'nowhere', which does not exist"):
        bus.declare(
            Topology(
                exchanges=(ExchangeSpec("events"),),
                queues=(QueueSpec("q", bindings=(Binding("nowhere", "#"),)),),
            )
        )

    bus.declare(Topology(exchanges=(ExchangeSpec("events", "fanout"),)))


def test_redeclaring_adds_bindings_and_keeps_messages(url: str) -> None:
    bus = open_memory_bus(url)
    declare_one(bus)
    bus.publish("events", [message("m-1")])

    bus.declare(Topology(queues=(QueueSpec("q", bindings=(Binding("events", "more.#"),)),)))

    assert bus.queue_depth("q") == 1


def test_fetch_needs_a_positive_batch_size(url: str) -> None:
    bus = open_memory_bus(url)
    declare_one(bus)

    with pytest.raises(ConfigError, match="max_messages must be at least 1, got 0"):
        bus.fetch("q", 0, 0)


def test_broker_key_refuses_other_schemes_and_options() -> None:
    assert memory.broker_key("memory://") == ""
    assert memory.broker_key("memory://demo/") == "demo"
    with pytest.raises(ConfigError, match="scheme 'amqp'"):
        memory.broker_key("amqp://localhost/")
    with pytest.raises(ConfigError, match="takes no options"):
        memory.broker_key("memory://demo?durable=1")
