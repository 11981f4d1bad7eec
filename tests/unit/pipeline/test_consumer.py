"""The inbox consumer applies each event once, parks what it cannot read and dead-letters failures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine

from bus import open_bus
from bus.memory import discard_broker, unique_url
from bus.port import Bus, Message
from bus.retry import RetryPolicy
from canonical_model.envelope import CloudEvent
from canonical_model.events import PROJECTION_UPDATED
from ground.metrics import REGISTRY
from pipeline import consumer as consumer_module
from pipeline.consumer import InboxConsumer, KeyedHandler
from pipeline.consumers import ConsumerSpec, consumer_topology
from pipeline.decoded import DecodedEvent
from store.event_feed import read_feed
from store.grid import grid_state
from store.locks import LockTimeoutError
from store.parking import list_parked
from store.schema import outbox
from subscriptions.feed import record_feed_event
from workflow.cases import handle_event
from workflow.grid import handle_grid_event
from workflow.queries import count_cases, get_case

from ..workflow.events import application_event
from ..workflow.test_grid import changed, transformer

EXCHANGE = "yekuo.events"
SPEC = ConsumerSpec("workflow", ("application.#", "customer.#"), handle_event)


@pytest.fixture
def bus_url() -> Iterator[str]:
    url = unique_url("consumer")
    bus = open_bus(url)
    bus.declare(consumer_topology([EXCHANGE], [SPEC]))
    bus.close()
    yield url
    discard_broker(url)


def _publish(bus: Bus, *events: CloudEvent, body: bytes | None = None) -> None:
    bus.publish(
        EXCHANGE,
        [
            Message(
                body=body or event.model_dump_json().encode(),
                routing_key="application.changed.x",
                message_id=event.id,
            )
            for event in events
        ],
    )


def _counter(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"consumer": SPEC.name}) or 0.0


def _consumer(engine: Engine, bus: Bus, handler: object = handle_event) -> InboxConsumer:
    return InboxConsumer(engine, bus, queue=SPEC.queue, name=SPEC.name, handler=handler)  # type: ignore[arg-type]


def test_a_duplicated_event_takes_effect_once(sqlite_engine: Engine, bus_url: str) -> None:
    bus = open_bus(bus_url)
    event = application_event("A1")
    _publish(bus, event, event, event)
    consumer = _consumer(sqlite_engine, bus)
    before = _counter("yekuo_consumer_duplicates_total"), _counter("yekuo_consumer_handled_total")
    assert consumer.consume_once(timeout_s=0.2) == 3
    assert (consumer.stats.handled, consumer.stats.duplicates) == (1, 2)
    after = _counter("yekuo_consumer_duplicates_total"), _counter("yekuo_consumer_handled_total")
    assert (after[0] - before[0], after[1] - before[1]) == (2, 1)
    with sqlite_engine.connect() as conn:
        case = get_case(conn, "A1")
    assert case is not None and len(case["timeline"]) == 1
    assert bus.queue_depth(SPEC.queue) == 0


def test_a_redelivery_after_a_crash_before_the_ack_has_no_second_effect(
    sqlite_engine: Engine, bus_url: str
) -> None:
    publisher = open_bus(bus_url)
    _publish(publisher, application_event("A1"), application_event("A2"))
    # Handle and commit, then lose the connection before acknowledging: the broker redelivers.
    crashed = open_bus(bus_url)
    deliveries = crashed.fetch(SPEC.queue, 10, 0.2)
    with sqlite_engine.begin() as conn:
        for delivery in deliveries:
            consumer = _consumer(sqlite_engine, crashed)
            assert consumer._handle(conn, delivery) is None
    crashed.close()
    survivor = _consumer(sqlite_engine, open_bus(bus_url))
    assert survivor.consume_once(timeout_s=0.2) == 2
    assert survivor.stats.duplicates == 2 and survivor.stats.handled == 0
    with sqlite_engine.connect() as conn:
        assert count_cases(conn) == 2


def test_a_message_that_is_not_a_cloud_event_is_parked_and_the_next_one_flows(
    sqlite_engine: Engine, bus_url: str
) -> None:
    bus = open_bus(bus_url)
    good = application_event("A2")
    bus.publish(
        EXCHANGE,
        [
            Message(body=b'{"not": "an event"}', routing_key="application.changed.x", message_id="m-bad"),
            Message(
                body=good.model_dump_json().encode(), routing_key="application.changed.x", message_id=good.id
            ),
        ],
    )
    consumer = _consumer(sqlite_engine, bus)
    consumer.consume_once(timeout_s=0.2)
    with sqlite_engine.connect() as conn:
        [parked] = list_parked(conn, "invalid")
        assert get_case(conn, "A2") is not None
    assert parked.reason_code == "envelope"
    assert "m-bad" in parked.reason and "id: Field required" in parked.reason
    assert parked.payload == '{"not": "an event"}'
    assert bus.queue_depth(SPEC.queue) == 0


def test_a_poison_message_is_retried_with_delays_then_parked_while_others_flow(
    sqlite_engine: Engine, bus_url: str
) -> None:
    attempts: list[str] = []

    def fragile(conn: Connection, decoded: DecodedEvent) -> None:
        if decoded.event.subject == "POISON":
            attempts.append(decoded.event.id)
            raise RuntimeError(f"cannot apply attempt {len(attempts)}")
        handle_event(conn, decoded)

    policy = RetryPolicy(delays_ms=(30, 60))
    bus = open_bus(bus_url)
    bus.declare(consumer_topology([EXCHANGE], [SPEC], policy))
    _publish(bus, application_event("A1"), application_event("POISON"), application_event("A3"))
    consumer = InboxConsumer(
        sqlite_engine, bus, queue=SPEC.queue, name=SPEC.name, handler=fragile, retry=policy
    )
    # Each retry waits in its delay queue and comes back by itself: the consumer only keeps fetching.
    while consumer.stats.parked == 0:
        consumer.consume_once(timeout_s=0.5)
        assert len(attempts) <= 3
    assert len(attempts) == 3 and consumer.stats.retried == 2 and consumer.stats.handled == 2
    with sqlite_engine.connect() as conn:
        assert get_case(conn, "A1") is not None and get_case(conn, "A3") is not None
        assert get_case(conn, "POISON") is None
    [parked] = bus.fetch(SPEC.parking_queue, 10, 0.5)
    assert CloudEvent.model_validate_json(parked.message.body).subject == "POISON"
    failures = parked.message.headers["x-yekuo-failures"]
    assert [f["attempt"] for f in failures] == [1, 2, 3]
    assert failures[-1]["error"] == "RuntimeError: cannot apply attempt 3"
    assert parked.message.headers["x-yekuo-original-exchange"] == EXCHANGE
    assert bus.queue_depth(SPEC.queue) == 0
    # The failed event's inbox entry was rolled back with its savepoint, so a replay can still apply it.
    bus.ack(parked)
    _publish(bus, CloudEvent.model_validate_json(parked.message.body))
    replay = _consumer(sqlite_engine, bus)
    replay.consume_once(timeout_s=0.2)
    assert replay.stats.handled == 1


def test_a_batch_whose_commit_fails_goes_back_to_the_queue(sqlite_engine: Engine, bus_url: str) -> None:
    bus = open_bus(bus_url)
    _publish(bus, application_event("A1"), application_event("A2"))
    broken = create_engine("sqlite:///file:missing?mode=ro&uri=true")
    consumer = _consumer(broken, bus)
    with pytest.raises(sa.exc.OperationalError):
        consumer.consume_once(timeout_s=0.2)
    # Both deliveries are ready again at once, for this or any other connection.
    assert bus.queue_depth(SPEC.queue) == 2
    healthy = _consumer(sqlite_engine, open_bus(bus_url))
    assert healthy.consume_once(timeout_s=0.2) == 2 and healthy.stats.handled == 2


def test_failing_events_in_a_batch_are_set_aside_and_the_rest_commits_once(
    sqlite_engine: Engine, bus_url: str
) -> None:
    bus = open_bus(bus_url)
    events = [application_event(f"B{n}") for n in range(6)]
    poison = {events[1].id, events[4].id}
    calls: dict[str, int] = {}

    def handler(conn: Connection, decoded: DecodedEvent) -> None:
        event = decoded.event
        calls[event.id] = calls.get(event.id, 0) + 1
        if event.id in poison:
            raise RuntimeError(f"cannot apply {event.subject}")
        handle_event(conn, decoded)

    _publish(bus, *events)
    consumer = _consumer(sqlite_engine, bus, handler)
    assert consumer.consume_once(timeout_s=0.2) == 6
    assert (consumer.stats.handled, consumer.stats.failed, consumer.stats.retried) == (4, 2, 2)
    # A failing handler runs once per delivery; the others run again after each rollback.
    assert [calls[event.id] for event in events if event.id in poison] == [1, 1]
    with sqlite_engine.connect() as conn:
        assert count_cases(conn) == 4
        assert {n for n in range(6) if get_case(conn, f"B{n}") is not None} == {0, 2, 3, 5}
        inbox_rows = conn.execute(sa.text("SELECT event_id FROM inbox")).scalars().all()
    assert sorted(inbox_rows) == sorted(event.id for event in events if event.id not in poison)


def test_data_its_type_s_model_refuses_fails_the_handler_and_is_parked_after_its_retries(
    sqlite_engine: Engine, bus_url: str
) -> None:
    policy = RetryPolicy(delays_ms=(30,))
    bus = open_bus(bus_url)
    bus.declare(consumer_topology([EXCHANGE], [SPEC], policy))
    bad = application_event("BAD", customer_class="medium_voltage")
    _publish(bus, application_event("A1"), bad)
    consumer = InboxConsumer(
        sqlite_engine, bus, queue=SPEC.queue, name=SPEC.name, handler=handle_event, retry=policy
    )
    while consumer.stats.parked == 0:
        consumer.consume_once(timeout_s=0.5)
    assert (consumer.stats.handled, consumer.stats.retried, consumer.stats.invalid) == (1, 1, 0)
    [parked] = bus.fetch(SPEC.parking_queue, 10, 0.5)
    failures = parked.message.headers["x-yekuo-failures"]
    assert [f["attempt"] for f in failures] == [1, 2]
    assert failures[-1]["error"].startswith(
        f"SchemaViolationError: event {bad.id} (cn.yekuo.application.changed.v1) is not a valid "
        "ConnectionApplication: 1 validation error"
    )
    with sqlite_engine.connect() as conn:
        assert get_case(conn, "A1") is not None and get_case(conn, "BAD") is None


def test_a_handler_that_keeps_events_as_they_are_never_decodes_them(
    sqlite_engine: Engine, bus_url: str
) -> None:
    bus = open_bus(bus_url)
    bad = application_event("BAD", customer_class="medium_voltage")
    unknown = application_event("X1").model_copy(update={"type": "cn.yekuo.application.unknown.v1"})
    _publish(bus, bad, unknown)
    consumer = _consumer(sqlite_engine, bus, record_feed_event)
    assert consumer.consume_once(timeout_s=0.2) == 2
    assert (consumer.stats.handled, consumer.stats.failed) == (2, 0)
    with sqlite_engine.connect() as conn:
        entries = read_feed(conn, after=0, limit=10)
    assert [(entry.event["id"], entry.event_type) for entry in entries] == [
        (bad.id, "cn.yekuo.application.changed.v1"),
        (unknown.id, "cn.yekuo.application.unknown.v1"),
    ]


def _grid_revision_and_notices(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        state = grid_state(conn)
        notices = conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.event_type == PROJECTION_UPDATED)
        ).scalar_one()
    assert state is not None
    return state[1], notices


def test_a_batch_is_one_transaction_work_and_an_event_alone_is_its_own(
    sqlite_engine: Engine, bus_url: str
) -> None:
    bus = open_bus(bus_url)
    _publish(bus, *(changed(transformer(key), 1) for key in ("PB1", "PB2", "PB3")))
    consumer = _consumer(sqlite_engine, bus, handle_grid_event)
    assert consumer.consume_once(timeout_s=0.2) == 3
    assert _grid_revision_and_notices(sqlite_engine) == (1, 3)
    # The event-by-event path: each event in its savepoint, with its own work.
    _publish(bus, *(changed(transformer(key), 2) for key in ("PB1", "PB2")))
    deliveries = bus.fetch(SPEC.queue, 10, 0.2)
    with sqlite_engine.begin() as conn:
        for delivery in deliveries:
            assert consumer._handle(conn, delivery) is None
    assert _grid_revision_and_notices(sqlite_engine) == (3, 5)


def test_a_unique_violation_of_the_handler_is_a_failure_not_a_duplicate(
    sqlite_engine: Engine, bus_url: str
) -> None:
    bus = open_bus(bus_url)
    clashing = application_event("C1")

    def handler(conn: Connection, decoded: DecodedEvent) -> None:
        handle_event(conn, decoded)
        if decoded.event.id == clashing.id:
            # The handler's own rows clash (as two consumers' inserts of one new row once did).
            conn.execute(
                sa.text("INSERT INTO inbox VALUES ('workflow', :id, CURRENT_TIMESTAMP)"), {"id": "x"}
            )
            conn.execute(
                sa.text("INSERT INTO inbox VALUES ('workflow', :id, CURRENT_TIMESTAMP)"), {"id": "x"}
            )

    # The unreadable message sends the batch down the event-by-event path, where the clash is met.
    bus.publish(
        EXCHANGE,
        [Message(body=b"{}", routing_key="application.changed.x", message_id="m-bad")],
    )
    _publish(bus, clashing, application_event("C2"))
    consumer = _consumer(sqlite_engine, bus, handler)
    assert consumer.consume_once(timeout_s=0.2) == 3
    assert (consumer.stats.handled, consumer.stats.duplicates, consumer.stats.failed) == (1, 0, 1)
    assert consumer.stats.retried == 1
    with sqlite_engine.connect() as conn:
        assert get_case(conn, "C1") is None and get_case(conn, "C2") is not None


def test_a_keyed_handler_s_keys_are_all_taken_before_the_batch_is_applied(
    sqlite_engine: Engine, bus_url: str
) -> None:
    bus = open_bus(bus_url)
    steps: list[str] = []

    def keys(_conn: Connection, decoded: DecodedEvent) -> list[str]:
        steps.append(f"keys {decoded.event.subject}")
        return [f"case:{decoded.event.subject}"]

    def handler(conn: Connection, decoded: DecodedEvent) -> None:
        steps.append(f"apply {decoded.event.subject}")
        handle_event(conn, decoded)

    _publish(bus, application_event("K1"), application_event("K2"))
    consumer = _consumer(sqlite_engine, bus, KeyedHandler(handler, keys))
    assert consumer.consume_once(timeout_s=0.2) == 2
    assert steps == ["keys K1", "keys K2", "apply K1", "apply K2"]


def test_events_of_the_handler_s_alone_types_commit_each_before_the_next_the_rest_together(
    sqlite_engine: Engine, bus_url: str
) -> None:
    bus = open_bus(bus_url)
    committed_before: list[int] = []

    def handler(conn: Connection, decoded: DecodedEvent) -> None:
        with sqlite_engine.connect() as other:
            committed_before.append(other.execute(sa.text("SELECT count(*) FROM inbox")).scalar_one())
        handle_event(conn, decoded)

    events = [application_event(f"T{n}") for n in range(5)]
    kinds = ["other", "other", events[2].type, "other", "other"]
    bus.publish(
        EXCHANGE,
        [
            Message(
                body=event.model_dump_json().encode(),
                routing_key="application.changed.x",
                message_id=event.id,
                type=kind,
            )
            for event, kind in zip(events, kinds, strict=True)
        ],
    )
    consumer = _consumer(
        sqlite_engine, bus, KeyedHandler(handler, lambda _c, _d: [], alone_types=frozenset({events[2].type}))
    )
    assert consumer.consume_once(timeout_s=0.2) == 5
    # The first two together, then the one alone, then the last two together.
    assert committed_before == [0, 0, 2, 3, 3]
    assert consumer.stats.handled == 5


def test_a_batch_with_more_keys_than_a_transaction_takes_is_applied_in_parts(
    sqlite_engine: Engine, bus_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumer_module, "MAX_KEYS_PER_TRANSACTION", 5)
    taken: list[set[str]] = []
    monkeypatch.setattr(consumer_module, "lock_keys", lambda _conn, keys: taken.append(set(keys)))
    bus = open_bus(bus_url)

    def keys(_conn: Connection, decoded: DecodedEvent) -> list[str]:
        return [f"case:{decoded.event.subject}", f"customer:{decoded.event.subject}"]

    _publish(bus, *(application_event(f"P{n}") for n in range(5)))
    consumer = _consumer(sqlite_engine, bus, KeyedHandler(handle_event, keys))
    assert consumer.consume_once(timeout_s=0.2) == 5
    # Two events' keys per transaction: a third would take six; the event ids are not keys of their own.
    assert [len(keys) for keys in taken] == [4, 4, 2]
    assert consumer.stats.handled == 5
    with sqlite_engine.connect() as conn:
        assert count_cases(conn) == 5


def test_a_key_not_granted_in_time_hands_the_batch_back_at_once(
    sqlite_engine: Engine, bus_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[set[str]] = []

    def refused(_conn: Connection, keys: object) -> None:
        attempts.append(set(keys))  # type: ignore[call-overload]
        raise LockTimeoutError("held elsewhere")

    monkeypatch.setattr(consumer_module, "lock_keys", refused)
    bus = open_bus(bus_url)
    _publish(bus, application_event("L1"), application_event("L2"))
    consumer = _consumer(sqlite_engine, bus)
    with pytest.raises(LockTimeoutError):
        consumer.consume_once(timeout_s=0.2)
    assert len(attempts) == 1, "not waited again event by event"
    assert bus.queue_depth(SPEC.queue) == 2


def test_the_deferred_step_follows_every_batch_and_idle_fetch_and_is_done_without_waiting(
    sqlite_engine: Engine, bus_url: str
) -> None:
    bus = open_bus(bus_url)
    _publish(bus, application_event("A1"))
    left = [2]
    steps: list[int] = []

    def deferred(engine: Engine) -> int:
        assert engine is sqlite_engine
        steps.append(left[0])
        found, left[0] = left[0], max(left[0] - 1, 0)
        return found

    waits: list[float] = []
    consumer = InboxConsumer(
        sqlite_engine, bus, queue=SPEC.queue, name=SPEC.name, handler=handle_event, deferred=deferred
    )
    fetch = consumer.consume_once

    def timed_fetch(*, max_messages: int = 200, timeout_s: float = 0.5) -> int:
        waits.append(timeout_s)
        return fetch(max_messages=max_messages, timeout_s=timeout_s)

    consumer.consume_once = timed_fetch  # type: ignore[method-assign]
    # The batch, then deferred work found; again without waiting for messages; then nothing at all.
    assert consumer.work_once(timeout_s=0.2) is True
    assert consumer.work_once(timeout_s=0.2) is True
    assert consumer.work_once(timeout_s=0.2) is False
    assert steps == [2, 1, 0]
    assert waits == [0.2, 0.0, 0.0]
    with sqlite_engine.connect() as conn:
        assert count_cases(conn) == 1
    # Nothing left: the next fetch waits for messages again.
    consumer.work_once(timeout_s=0.2)
    assert waits[-1] == 0.2


def test_while_the_queue_is_backed_up_the_deferred_step_waits_its_interval(
    sqlite_engine: Engine, bus_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = open_bus(bus_url)
    _publish(bus, *(application_event(f"A{n}") for n in range(4)))
    steps: list[str] = []
    consumer = InboxConsumer(
        sqlite_engine,
        bus,
        queue=SPEC.queue,
        name=SPEC.name,
        handler=handle_event,
        deferred=lambda _engine: steps.append("step") or 0,
    )
    # A batch of two is full: the step runs after the first, then not again within the interval.
    monkeypatch.setattr(consumer_module, "DEFERRED_EVERY_S", 3600.0)
    assert consumer.work_once(max_messages=2, timeout_s=0.2) is True
    assert consumer.work_once(max_messages=2, timeout_s=0.2) is True
    assert steps == ["step"]
    # The queue is empty: the step runs however soon.
    assert consumer.work_once(max_messages=2, timeout_s=0.2) is False
    assert steps == ["step", "step"]
