"""The lease keeper and fencing on SQLite with a fixed clock: two instances, one holder per duty, and a paused
holder's late writes refused once its successor took over."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bus import open_bus
from bus.memory import discard_broker, unique_url
from bus.port import SETTLED, Binding, Bus, Confirmation, ExchangeSpec, Message, QueueSpec, Topology
from ground import clock
from ground.errors import BusUnavailableError, FencedOutError
from ground.settings import PROJECT_ROOT
from pipeline.config import load_hub_config
from pipeline.ingest import Ingestor
from pipeline.leases import LeaseKeeper
from pipeline.outbox import OutboxRelay, pending_count, stage_event
from pipeline.records import EventDraft, RawRecord, SourceBatch
from store.checkpoints import load_checkpoint
from store.leases import Fence, list_leases
from store.schema import checkpoints, outbox

from ..mappings.samples import application_record

TTL_S = 15.0
START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
EXCHANGE = "events"


@pytest.fixture
def fixed() -> Iterator[clock.FixedClock]:
    with clock.frozen_at(START) as fixed:
        yield fixed


@pytest.fixture
def bus_url() -> Iterator[str]:
    url = unique_url("leases")
    bus = open_bus(url)
    bus.declare(
        Topology(
            exchanges=(ExchangeSpec(EXCHANGE),),
            queues=(QueueSpec("tap", bindings=(Binding(EXCHANGE, "#"),)),),
        )
    )
    bus.close()
    yield url
    discard_broker(url)


def _keepers(engine: Engine, *duties: str) -> tuple[LeaseKeeper, LeaseKeeper]:
    return LeaseKeeper(engine, "hub-1", TTL_S, duties), LeaseKeeper(engine, "hub-2", TTL_S, duties)


def _expire(fixed: clock.FixedClock) -> None:
    fixed.advance(timedelta(seconds=TTL_S + 1))


def test_the_first_keeper_takes_every_free_duty_and_the_second_none(
    sqlite_engine: Engine, fixed: clock.FixedClock
) -> None:
    first, second = _keepers(sqlite_engine, "relay", "poll:marketing")
    first.keep()
    second.keep()

    assert first.held() == [Fence("relay", 1), Fence("poll:marketing", 1)]
    assert second.held() == []
    assert first.interval_s == TTL_S / 3


def test_a_keeper_that_renews_keeps_its_duty_past_the_first_ttl(
    sqlite_engine: Engine, fixed: clock.FixedClock
) -> None:
    first, second = _keepers(sqlite_engine, "relay")
    first.keep()
    for _ in range(6):
        fixed.advance(timedelta(seconds=first.interval_s))
        first.keep()
        second.keep()

    assert first.fence("relay") == Fence("relay", 1)
    assert second.fence("relay") is None


def test_a_lease_not_renewed_is_lost_locally_at_its_expiry_and_taken_over_with_the_next_token(
    sqlite_engine: Engine, fixed: clock.FixedClock
) -> None:
    first, second = _keepers(sqlite_engine, "relay")
    first.keep()
    _expire(fixed)

    assert first.fence("relay") is None
    second.keep()
    assert second.fence("relay") == Fence("relay", 2)
    first.keep()  # its renewal is refused: the token moved on
    assert first.held() == []
    with sqlite_engine.connect() as conn:
        assert [(lease.owner, lease.token) for lease in list_leases(conn)] == [("hub-2", 2)]


def test_release_at_stop_lets_the_other_take_over_without_waiting_for_expiry(
    sqlite_engine: Engine, fixed: clock.FixedClock
) -> None:
    first, second = _keepers(sqlite_engine, "relay", "monitor")
    first.keep()
    first.release_all()
    second.keep()

    assert first.held() == []
    assert second.held() == [Fence("relay", 2), Fence("monitor", 2)]


def test_a_singleton_step_runs_only_while_its_duty_is_held(
    sqlite_engine: Engine, fixed: clock.FixedClock
) -> None:
    first, second = _keepers(sqlite_engine)
    ran: list[tuple[str, Fence]] = []
    steps = [
        keeper.singleton("monitor", lambda fence, name=keeper.owner: ran.append((name, fence)) is None)
        for keeper in (first, second)
    ]
    first.keep()
    second.keep()

    assert [step() for step in steps] == [True, False]
    _expire(fixed)
    second.keep()
    assert [step() for step in steps] == [False, True]
    assert ran == [("hub-1", Fence("monitor", 1)), ("hub-2", Fence("monitor", 2))]


def test_a_fenced_out_step_gives_the_lease_up_locally_and_idles_without_raising(
    sqlite_engine: Engine, fixed: clock.FixedClock
) -> None:
    keeper = LeaseKeeper(sqlite_engine, "hub-1", TTL_S)

    def refused(fence: Fence) -> bool:
        raise FencedOutError(fence.duty, fence.token, fence.token + 1, "hub-2")

    step = keeper.singleton("drain", refused)
    keeper.keep()

    assert step() is False
    assert keeper.fence("drain") is None


class PausingBus:
    """A bus whose send stands for a long pause of its instance: the clock moves past the lease and the
    other instance's keeper takes the duty over before the send returns."""

    def __init__(self, bus: Bus, fixed: clock.FixedClock, successor: LeaseKeeper) -> None:
        self._bus = bus
        self._fixed = fixed
        self._successor = successor

    def send(self, exchange: str, messages: Sequence[Message]) -> Confirmation:
        confirmation = self._bus.send(exchange, messages)
        _expire(self._fixed)
        self._successor.keep()
        return confirmation

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)


def _draft(subject: str) -> EventDraft:
    return EventDraft(
        event_type="cn.yekuo.thing.changed.v1",
        source="/test/thing",
        subject=subject,
        dataschema="urn:yekuo:schema:thing.v1",
        data={"subject": subject},
        exchange=EXCHANGE,
        routing_key="thing",
    )


def test_a_paused_relays_mark_sent_is_refused_and_the_successor_marks_the_events_with_its_token(
    sqlite_engine: Engine, fixed: clock.FixedClock, bus_url: str
) -> None:
    with sqlite_engine.begin() as conn:
        for subject in ("a", "b", "c"):
            stage_event(conn, _draft(subject), correlation_id="c")
    first, second = _keepers(sqlite_engine, "relay")
    first.keep()
    paused = OutboxRelay(sqlite_engine, PausingBus(open_bus(bus_url), fixed, second))  # type: ignore[arg-type]
    old = first.fence("relay")
    assert old is not None

    with pytest.raises(FencedOutError):
        paused.relay_batches(old)
    with sqlite_engine.connect() as conn:
        assert pending_count(conn) == 3

    successor = OutboxRelay(sqlite_engine, open_bus(bus_url))
    new = second.fence("relay")
    assert new == Fence("relay", 2)
    assert successor.relay_batches(new) == 3
    with sqlite_engine.connect() as conn:
        assert conn.execute(sa.select(outbox.c.fence, sa.func.count()).group_by(outbox.c.fence)).all() == [
            (2, 3)
        ]
    # The paused relay's batch reached the bus before its marks were refused: the consumers' inboxes
    # absorb those copies. Once back, it is refused before it publishes anything more.
    tap = open_bus(bus_url)
    assert len(tap.fetch("tap", 100, 0.05)) == 6
    with sqlite_engine.begin() as conn:
        stage_event(conn, _draft("d"), correlation_id="c")
    with pytest.raises(FencedOutError):
        paused.relay_batches(old, lambda: first.fence("relay") == old)
    assert tap.fetch("tap", 100, 0.05) == []


def test_an_idle_relay_tick_neither_writes_nor_locks_the_lease_row(
    sqlite_engine: Engine, fixed: clock.FixedClock, bus_url: str
) -> None:
    keeper, _ = _keepers(sqlite_engine, "relay")
    keeper.keep()
    fence = keeper.fence("relay")
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    sa.event.listen(sqlite_engine, "before_cursor_execute", record)
    try:
        assert OutboxRelay(sqlite_engine, open_bus(bus_url)).relay_batches(fence) == 0
    finally:
        sa.event.remove(sqlite_engine, "before_cursor_execute", record)
    assert statements
    assert not any("duty_leases" in statement for statement in statements)


class ExpiringBus:
    """A bus whose send outlasts the lease: the clock moves past its expiry before send returns, and
    then (failing) the send raises a lost connection."""

    def __init__(self, bus: Bus, fixed: clock.FixedClock, *, failing: bool = False) -> None:
        self._bus = bus
        self._fixed = fixed
        self._failing = failing

    def send(self, exchange: str, messages: Sequence[Message]) -> Confirmation:
        confirmation = SETTLED if self._failing else self._bus.send(exchange, messages)
        _expire(self._fixed)
        if self._failing:
            raise BusUnavailableError("connection lost")
        return confirmation

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)


def test_a_relay_whose_lease_ran_out_by_its_clock_publishes_no_further_group(
    sqlite_engine: Engine, fixed: clock.FixedClock, bus_url: str
) -> None:
    bus = open_bus(bus_url)
    bus.declare(
        Topology(
            exchanges=(ExchangeSpec("other"),),
            queues=(QueueSpec("other-tap", bindings=(Binding("other", "#"),)),),
        )
    )
    with sqlite_engine.begin() as conn:
        stage_event(conn, _draft("a"), correlation_id="c")
        stage_event(conn, dataclasses.replace(_draft("b"), exchange="other"), correlation_id="c")
    keeper, _ = _keepers(sqlite_engine, "relay")
    keeper.keep()
    fence = keeper.fence("relay")
    assert fence is not None
    relay = OutboxRelay(sqlite_engine, ExpiringBus(open_bus(bus_url), fixed))  # type: ignore[arg-type]

    with pytest.raises(FencedOutError):
        relay.relay_batches(fence, lambda: keeper.fence("relay") == fence)

    assert len(bus.fetch("tap", 100, 0.05)) == 1
    assert bus.fetch("other-tap", 100, 0.05) == []
    with sqlite_engine.connect() as conn:
        assert pending_count(conn) == 1


def test_a_bus_failure_reaches_the_caller_even_when_the_fence_refuses_recording_it(
    sqlite_engine: Engine, fixed: clock.FixedClock, bus_url: str
) -> None:
    with sqlite_engine.begin() as conn:
        stage_event(conn, _draft("a"), correlation_id="c")
    first, second = _keepers(sqlite_engine, "relay")
    first.keep()
    old = first.fence("relay")
    assert old is not None

    class TakenOverBus(ExpiringBus):
        def send(self, exchange: str, messages: Sequence[Message]) -> Confirmation:
            try:
                return super().send(exchange, messages)
            finally:
                second.keep()

    relay = OutboxRelay(sqlite_engine, TakenOverBus(open_bus(bus_url), fixed, failing=True))  # type: ignore[arg-type]

    # The caller (the hub) closes the broken connection on a bus error, so that must be what it sees.
    with pytest.raises(BusUnavailableError):
        relay.relay_batches(old)
    with sqlite_engine.connect() as conn:
        assert conn.execute(sa.select(outbox.c.attempts, outbox.c.fence)).one() == (0, None)


def test_a_failed_send_reaches_the_caller_when_the_fence_refuses_marking_the_batch_before_it(
    sqlite_engine: Engine, fixed: clock.FixedClock, bus_url: str
) -> None:
    with sqlite_engine.begin() as conn:
        for subject in ("a", "b"):
            stage_event(conn, _draft(subject), correlation_id="c")
    first, second = _keepers(sqlite_engine, "relay")
    first.keep()
    old = first.fence("relay")
    assert old is not None
    sends: list[str] = []

    class FailingSecondSendBus(ExpiringBus):
        """The first batch goes out; sending the second outlasts the lease, which the other instance takes
        over, and then loses the connection."""

        def send(self, exchange: str, messages: Sequence[Message]) -> Confirmation:
            sends.append(exchange)
            if len(sends) == 1:
                return self._bus.send(exchange, messages)
            try:
                return super().send(exchange, messages)
            finally:
                second.keep()

    relay = OutboxRelay(
        sqlite_engine,
        FailingSecondSendBus(open_bus(bus_url), fixed, failing=True),  # type: ignore[arg-type]
        batch_size=1,
    )

    with pytest.raises(BusUnavailableError):
        relay.relay_batches(old)
    assert sends == [EXCHANGE, EXCHANGE]
    with sqlite_engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(outbox.c.sent_at, outbox.c.attempts, outbox.c.fence).order_by(outbox.c.id)
            ).all()
            == [(None, 0, None)] * 2
        )


def _application(no: str) -> RawRecord:
    return RawRecord("marketing", "application", no, application_record(APP_NO=no), {"key": no})


class PausingSource:
    """A source whose poll pauses its instance past the lease while the other one takes the poller over."""

    name = "scripted"

    def __init__(self, fixed: clock.FixedClock, successor: LeaseKeeper, pause: bool) -> None:
        self._fixed = fixed
        self._successor = successor
        self.pause = pause

    def poll(self, checkpoint: Mapping[str, Any] | None) -> SourceBatch:
        after = int((checkpoint or {}).get("after", 0))
        if self.pause:
            _expire(self._fixed)
            self._successor.keep()
        return SourceBatch([_application(f"A{after + 1}")], {"after": after + 1}, False)


def test_a_paused_pollers_events_and_checkpoint_roll_back_and_the_successors_stand(
    sqlite_engine: Engine, fixed: clock.FixedClock
) -> None:
    router = load_hub_config(PROJECT_ROOT).router
    first, second = _keepers(sqlite_engine, "poll:scripted")
    first.keep()
    source = PausingSource(fixed, second, pause=True)
    old = first.fence("poll:scripted")
    assert old is not None

    with pytest.raises(FencedOutError):
        Ingestor(sqlite_engine, router).poll_source(source, old)
    with sqlite_engine.connect() as conn:
        assert load_checkpoint(conn, "scripted") is None
        assert pending_count(conn) == 0

    source.pause = False
    Ingestor(sqlite_engine, router).poll_source(source, second.fence("poll:scripted"))
    with sqlite_engine.connect() as conn:
        assert conn.execute(sa.select(checkpoints.c.value, checkpoints.c.fence)).one() == ({"after": 1}, 2)
        assert conn.execute(sa.select(outbox.c.subject)).scalars().all() == ["A1"]
