"""Parked dead letters land in the parked table once each, with their failure history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from bus import open_bus
from bus.memory import discard_broker, unique_url
from bus.port import Binding, Delivery, Message, QueueSpec, Topology
from bus.retry import DEAD_LETTER_EXCHANGE, RetryPolicy, next_hop, retry_exchanges
from ground import clock
from ground.errors import FencedOutError
from pipeline.drainer import ParkingDrainer
from store.leases import take_lease
from store.parking import list_parked

QUEUE = "yekuo.test"
PARKING = "yekuo.test.parking"


@pytest.fixture
def bus_url() -> Iterator[str]:
    url = unique_url("drainer")
    bus = open_bus(url)
    bus.declare(
        Topology(
            exchanges=retry_exchanges(),
            queues=(QueueSpec(PARKING, bindings=(Binding(DEAD_LETTER_EXCHANGE, QUEUE),)),),
        )
    )
    bus.close()
    yield url
    discard_broker(url)


def _parked_copy(message_id: str) -> Message:
    delivery = Delivery(
        message=Message(body="事件".encode(), routing_key="application.changed.x", message_id=message_id),
        exchange="yekuo.events",
        queue=QUEUE,
        delivery_tag=1,
        redelivered=False,
    )
    policy = RetryPolicy(delays_ms=())
    _, copy, parks = next_hop(delivery, ValueError("stage 'x' unknown"), policy)
    assert parks
    return copy


def test_dead_letters_become_parked_rows_with_their_history(sqlite_engine: Engine, bus_url: str) -> None:
    bus = open_bus(bus_url)
    bus.publish(DEAD_LETTER_EXCHANGE, [_parked_copy("m1"), _parked_copy("m2")])
    drainer = ParkingDrainer(sqlite_engine, bus, [(QUEUE, PARKING)])
    assert drainer.drain_once() == 2
    with sqlite_engine.connect() as conn:
        rows = list_parked(conn, "dead")
    assert [row.record_key for row in rows] == ["m1", "m2"]
    row = rows[0]
    assert row.reason_code == "retries_exhausted"
    assert "ValueError: stage 'x' unknown" in row.reason
    assert row.payload["queue"] == QUEUE
    assert row.payload["exchange"] == "yekuo.events"
    assert row.payload["routing_key"] == "application.changed.x"
    assert row.payload["body"] == "事件"
    assert [f["attempt"] for f in row.payload["failures"]] == [1]
    assert bus.queue_depth(PARKING) == 0


def test_a_redelivered_dead_letter_is_not_parked_twice(sqlite_engine: Engine, bus_url: str) -> None:
    bus = open_bus(bus_url)
    bus.publish(DEAD_LETTER_EXCHANGE, [_parked_copy("m1"), _parked_copy("m1")])
    ParkingDrainer(sqlite_engine, bus, [(QUEUE, PARKING)]).drain_once()
    with sqlite_engine.connect() as conn:
        assert len(list_parked(conn, "dead")) == 1


def test_a_drainer_whose_lease_was_taken_over_parks_nothing_and_leaves_the_messages_queued(
    sqlite_engine: Engine, bus_url: str
) -> None:
    with clock.frozen_at(clock.system_now()) as fixed:
        with sqlite_engine.begin() as conn:
            old = take_lease(conn, "drain", "hub-1", timedelta(seconds=15))
        fixed.advance(timedelta(seconds=16))
        with sqlite_engine.begin() as conn:
            new = take_lease(conn, "drain", "hub-2", timedelta(seconds=15))
    assert old is not None and new is not None
    bus = open_bus(bus_url)
    bus.publish(DEAD_LETTER_EXCHANGE, [_parked_copy("m1")])

    with pytest.raises(FencedOutError):
        ParkingDrainer(sqlite_engine, bus, [(QUEUE, PARKING)]).drain_once(fence=old)

    with sqlite_engine.connect() as conn:
        assert list_parked(conn, "dead") == []
    assert ParkingDrainer(sqlite_engine, open_bus(bus_url), [(QUEUE, PARKING)]).drain_once(fence=new) == 1
