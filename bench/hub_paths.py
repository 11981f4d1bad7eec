"""The hub's own paths, measured with its own code: publish, durable (outbox and relay) and consume.

- Publish path: legacy record -> Router.route (mapping and pydantic validation) -> CloudEvent envelope ->
  confirmed publish through RabbitMQBus in batches, as the relay batches and pipelines them.
- Durable path: Ingestor.ingest (route, envelope, outbox row and subject sequence in one transaction per
  page) and OutboxRelay.relay_batches, run in two threads as the hub runs them; each stage is also measured
  alone.
- Consume path: InboxConsumer with inbox dedup applying the workflow consumer's handler
  (workflow.cases.handle_event), one transaction per fetched batch.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.records import envelope
from bench.statements import counting_statements
from bus.port import Confirmation, Message
from bus.rabbitmq import RabbitMQBus
from ground.errors import BusError
from pipeline.consumer import InboxConsumer
from pipeline.consumers import ConsumerSpec
from pipeline.ingest import Ingestor
from pipeline.outbox import OutboxRelay, pending_count
from pipeline.records import RawRecord
from pipeline.routing import Router
from store.schema import outbox

# What the hub uses: the relay's batch, the adapter's page, the consumer's fetch.
PUBLISH_BATCH = 500
INGEST_PAGE = 200
CONSUME_BATCH = 200
# How long an idle relay loop waits in the hub before it looks at the outbox again.
RELAY_IDLE_S = 0.05
_DRAIN_TIMEOUT_S = 600.0

Profile = Callable[[str], AbstractContextManager[None]]


def no_profile(_name: str) -> AbstractContextManager[None]:
    """The default profiler: none."""
    return nullcontext()


@dataclass(frozen=True)
class PublishFigures:
    """Events per second of the publish path and the size of what it published."""

    records: int
    events: int
    seconds: float
    mean_body_bytes: float


@dataclass(frozen=True)
class DurableFigures:
    """Events per second of the durable path: ingest and relay alone, and both together."""

    records: int
    events: int
    ingest_seconds: float
    relay_seconds: float
    pipeline_seconds: float
    ingest_statements: int
    relay_statements: int


@dataclass(frozen=True)
class ConsumeFigures:
    """Events per second of the workflow consumer over a prefilled queue."""

    events: int
    seconds: float
    handled: int
    duplicates: int
    failed: int
    statements: int


def _envelopes(router: Router, records: Sequence[RawRecord]) -> Iterator[tuple[str, Message]]:
    """Each record's events as (exchange, wire message), sequenced per subject as the outbox would."""
    sequences: dict[str, int] = {}
    for record in records:
        correlation_id = str(uuid.uuid4())
        for routed in router.route(record):
            subject_key = f"{routed.source}|{routed.subject}"
            sequences[subject_key] = sequences.get(subject_key, 0) + 1
            event = envelope(routed, sequences[subject_key], correlation_id)
            message = Message(
                body=event.model_dump_json().encode("utf-8"),
                routing_key=routed.routing_key,
                message_id=event.id,
                correlation_id=correlation_id,
                type=event.type,
            )
            yield routed.exchange, message


def measure_publish(
    router: Router, bus: RabbitMQBus, records: Sequence[RawRecord], profile: Profile = no_profile
) -> PublishFigures:
    """Route, envelope and publish every record with confirms, PUBLISH_BATCH messages per send().

    As the relay does, each batch is sent before the last one's confirms are awaited.
    """
    batches: dict[str, list[Message]] = {}
    in_flight: list[Confirmation] = []
    events = 0
    body_bytes = 0
    with profile("publish"):
        start = time.perf_counter()
        for exchange, message in _envelopes(router, records):
            batch = batches.setdefault(exchange, [])
            batch.append(message)
            events += 1
            body_bytes += len(message.body)
            if len(batch) >= PUBLISH_BATCH:
                sent = bus.send(exchange, batch)
                batches[exchange] = []
                for confirmation in in_flight:
                    confirmation.wait()
                in_flight = [sent]
        in_flight += [bus.send(exchange, batch) for exchange, batch in batches.items()]
        for confirmation in in_flight:
            confirmation.wait()
        seconds = time.perf_counter() - start
    return PublishFigures(len(records), events, seconds, body_bytes / events if events else 0.0)


def _pages(records: Sequence[RawRecord]) -> Iterator[Sequence[RawRecord]]:
    for start in range(0, len(records), INGEST_PAGE):
        yield records[start : start + INGEST_PAGE]


def _outbox_size(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one())


def _drain(relay: OutboxRelay, engine: Engine) -> None:
    deadline = time.monotonic() + _DRAIN_TIMEOUT_S
    while relay.relay_batches():
        if time.monotonic() > deadline:
            with engine.connect() as conn:
                left = pending_count(conn)
            raise BusError(f"the relay left {left} events unsent after {_DRAIN_TIMEOUT_S:.0f} s")


def measure_durable(
    fresh_engine: Callable[[], Engine],
    router: Router,
    bus_url: str,
    records: Sequence[RawRecord],
    purge: Callable[[], None],
    profile: Profile = no_profile,
) -> DurableFigures:
    """Ingest then relay alone on a fresh schema; then both at once on another fresh schema.

    purge empties the queues between the two runs, so the second run ends with exactly its events queued.
    """
    engine = fresh_engine()
    try:
        ingestor = Ingestor(engine, router)
        with profile("ingest"), counting_statements(engine) as ingest_statements:
            start = time.perf_counter()
            for page in _pages(records):
                ingestor.ingest(page)
            ingest_seconds = time.perf_counter() - start
        events = _outbox_size(engine)
        with RabbitMQBus(bus_url) as bus, profile("relay"), counting_statements(engine) as relay_statements:
            relay = OutboxRelay(engine, bus)
            start = time.perf_counter()
            _drain(relay, engine)
            relay_seconds = time.perf_counter() - start
    finally:
        engine.dispose()
    purge()
    engine = fresh_engine()
    try:
        pipeline_seconds = _run_pipeline(engine, router, bus_url, records)
        with engine.connect() as conn:
            left = pending_count(conn)
        if left:
            raise BusError(f"the durable pipeline left {left} events unsent")
    finally:
        engine.dispose()
    return DurableFigures(
        len(records),
        events,
        ingest_seconds,
        relay_seconds,
        pipeline_seconds,
        ingest_statements.statements,
        relay_statements.statements,
    )


def _run_pipeline(engine: Engine, router: Router, bus_url: str, records: Sequence[RawRecord]) -> float:
    """Seconds from the first ingest to the last confirmed relay, the two running in their own threads."""
    ingest_done = threading.Event()
    errors: list[BaseException] = []

    def ingest() -> None:
        try:
            ingestor = Ingestor(engine, router)
            for page in _pages(records):
                ingestor.ingest(page)
        except BaseException as exc:
            errors.append(exc)
        finally:
            ingest_done.set()

    def relay_loop() -> None:
        try:
            with RabbitMQBus(bus_url) as bus:
                relay = OutboxRelay(engine, bus)
                while True:
                    finished = ingest_done.is_set()
                    if relay.relay_batches() == 0:
                        if finished:
                            return
                        time.sleep(RELAY_IDLE_S)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ingest, name="bench-ingest"), threading.Thread(target=relay_loop)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(_DRAIN_TIMEOUT_S)
    seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    return seconds


def prefill(engine: Engine, router: Router, bus_url: str, records: Sequence[RawRecord]) -> int:
    """Put the records' events on the bus through the outbox, unmeasured; return how many."""
    ingestor = Ingestor(engine, router)
    for page in _pages(records):
        ingestor.ingest(page)
    events = _outbox_size(engine)
    with RabbitMQBus(bus_url) as bus:
        _drain(OutboxRelay(engine, bus), engine)
    return events


def measure_consume(
    engine: Engine,
    bus_url: str,
    spec: ConsumerSpec,
    events: int,
    profile: Profile = no_profile,
) -> ConsumeFigures:
    """Consume `events` events with the consumer's handler; the clock starts at the first fetch."""
    with RabbitMQBus(bus_url) as bus:
        consumer = InboxConsumer(engine, bus, queue=spec.queue, name=spec.name, handler=spec.handler)
        settled = 0
        deadline = time.monotonic() + _DRAIN_TIMEOUT_S
        with profile("consume"), counting_statements(engine) as statements:
            start = time.perf_counter()
            while settled < events:
                if time.monotonic() > deadline:
                    raise BusError(
                        f"the consumer settled {settled} of {events} events in {_DRAIN_TIMEOUT_S} s"
                    )
                settled += consumer.consume_once(max_messages=CONSUME_BATCH, timeout_s=1.0)
            seconds = time.perf_counter() - start
        stats = consumer.stats
    return ConsumeFigures(
        settled, seconds, stats.handled, stats.duplicates, stats.failed, statements.statements
    )
