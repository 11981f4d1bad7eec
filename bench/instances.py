"""One hub instance against two on the same machine: the cost of coordination, not a speed-up.

Each instance is a real Hub in a process of its own, on the benchmark's schema and queues: the outbox relay
runs under its duty lease (so with two instances one of them relays), and the workflow consumers of both
compete for the one quorum queue, each batch taking its cases' keyed locks. The parent process stages the
legacy records into the outbox as a source would, and the clock runs from the first record staged to the
last event applied. Both runs must end with the same cases, every event applied once and nothing parked;
otherwise the figure is not reported.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.synchronize import Event as ProcessEvent

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.env import BENCH_EXCHANGE
from bench.records import bench_router
from ground.errors import BusError
from ground.settings import PROJECT_ROOT, ClusterSettings, Settings
from pipeline.config import load_hub_config
from pipeline.consumers import ConsumerSpec
from pipeline.ingest import Ingestor
from pipeline.records import RawRecord
from pipeline.routing import Router
from store.parking import count_parked
from store.schema import cases, inbox, outbox

_SETTLE_TIMEOUT_S = 600.0
_START_TIMEOUT_S = 120.0
# Short, so that the instance that loses the race for the relay does not hold the run up at the start.
_LEASE_TTL_S = 5.0
_PAGE = 200


@dataclass(frozen=True)
class InstancesFigures:
    """One run: how many instances, how many events from first staged to last applied, and the outcome."""

    instances: int
    events: int
    seconds: float
    cases_digest: str
    relay_tokens: list[int]


def _instance_settings(amqp_url: str, db_url: str, name: str) -> Settings:
    return Settings(
        bus_url=amqp_url,
        db_url=db_url,
        exchange=BENCH_EXCHANGE,
        cluster=ClusterSettings(instance_name=name, lease_ttl_s=_LEASE_TTL_S),
    )


def _run_instance(
    amqp_url: str, db_url: str, name: str, consumer: str, ready: ProcessEvent, stop: ProcessEvent
) -> None:
    """A hub with no legacy source of its own: the relay and the workflow consumer, until stop is set."""
    # Imported here: the handlers are built in the child (they do not pickle), and the parent builds no hub.
    from bench.run import bench_consumers
    from yekuo.hub import Hub

    config = load_hub_config(PROJECT_ROOT)
    routes = tuple(replace(route, exchange=BENCH_EXCHANGE) for route in config.routes)
    hub = Hub(
        _instance_settings(amqp_url, db_url, name),
        sources=[],
        config=replace(config, routes=routes, router=Router(routes, config.mappings)),
        consumers=[spec for spec in bench_consumers() if spec.name == consumer],
    )
    hub.start()
    ready.set()
    stop.wait()
    hub.stop()


def _count(engine: Engine, statement: sa.Select[tuple[int]]) -> int:
    with engine.connect() as conn:
        return int(conn.execute(statement).scalar_one())


def _cases_digest(engine: Engine) -> str:
    """The cases as the workflow left them, reduced to one hash that two runs can compare."""
    digest = hashlib.sha256()
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(cases.c.application_no, cases.c.status, cases.c.stage, cases.c.event_count).order_by(
                cases.c.application_no
            )
        )
        for row in rows:
            digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()[:16]


def measure_instances(
    fresh_engine: Callable[[], Engine],
    amqp_url: str,
    db_url: str,
    workflow: ConsumerSpec,
    records: Sequence[RawRecord],
    instances: int,
) -> InstancesFigures:
    """Start `instances` hubs, stage the records, and time until the workflow applied every event."""
    engine = fresh_engine()
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    readies = [context.Event() for _ in range(instances)]
    processes = [
        context.Process(
            target=_run_instance,
            args=(amqp_url, db_url, f"bench-{number + 1}", workflow.name, ready, stop),
            name=f"bench-instance-{number + 1}",
            daemon=True,
        )
        for number, ready in enumerate(readies)
    ]
    try:
        for process in processes:
            process.start()
        for ready in readies:
            if not ready.wait(_START_TIMEOUT_S):
                raise BusError(f"a hub instance did not start within {_START_TIMEOUT_S:.0f} s")
        ingestor = Ingestor(engine, bench_router(PROJECT_ROOT, BENCH_EXCHANGE))
        start = time.perf_counter()
        for first in range(0, len(records), _PAGE):
            ingestor.ingest(records[first : first + _PAGE])
        events = _count(engine, sa.select(sa.func.count()).select_from(outbox))
        applied = sa.select(sa.func.count()).select_from(inbox).where(inbox.c.consumer == workflow.name)
        deadline = time.monotonic() + _SETTLE_TIMEOUT_S
        while (done := _count(engine, applied)) < events:
            if time.monotonic() > deadline:
                raise BusError(f"{instances} instance(s) applied {done} of {events} events")
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        # The relay marks a batch sent after its confirms, which can come after the consumer applied it.
        while _count(
            engine, sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        ):
            if time.monotonic() > deadline:
                raise BusError(f"{instances} instance(s) left events unmarked in the outbox")
            time.sleep(0.05)
        with engine.connect() as conn:
            parked = count_parked(conn)
            relay_tokens = sorted(
                int(fence) for fence in conn.execute(sa.select(outbox.c.fence).distinct()).scalars()
            )
        if parked:
            raise BusError(f"{instances} instance(s) parked {parked} events")
        return InstancesFigures(instances, events, seconds, _cases_digest(engine), relay_tokens)
    finally:
        stop.set()
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
        engine.dispose()
