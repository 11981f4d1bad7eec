"""A dead letter replayed after the fix takes effect once; a second copy replayed later changes nothing."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Connection, Engine

from bus import open_bus
from bus.memory import discard_broker, unique_url
from bus.port import Message
from bus.retry import RetryPolicy
from pipeline.consumer import InboxConsumer
from pipeline.consumers import ConsumerSpec, consumer_topology
from pipeline.decoded import DecodedEvent
from pipeline.drainer import ParkingDrainer
from pipeline.operations import Operations
from store.parking import list_parked, park
from workflow.cases import handle_event
from workflow.queries import get_case

from ..workflow.events import application_event

EXCHANGE = "yekuo.events"
SPEC = ConsumerSpec("workflow", ("application.#",), handle_event)
POLICY = RetryPolicy(delays_ms=(20,))


@pytest.fixture
def bus_url() -> Iterator[str]:
    url = unique_url("replay")
    bus = open_bus(url)
    bus.declare(consumer_topology([EXCHANGE], [SPEC], POLICY))
    bus.close()
    yield url
    discard_broker(url)


def test_replay_after_the_fix_applies_once_and_a_second_copy_has_no_effect(
    sqlite_engine: Engine, bus_url: str
) -> None:
    def broken(conn: Connection, decoded: DecodedEvent) -> None:
        raise RuntimeError("stage model not loaded")

    bus = open_bus(bus_url)
    event = application_event("A1")
    bus.publish(EXCHANGE, [Message(event.model_dump_json().encode(), "application.changed.x", event.id)])
    failing = InboxConsumer(
        sqlite_engine, bus, queue=SPEC.queue, name=SPEC.name, handler=broken, retry=POLICY
    )
    while failing.stats.parked == 0:
        failing.consume_once(timeout_s=0.2)
    ParkingDrainer(sqlite_engine, bus, [(SPEC.queue, SPEC.parking_queue)]).drain_once(timeout_s=0.2)
    with sqlite_engine.connect() as conn:
        [dead] = list_parked(conn, "dead")

    operations = Operations(sqlite_engine, open_bus=functools.partial(open_bus, bus_url))
    operations.replay(dead.id, operator="王工")
    fixed = InboxConsumer(sqlite_engine, bus, queue=SPEC.queue, name=SPEC.name, handler=handle_event)
    fixed.consume_once(timeout_s=0.2)
    assert fixed.stats.handled == 1

    # A second parked copy of the same event (a duplicate that also failed) replayed later is absorbed.
    with sqlite_engine.begin() as conn:
        copy_id = park(
            conn,
            kind="dead",
            reason_code="retries_exhausted",
            reason="copy",
            record_key=event.id,
            payload=dead.payload,
        )
    operations.replay(copy_id, operator="王工")
    fixed.consume_once(timeout_s=0.2)
    assert fixed.stats.duplicates == 1 and fixed.stats.handled == 1
    with sqlite_engine.connect() as conn:
        case = get_case(conn, "A1")
    assert case is not None
    assert [
        entry["source_event_id"] for entry in case["timeline"] if entry["source_system"] == "marketing"
    ] == [event.id]
