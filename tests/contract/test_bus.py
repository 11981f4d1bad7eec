"""What every Bus must do, checked the same way on the in-process bus and on RabbitMQ."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import pytest

from bus.codec import MessageEncodingError
from bus.port import Binding, Bus, Delivery, ExchangeSpec, Message, QueueSpec, Topology
from ground.errors import BusError, BusUnavailableError, ConfigError, UnroutableError
from tests.contract.conftest import BusHarness

QueueType = Literal["quorum", "classic"]


def message(routing_key: str, message_id: str, body: bytes = b"{}", **properties: Any) -> Message:
    return Message(body=body, routing_key=routing_key, message_id=message_id, **properties)


def fetch_exactly(
    bus: Bus, queue: str, count: int, *, batch: int = 50, timeout_s: float = 5.0
) -> list[Delivery]:
    """Fetch until `count` deliveries arrived (or the time is up), then check no more are waiting."""
    deliveries: list[Delivery] = []
    deadline = time.monotonic() + timeout_s
    while len(deliveries) < count and time.monotonic() < deadline:
        deliveries += bus.fetch(queue, min(batch, count - len(deliveries)), deadline - time.monotonic())
    assert len(deliveries) == count
    return deliveries


def ids(deliveries: list[Delivery]) -> list[str]:
    return [delivery.message.message_id for delivery in deliveries]


def single_queue(
    harness: BusHarness, *, pattern: str = "#", queue_type: QueueType = "quorum", **queue_options: Any
) -> tuple[str, str]:
    exchange, queue = harness.name("events"), harness.name("queue")
    harness.declare(
        Topology(
            exchanges=(ExchangeSpec(exchange),),
            queues=(
                QueueSpec(
                    queue, bindings=(Binding(exchange, pattern),), queue_type=queue_type, **queue_options
                ),
            ),
        )
    )
    return exchange, queue


def test_body_and_every_property_survive_the_round_trip(bus_factory: BusHarness) -> None:
    exchange, queue = single_queue(bus_factory)
    full = message(
        "cn.yekuo.application.changed.v1",
        "申请-0001",
        body='{"申请编号": "YK-2024-0001", "户名": "张三"}'.encode() + bytes(range(256)),
        headers={
            "text": "业扩报装",
            "int": 42,
            "negative": -7,
            "big": 2**40,
            "flag": True,
            "nothing": None,
            "binary": b"\x00\xff\xfe",
            "list": [1, "二", [False]],
            "table": {"户号": "0101", "nested": {"depth": 2}},
            "amount": Decimal("12.5"),
            "at": datetime(2024, 5, 1, 8, 30, 15, tzinfo=UTC),
        },
        content_type="application/cloudevents+json; charset=utf-8",
        correlation_id="关联-7f3a",
        type="cn.yekuo.application.changed.v1",
    )
    bare = message("bare", "m-2", body=b"")
    bus = bus_factory.open()
    bus.publish(exchange, [full, bare])

    first, second = fetch_exactly(bus, queue, 2)

    assert first.message == full
    assert second.message == bare
    assert second.message.headers == {}
    assert (first.exchange, first.queue, first.redelivered, first.delivery_count) == (
        exchange,
        queue,
        False,
        0,
    )


def test_headers_are_copied_at_publish(bus_factory: BusHarness) -> None:
    exchange, queue = single_queue(bus_factory)
    headers: dict[str, Any] = {"stage": "submitted", "list": [1]}
    bus = bus_factory.open()
    bus.publish(exchange, [message("k", "m-1", headers=headers)])
    headers["stage"] = "changed"
    headers["list"].append(2)

    (delivery,) = fetch_exactly(bus, queue, 1)

    assert delivery.message.headers == {"stage": "submitted", "list": [1]}


def test_header_the_wire_cannot_carry_fails_the_whole_batch_before_sending(bus_factory: BusHarness) -> None:
    exchange, queue = single_queue(bus_factory)
    bus = bus_factory.open()

    with pytest.raises(MessageEncodingError, match="float"):
        bus.publish(exchange, [message("k", "good"), message("k", "bad", headers={"ratio": 0.5})])

    assert bus.queue_depth(queue) == 0


def test_topic_star_matches_one_word_and_hash_any_number(bus_factory: BusHarness) -> None:
    exchange, star, hash_ = bus_factory.name("events"), bus_factory.name("star"), bus_factory.name("hash")
    bus_factory.declare(
        Topology(
            exchanges=(ExchangeSpec(exchange),),
            queues=(
                QueueSpec(star, bindings=(Binding(exchange, "app.*.changed"),)),
                QueueSpec(hash_, bindings=(Binding(exchange, "app.#"),)),
            ),
        )
    )
    keys = ["app.customer.changed", "app.changed", "app.a.b.changed", "app", "grid.feeder.changed"]
    bus = bus_factory.open()
    with pytest.raises(UnroutableError, match=r"grid\.feeder\.changed") as raised:
        bus.publish(exchange, [message(key, key) for key in keys])
    assert raised.value.message_ids == ("grid.feeder.changed",)

    assert ids(fetch_exactly(bus, star, 1)) == ["app.customer.changed"]
    assert ids(fetch_exactly(bus, hash_, 4)) == keys[:4]


def test_direct_and_fanout_exchanges(bus_factory: BusHarness) -> None:
    direct, fanout = bus_factory.name("direct"), bus_factory.name("fanout")
    first, second = bus_factory.name("first"), bus_factory.name("second")
    bus_factory.declare(
        Topology(
            exchanges=(ExchangeSpec(direct, "direct"), ExchangeSpec(fanout, "fanout")),
            queues=(
                QueueSpec(first, bindings=(Binding(direct, "a.*"), Binding(fanout, "ignored"))),
                QueueSpec(second, bindings=(Binding(direct, "b"), Binding(fanout, ""))),
            ),
        )
    )
    bus = bus_factory.open()
    bus.publish(fanout, [message("whatever", "to-all")])
    bus.publish(direct, [message("a.*", "literal-a"), message("b", "to-b")])
    with pytest.raises(UnroutableError):
        bus.publish(direct, [message("a.x", "no-wildcards-in-direct")])

    assert ids(fetch_exactly(bus, first, 2)) == ["to-all", "literal-a"]
    assert ids(fetch_exactly(bus, second, 2)) == ["to-all", "to-b"]


def test_default_exchange_routes_to_the_queue_named_by_the_key(bus_factory: BusHarness) -> None:
    _, queue = single_queue(bus_factory)
    bus = bus_factory.open()
    bus.publish("", [message(queue, "direct-to-queue")])
    with pytest.raises(UnroutableError):
        bus.publish("", [message(bus_factory.name("missing"), "nowhere")])

    (delivery,) = fetch_exactly(bus, queue, 1)

    assert (delivery.exchange, delivery.message.routing_key) == ("", queue)


def test_unroutable_message_raises_and_the_routable_ones_are_delivered(bus_factory: BusHarness) -> None:
    exchange, queue = single_queue(bus_factory, pattern="routed.#")
    bus = bus_factory.open()

    with pytest.raises(UnroutableError) as raised:
        bus.publish(exchange, [message("routed.one", "m-1"), message("lost.two", "m-2")])

    assert exchange in str(raised.value)
    assert "'lost.two'" in str(raised.value)
    assert "m-1" not in str(raised.value)
    assert ids(fetch_exactly(bus, queue, 1)) == ["m-1"]


def test_batches_in_flight_are_settled_each_on_its_own(bus_factory: BusHarness) -> None:
    exchange, queue = single_queue(bus_factory, pattern="routed.#")
    bus = bus_factory.open()

    first = bus.send(exchange, [message("routed.one", "m-1"), message("routed.two", "m-2")])
    second = bus.send(exchange, [message("routed.three", "m-3"), message("lost.four", "m-4")])
    third = bus.send(exchange, [message(f"routed.{n}", f"m-{n}") for n in range(5, 1205)])

    first.wait()
    with pytest.raises(UnroutableError) as raised:
        second.wait()
    third.wait()
    assert raised.value.message_ids == ("m-4",)
    with pytest.raises(UnroutableError):
        second.wait()
    assert ids(fetch_exactly(bus, queue, 1203, batch=500)) == ["m-1", "m-2", "m-3"] + [
        f"m-{n}" for n in range(5, 1205)
    ]


def test_a_message_the_wire_cannot_carry_fails_its_send_before_anything_is_sent(
    bus_factory: BusHarness,
) -> None:
    exchange, queue = single_queue(bus_factory)
    bus = bus_factory.open()

    with pytest.raises(MessageEncodingError):
        bus.send(exchange, [message("k", "m-1"), message("k", "m-2", headers={"bad": 1.5})])
    bus.send(exchange, [message("k", "m-3")]).wait()

    assert ids(fetch_exactly(bus, queue, 1)) == ["m-3"]


def test_publish_to_a_missing_exchange_is_a_config_error_and_the_bus_stays_usable(
    bus_factory: BusHarness,
) -> None:
    exchange, queue = single_queue(bus_factory)
    bus = bus_factory.open()

    with pytest.raises(ConfigError, match="missing"):
        bus.publish(bus_factory.name("missing"), [message("k", "m-1")])
    bus.publish(exchange, [message("k", "m-2")])

    assert ids(fetch_exactly(bus, queue, 1)) == ["m-2"]


def test_a_batch_to_a_missing_exchange_is_refused_alone_while_another_is_in_flight(
    bus_factory: BusHarness,
) -> None:
    exchange, queue = single_queue(bus_factory)
    missing = bus_factory.name("missing")
    bus = bus_factory.open()

    first = bus.send(exchange, [message("k", f"m-{n}") for n in range(50)])
    with pytest.raises(ConfigError) as raised:
        bus.send(missing, [message("k", "m-x")])
    first.wait()

    assert missing in str(raised.value)
    assert ids(fetch_exactly(bus, queue, 50)) == [f"m-{n}" for n in range(50)]


def test_a_batch_sharing_a_message_id_with_one_in_flight_gets_its_own_return(
    bus_factory: BusHarness,
) -> None:
    exchange, queue = single_queue(bus_factory, pattern="routed.#")
    bus = bus_factory.open()

    first = bus.send(
        exchange, [message("routed.one", "dup")] + [message(f"routed.{n}", f"m-{n}") for n in range(200)]
    )
    second = bus.send(exchange, [message("lost.one", "dup")])

    first.wait()
    with pytest.raises(UnroutableError) as raised:
        second.wait()
    assert raised.value.message_ids == ("dup",)
    assert ids(fetch_exactly(bus, queue, 201, batch=500)) == ["dup"] + [f"m-{n}" for n in range(200)]


def test_ack_removes_the_message_for_good(bus_factory: BusHarness) -> None:
    exchange, queue = single_queue(bus_factory)
    bus = bus_factory.open()
    bus.publish(exchange, [message("k", "m-1")])
    (delivery,) = fetch_exactly(bus, queue, 1)

    bus.ack(delivery)
    bus.close()

    other = bus_factory.open()
    assert other.fetch(queue, 10, 0.3) == []
    assert other.queue_depth(queue) == 0


def test_settling_twice_is_an_error(bus_factory: BusHarness) -> None:
    exchange, queue = single_queue(bus_factory)
    bus = bus_factory.open()
    bus.publish(exchange, [message("k", "m-1")])
    (delivery,) = fetch_exactly(bus, queue, 1)
    bus.ack(delivery)

    with pytest.raises(BusError, match="not unsettled"):
        bus.ack(delivery)
    with pytest.raises(BusError, match="not unsettled"):
        bus.nack(delivery, requeue=True)


def test_quorum_nack_with_requeue_redelivers_at_the_back_with_a_delivery_count(
    bus_factory: BusHarness,
) -> None:
    exchange, queue = single_queue(bus_factory, queue_type="quorum")
    bus = bus_factory.open()
    bus.publish(exchange, [message("k", "m-1"), message("k", "m-2")])
    (first,) = bus.fetch(queue, 1, 5.0)

    bus.nack(first, requeue=True)
    second, again = fetch_exactly(bus, queue, 2, batch=1)

    assert ids([first, second, again]) == ["m-1", "m-2", "m-1"]
    assert (second.redelivered, second.delivery_count) == (False, 0)
    assert (again.redelivered, again.delivery_count) == (True, 1)
    assert again.message.headers == {"x-delivery-count": 1}


def test_classic_nack_with_requeue_redelivers_in_place_without_a_count(bus_factory: BusHarness) -> None:
    exchange, queue = single_queue(bus_factory, queue_type="classic")
    bus = bus_factory.open()
    bus.publish(exchange, [message("k", "m-1"), message("k", "m-2")])
    (first,) = bus.fetch(queue, 1, 5.0)

    bus.nack(first, requeue=True)
    again, second = fetch_exactly(bus, queue, 2, batch=1)

    assert ids([first, again, second]) == ["m-1", "m-1", "m-2"]
    assert (again.redelivered, again.delivery_count, again.message.headers) == (True, 0, {})
    assert second.redelivered is False


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
def test_nack_without_requeue_dead_letters_with_x_death(
    bus_factory: BusHarness, queue_type: QueueType
) -> None:
    exchange, dlx = bus_factory.name("events"), bus_factory.name("dlx")
    work, dead = bus_factory.name("work"), bus_factory.name("dead")
    bus_factory.declare(
        Topology(
            exchanges=(ExchangeSpec(exchange), ExchangeSpec(dlx, "fanout")),
            queues=(
                QueueSpec(
                    work, bindings=(Binding(exchange, "#"),), queue_type=queue_type, dead_letter_exchange=dlx
                ),
                QueueSpec(dead, bindings=(Binding(dlx, ""),), queue_type=queue_type),
            ),
        )
    )
    bus = bus_factory.open()
    bus.publish(exchange, [message("case.created", "m-1", headers={"keep": "me"})])
    (delivery,) = fetch_exactly(bus, work, 1)

    bus.nack(delivery, requeue=False)
    (dead_letter,) = fetch_exactly(bus, dead, 1)

    headers = dict(dead_letter.message.headers)
    (death,) = headers.pop("x-death")
    assert isinstance(death.pop("time"), datetime)
    assert death == {
        "count": 1,
        "reason": "rejected",
        "queue": work,
        "exchange": exchange,
        "routing-keys": ["case.created"],
    }
    assert headers == {
        "keep": "me",
        "x-first-death-exchange": exchange,
        "x-first-death-queue": work,
        "x-first-death-reason": "rejected",
    }
    assert (dead_letter.exchange, dead_letter.message.routing_key) == (dlx, "case.created")
    assert (dead_letter.redelivered, dead_letter.delivery_count) == (False, 0)
    assert bus.queue_depth(work) == 0


def test_nack_without_requeue_and_without_dead_letter_exchange_drops(bus_factory: BusHarness) -> None:
    exchange, queue = single_queue(bus_factory)
    bus = bus_factory.open()
    bus.publish(exchange, [message("k", "m-1")])
    (delivery,) = fetch_exactly(bus, queue, 1)

    bus.nack(delivery, requeue=False)

    assert bus.fetch(queue, 1, 0.3) == []


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
def test_expired_messages_dead_letter_with_reason_expired(
    bus_factory: BusHarness, queue_type: QueueType
) -> None:
    exchange, dlx = bus_factory.name("events"), bus_factory.name("dlx")
    delay, dead = bus_factory.name("delay"), bus_factory.name("dead")
    bus_factory.declare(
        Topology(
            exchanges=(ExchangeSpec(exchange), ExchangeSpec(dlx)),
            queues=(
                QueueSpec(
                    delay,
                    bindings=(Binding(exchange, "#"),),
                    queue_type=queue_type,
                    dead_letter_exchange=dlx,
                    dead_letter_routing_key="expired.retry",
                    message_ttl_ms=200,
                ),
                QueueSpec(dead, bindings=(Binding(dlx, "expired.*"),), queue_type=queue_type),
            ),
        )
    )
    bus = bus_factory.open()
    bus.publish(exchange, [message("case.created", "m-1")])

    (dead_letter,) = fetch_exactly(bus, dead, 1)

    (death,) = dead_letter.message.headers["x-death"]
    assert (death["reason"], death["queue"], death["exchange"], death["routing-keys"]) == (
        "expired",
        delay,
        exchange,
        ["case.created"],
    )
    assert dead_letter.message.routing_key == "expired.retry"
    assert bus.queue_depth(delay) == 0


def test_retry_loop_through_a_delay_queue_counts_every_death(bus_factory: BusHarness) -> None:
    events, retry = bus_factory.name("events"), bus_factory.name("retry")
    work, delay = bus_factory.name("work"), bus_factory.name("delay")
    bus_factory.declare(
        Topology(
            exchanges=(ExchangeSpec(events), ExchangeSpec(retry)),
            queues=(
                QueueSpec(work, bindings=(Binding(events, "#.work"),), dead_letter_exchange=retry),
                QueueSpec(
                    delay,
                    bindings=(Binding(retry, "#"),),
                    dead_letter_exchange=events,
                    dead_letter_routing_key="again.work",
                    message_ttl_ms=100,
                ),
            ),
        )
    )
    bus = bus_factory.open()
    bus.publish(events, [message("first.work", "m-1")])

    keys = []
    for _ in range(3):
        (delivery,) = fetch_exactly(bus, work, 1)
        keys.append(delivery.message.routing_key)
        bus.nack(delivery, requeue=False)

    assert keys == ["first.work", "again.work", "again.work"]
    deaths = delivery.message.headers["x-death"]
    assert [(d["queue"], d["reason"], d["count"], d["routing-keys"]) for d in deaths] == [
        (delay, "expired", 2, ["first.work"]),
        (work, "rejected", 2, ["first.work"]),
    ]
    assert delivery.message.headers["x-first-death-queue"] == work


def test_closing_with_unacked_deliveries_redelivers_them_to_another_connection(
    bus_factory: BusHarness,
) -> None:
    exchange, queue = single_queue(bus_factory)
    consumer = bus_factory.open()
    consumer.publish(exchange, [message("k", f"m-{i}") for i in range(3)])
    assert ids(fetch_exactly(consumer, queue, 2, batch=2)) == ["m-0", "m-1"]

    consumer.close()
    other = bus_factory.open()
    deliveries = fetch_exactly(other, queue, 3, batch=3)

    assert ids(deliveries) == ["m-0", "m-1", "m-2"]
    assert [(d.redelivered, d.delivery_count) for d in deliveries] == [(True, 1), (True, 1), (False, 0)]
    with pytest.raises(BusUnavailableError):
        consumer.fetch(queue, 1, 0)


def test_queue_depth_counts_ready_messages_and_purge_removes_them(bus_factory: BusHarness) -> None:
    exchange, queue = single_queue(bus_factory)
    bus = bus_factory.open()
    bus.publish(exchange, [message("k", f"m-{i}") for i in range(5)])
    assert bus.queue_depth(queue) == 5

    taken = fetch_exactly(bus, queue, 2, batch=2)
    assert bus.queue_depth(queue) == 3
    assert bus.purge(queue) == 3
    assert bus.queue_depth(queue) == 0

    bus.ack(taken[0])
    bus.nack(taken[1], requeue=True)
    assert ids(fetch_exactly(bus, queue, 1, batch=2)) == ["m-1"]


def test_missing_queue_is_a_config_error(bus_factory: BusHarness) -> None:
    missing = bus_factory.name("missing")
    bus = bus_factory.open()

    with pytest.raises(ConfigError, match=missing):
        bus.queue_depth(missing)
    with pytest.raises(ConfigError, match=missing):
        bus.fetch(missing, 1, 0)
    with pytest.raises(ConfigError, match=missing):
        bus.purge(missing)


def test_redeclaring_with_other_arguments_is_a_config_error(bus_factory: BusHarness) -> None:
    exchange, queue = single_queue(bus_factory, message_ttl_ms=1000)

    bus_factory.declare(Topology(queues=(QueueSpec(queue, message_ttl_ms=1000),)))
    with pytest.raises(ConfigError, match=queue):
        bus_factory.declare(Topology(queues=(QueueSpec(queue, message_ttl_ms=2000),)))
    with pytest.raises(ConfigError, match=exchange):
        bus_factory.declare(Topology(exchanges=(ExchangeSpec(exchange, "fanout"),)))


def test_a_batch_of_2000_arrives_exactly_once_and_in_order(bus_factory: BusHarness) -> None:
    exchange, queue = single_queue(bus_factory)
    sent = [message("case.changed", f"m-{i:04d}", body=b'{"n": %d}' % i) for i in range(2000)]
    publisher, consumer = bus_factory.open(), bus_factory.open()

    publisher.publish(exchange, sent)
    deliveries = fetch_exactly(consumer, queue, 2000, batch=500, timeout_s=20.0)
    for delivery in deliveries:
        consumer.ack(delivery)

    assert [d.message for d in deliveries] == sent
    assert consumer.fetch(queue, 10, 0.2) == []


def test_two_connections_compete_for_one_queue(bus_factory: BusHarness) -> None:
    exchange, queue = single_queue(bus_factory)
    first, second = bus_factory.open(), bus_factory.open()
    first.publish(exchange, [message("k", f"m-{i:03d}") for i in range(200)])

    received: dict[str, list[str]] = {"first": [], "second": []}
    deadline = time.monotonic() + 10.0
    while sum(map(len, received.values())) < 200 and time.monotonic() < deadline:
        for name, bus in (("first", first), ("second", second)):
            batch = bus.fetch(queue, 10, 0.05)
            received[name] += ids(batch)
            for delivery in batch:
                bus.ack(delivery)

    everything = received["first"] + received["second"]
    assert sorted(everything) == [f"m-{i:03d}" for i in range(200)]
    assert received["first"] and received["second"]


def test_fetch_waits_for_a_message_published_later(bus_factory: BusHarness) -> None:
    exchange, queue = single_queue(bus_factory)
    consumer, publisher = bus_factory.open(), bus_factory.open()
    assert consumer.fetch(queue, 5, 0.1) == []

    publisher.publish(exchange, [message("k", "late")])

    assert ids(consumer.fetch(queue, 5, 5.0)) == ["late"]


def test_a_closed_bus_refuses_work(bus_factory: BusHarness) -> None:
    exchange, queue = single_queue(bus_factory)
    bus = bus_factory.open()
    bus.close()
    bus.close()

    with pytest.raises(BusUnavailableError):
        bus.publish(exchange, [message("k", "m-1")])
    with pytest.raises(BusUnavailableError):
        bus.fetch(queue, 1, 0)


def test_at_least_once_dead_lettering_still_moves_expired_messages(bus_factory: BusHarness) -> None:
    exchange, delay, work = bus_factory.name("dlx"), bus_factory.name("delay"), bus_factory.name("work")
    bus_factory.declare(
        Topology(
            exchanges=(ExchangeSpec(exchange, "direct"),),
            queues=(
                QueueSpec(
                    delay,
                    message_ttl_ms=100,
                    dead_letter_exchange=exchange,
                    dead_letter_routing_key=work,
                    at_least_once_dead_letters=True,
                ),
                QueueSpec(work, bindings=(Binding(exchange, work),)),
            ),
        )
    )
    bus = bus_factory.open()
    bus.publish("", [message(delay, "late")])
    [delivery] = fetch_exactly(bus, work, 1)
    assert delivery.message.message_id == "late"
    assert delivery.message.headers["x-death"][0]["reason"] == "expired"


def test_at_least_once_dead_lettering_needs_a_quorum_queue(bus_factory: BusHarness) -> None:
    with pytest.raises(ConfigError, match="quorum"):
        bus_factory.declare(
            Topology(
                queues=(
                    QueueSpec(
                        bus_factory.name("classic"),
                        queue_type="classic",
                        dead_letter_exchange="x",
                        at_least_once_dead_letters=True,
                    ),
                )
            )
        )
