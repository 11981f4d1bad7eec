"""Outbox events get envelopes and per-subject sequences; the relay marks them sent only when confirmed."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bus import open_bus
from bus.memory import discard_broker, unique_url
from bus.port import Binding, Bus, Confirmation, ExchangeSpec, Message, QueueSpec, Topology
from canonical_model.envelope import CloudEvent
from ground.errors import ConfigError, UnroutableError
from pipeline.outbox import OutboxRelay, pending_count, stage_event, stage_events
from pipeline.records import EventDraft
from store.schema import outbox
from tests.conftest import RABBITMQ_URL, require_service

EXCHANGE = "events"


@pytest.fixture
def bus_url() -> Iterator[str]:
    url = unique_url("outbox")
    bus = open_bus(url)
    bus.declare(
        Topology(
            exchanges=(ExchangeSpec(EXCHANGE),),
            queues=(QueueSpec("tap", bindings=(Binding(EXCHANGE, "known.#"),)),),
        )
    )
    bus.close()
    yield url
    discard_broker(url)


def _draft(subject: str, routing_key: str = "known.thing") -> EventDraft:
    return EventDraft(
        event_type="cn.yekuo.thing.changed.v1",
        source="/test/thing",
        subject=subject,
        dataschema="urn:yekuo:schema:thing.v1",
        data={"subject": subject},
        exchange=EXCHANGE,
        routing_key=routing_key,
    )


def test_sequences_count_per_subject(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        events = [
            stage_event(conn, _draft(subject), correlation_id="c") for subject in ("a", "b", "a", "a", "b")
        ]
    assert [(e.subject, e.sequence) for e in events] == [("a", 1), ("b", 1), ("a", 2), ("a", 3), ("b", 2)]


def test_a_rolled_back_transaction_leaves_no_event(sqlite_engine: Engine) -> None:
    with pytest.raises(RuntimeError), sqlite_engine.begin() as conn:
        stage_event(conn, _draft("a"), correlation_id="c")
        raise RuntimeError("the source checkpoint could not be written")
    with sqlite_engine.connect() as conn:
        assert pending_count(conn) == 0


def test_relay_publishes_in_order_and_marks_sent(sqlite_engine: Engine, bus_url: str) -> None:
    with sqlite_engine.begin() as conn:
        staged = [stage_event(conn, _draft(f"s{i}"), correlation_id=f"c{i}") for i in range(5)]
    relay = OutboxRelay(sqlite_engine, open_bus(bus_url), batch_size=2)
    assert [relay.relay_batches(batches=1) for _ in range(4)] == [2, 2, 1, 0]
    with sqlite_engine.connect() as conn:
        assert pending_count(conn) == 0
    deliveries = open_bus(bus_url).fetch("tap", 10, 0.2)
    received = [CloudEvent.model_validate_json(d.message.body) for d in deliveries]
    assert [e.id for e in received] == [e.id for e in staged]
    assert [d.message.message_id for d in deliveries] == [e.id for e in staged]
    assert [d.message.correlation_id for d in deliveries] == [f"c{i}" for i in range(5)]


def test_an_unroutable_event_stays_in_the_outbox_with_its_error(sqlite_engine: Engine, bus_url: str) -> None:
    with sqlite_engine.begin() as conn:
        before = stage_event(conn, _draft("a"), correlation_id="c")
        lost = stage_event(conn, _draft("b", routing_key="nobody.listens"), correlation_id="c")
        after = stage_event(conn, _draft("c"), correlation_id="c")
    relay = OutboxRelay(sqlite_engine, open_bus(bus_url))
    with pytest.raises(UnroutableError):
        relay.relay_batches()
    with sqlite_engine.connect() as conn:
        rows = {row.event_id: row for row in conn.execute(sa.select(outbox))}
    assert rows[lost.id].sent_at is None
    assert rows[lost.id].attempts == 1
    assert "nobody.listens" in rows[lost.id].last_error
    # The broker delivered the routable ones, so they are not published again.
    assert rows[before.id].sent_at is not None and rows[after.id].sent_at is not None
    assert [d.message.message_id for d in open_bus(bus_url).fetch("tap", 10, 0.2)] == [before.id, after.id]


def test_relaying_several_batches_marks_each_once_confirmed_in_order(
    sqlite_engine: Engine, bus_url: str
) -> None:
    with sqlite_engine.begin() as conn:
        staged = [stage_event(conn, _draft(f"s{i}"), correlation_id=f"c{i}") for i in range(7)]
    relay = OutboxRelay(sqlite_engine, open_bus(bus_url), batch_size=2)
    assert relay.relay_batches(batches=3) == 6
    with sqlite_engine.connect() as conn:
        assert pending_count(conn) == 1
    assert relay.relay_batches(batches=3) == 1
    assert relay.relay_batches(batches=3) == 0
    deliveries = open_bus(bus_url).fetch("tap", 10, 0.2)
    assert [d.message.message_id for d in deliveries] == [e.id for e in staged]


def test_a_failed_batch_leaves_the_batch_sent_behind_it_unsent(sqlite_engine: Engine, bus_url: str) -> None:
    with sqlite_engine.begin() as conn:
        first = [stage_event(conn, _draft(s), correlation_id="c") for s in ("a", "b")]
        lost = stage_event(conn, _draft("c", routing_key="nobody.listens"), correlation_id="c")
        confirmed = stage_event(conn, _draft("d"), correlation_id="c")
        behind = stage_event(conn, _draft("e"), correlation_id="c")
    relay = OutboxRelay(sqlite_engine, open_bus(bus_url), batch_size=2)

    with pytest.raises(UnroutableError):
        relay.relay_batches(batches=5)

    with sqlite_engine.connect() as conn:
        rows = {row.event_id: row for row in conn.execute(sa.select(outbox))}
    assert all(rows[event.id].sent_at is not None for event in [*first, confirmed])
    assert (rows[lost.id].sent_at, rows[lost.id].attempts) == (None, 1)
    # Sent before its predecessor failed, it is published again (its first copy is absorbed downstream).
    assert (rows[behind.id].sent_at, rows[behind.id].attempts) == (None, 0)
    with pytest.raises(UnroutableError):
        relay.relay_batches()
    with sqlite_engine.connect() as conn:
        assert pending_count(conn) == 1


class WaitCountingBus:
    """A bus that counts, per batch sent, how often its confirmation was waited for."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self.waits: list[int] = []

    def send(self, exchange: str, messages: Sequence[Message]) -> Confirmation:
        confirmation = self._bus.send(exchange, messages)
        index = len(self.waits)
        self.waits.append(0)
        counting = self

        class Counted:
            def wait(self) -> None:
                counting.waits[index] += 1
                confirmation.wait()

        return Counted()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)


def test_the_batches_sent_behind_a_failed_one_are_settled_before_the_relay_returns(
    sqlite_engine: Engine, bus_url: str
) -> None:
    with sqlite_engine.begin() as conn:
        stage_event(conn, _draft("a"), correlation_id="c")
        stage_event(conn, _draft("b", routing_key="nobody.listens"), correlation_id="c")
        for subject in "cdef":
            stage_event(conn, _draft(subject), correlation_id="c")
    bus = WaitCountingBus(open_bus(bus_url))
    relay = OutboxRelay(sqlite_engine, bus, batch_size=2)  # type: ignore[arg-type]

    with pytest.raises(UnroutableError):
        relay.relay_batches(batches=3)

    # The first batch failed as the second was sent; the second is still waited for, its rows unsent.
    assert len(bus.waits) == 2
    assert all(bus.waits)
    with sqlite_engine.connect() as conn:
        assert pending_count(conn) == 5


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def any_bus_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "memory":
        url = unique_url("outbox")
        yield url
        discard_broker(url)
        return
    require_service("RabbitMQ", 5672)
    yield RABBITMQ_URL


def test_events_before_one_to_a_missing_exchange_are_delivered_once(
    sqlite_engine: Engine, any_bus_url: str
) -> None:
    exchange, queue, missing = (f"outbox.{role}.{uuid.uuid4().hex[:12]}" for role in ("x", "q", "missing"))
    admin = open_bus(any_bus_url)
    admin.declare(
        Topology(
            exchanges=(ExchangeSpec(exchange),),
            queues=(QueueSpec(queue, bindings=(Binding(exchange, "#"),)),),
        )
    )
    with sqlite_engine.begin() as conn:
        staged = [
            stage_event(conn, dataclasses.replace(_draft(subject), exchange=exchange), correlation_id="c")
            for subject in "abc"
        ]
        stage_event(conn, dataclasses.replace(_draft("d"), exchange=missing), correlation_id="c")
    relay = OutboxRelay(sqlite_engine, open_bus(any_bus_url), batch_size=2)
    try:
        for _ in range(3):
            with pytest.raises(ConfigError, match=missing):
                relay.relay_batches()
        with sqlite_engine.connect() as conn:
            (waiting,) = conn.execute(sa.select(outbox).where(outbox.c.sent_at.is_(None))).all()
        assert (waiting.exchange, waiting.attempts) == (missing, 3)
        delivered = []
        while batch := admin.fetch(queue, 10, 0.5):
            delivered += [delivery.message.message_id for delivery in batch]
            for delivery in batch:
                admin.ack(delivery)
        assert delivered == [event.id for event in staged]
    finally:
        relay.bus.close()
        admin.delete_queue(queue)
        admin.delete_exchange(exchange)
        admin.close()


def test_a_batch_numbers_each_subject_in_draft_order_after_earlier_batches(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        stage_event(conn, _draft("a"), correlation_id="first")
    with sqlite_engine.begin() as conn:
        events = stage_events(conn, [(_draft(subject), f"c{n}") for n, subject in enumerate("abab")])
    assert [(e.subject, e.sequence, e.correlationid) for e in events] == [
        ("a", 2, "c0"),
        ("b", 1, "c1"),
        ("a", 3, "c2"),
        ("b", 2, "c3"),
    ]
    with sqlite_engine.connect() as conn:
        stored = conn.execute(sa.select(outbox.c.event_id).order_by(outbox.c.id)).scalars().all()
    assert stored[1:] == [event.id for event in events]
