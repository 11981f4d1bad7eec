"""Drives the hub's marketing path step by step: simulator -> SOAP -> ingest -> outbox -> bus -> consumers.

One thread, no sleeps: the test says when to poll, relay and consume, and reads the outcome from the
database. A poll that fails for a transient reason is repeated, as the hub's loop would after its backoff.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.marketing.breaker import CircuitBreaker
from adapters.marketing.client import CallPolicy, MarketingClient
from adapters.marketing.source import MarketingSource
from adapters.marketing.writer import MarketingWriter, WriterPolicy
from bus import open_bus
from bus.memory import discard_broker, unique_url
from ground.errors import SourceRejectedError, SourceUnavailableError
from ground.settings import PROJECT_ROOT
from pipeline.config import load_hub_config
from pipeline.consumer import InboxConsumer
from pipeline.consumers import consumer_topology
from pipeline.ingest import Ingestor
from pipeline.outbox import OutboxRelay
from store.schema import case_events, cases, outbox, parked, timeline
from yekuo.consumers import CONSUMERS

# Retries without waiting, and a breaker that stays closed unless a test asks for one.
FAST = CallPolicy(attempts=3, initial_backoff_s=0, max_backoff_s=0, jitter_s=0)
# The consumers of what the marketing path publishes; every routing key it publishes is bound by one.
MARKETING_CONSUMERS = ("workflow", "case_feed", "marketing_writeback")


def fast_client(
    wsdl_url: str, *, timeout_s: float = 2.0, breaker: CircuitBreaker | None = None
) -> MarketingClient:
    """A client that retries at once, with a breaker that does not open within a test."""
    return MarketingClient(
        wsdl_url,
        timeout_s=timeout_s,
        policy=FAST,
        breaker=breaker or CircuitBreaker("marketing", failure_threshold=1000),
        sleep=lambda _: None,
    )


class MarketingPipeline:
    """The marketing source and writer wired through ingest, the outbox relay, an in-process bus and the
    workflow, case-feed and write-back consumers."""

    def __init__(
        self,
        engine: Engine,
        client: MarketingClient,
        bus_url: str,
        *,
        page_size: int = 15,
        consumers: tuple[str, ...] = MARKETING_CONSUMERS,
    ) -> None:
        self.engine = engine
        self.client = client
        self.source = MarketingSource(client.wsdl_url, page_size=page_size, client=client, engine=engine)
        self.writer = MarketingWriter(
            engine, client, policy=WriterPolicy(initial_backoff_s=0, max_backoff_s=0, lease_s=60)
        )
        config = load_hub_config(PROJECT_ROOT)
        self.ingestor = Ingestor(engine, config.router)
        specs = [spec for spec in CONSUMERS if spec.name in consumers]
        exchanges = sorted({route.exchange for route in config.routes})
        declaring = open_bus(bus_url)
        declaring.declare(consumer_topology(exchanges, specs))
        declaring.close()
        self.relay = OutboxRelay(engine, open_bus(bus_url))
        self.consumers = [
            InboxConsumer(engine, open_bus(bus_url), queue=spec.queue, name=spec.name, handler=spec.handler)
            for spec in specs
        ]
        self.transient_failures: list[str] = []
        self.refusals: list[str] = []

    def poll_until_done(self, max_polls: int = 1000) -> int:
        """Poll until the source has nothing more; repeat polls that failed; return the number of polls."""
        for polls in range(1, max_polls + 1):
            try:
                more = self.ingestor.poll_source(self.source)
            except SourceUnavailableError as exc:
                self.transient_failures.append(str(exc))
                continue
            except SourceRejectedError as exc:
                self.refusals.append(str(exc))
                continue
            if not more:
                return polls
        raise AssertionError(f"the source did not finish within {max_polls} polls")

    def deliver(self) -> int:
        """Relay every committed event and let every consumer handle all of them; return how many."""
        handled = 0
        while True:
            while self.relay.relay_batches():
                pass
            settled = sum(
                consumer.consume_once(max_messages=500, timeout_s=0.02) for consumer in self.consumers
            )
            handled += settled
            if not settled:
                return handled

    def sync(self) -> int:
        """Poll until done, then deliver everything."""
        self.poll_until_done()
        return self.deliver()

    def write_until_idle(self, max_steps: int = 100) -> int:
        """Run the writer until it finds nothing due; return the number of steps."""
        for steps in range(1, max_steps + 1):
            try:
                busy = self.writer.step()
            except SourceUnavailableError as exc:
                self.transient_failures.append(str(exc))
                continue
            if not busy:
                return steps
        raise AssertionError(f"the writer was still busy after {max_steps} steps")

    def close(self) -> None:
        self.relay.bus.close()
        for consumer in self.consumers:
            consumer.bus.close()


@contextmanager
def marketing_pipeline(
    engine: Engine,
    client: MarketingClient,
    *,
    page_size: int = 15,
    consumers: tuple[str, ...] = MARKETING_CONSUMERS,
) -> Iterator[MarketingPipeline]:
    """A MarketingPipeline on a private in-process broker, closed and discarded afterwards."""
    bus_url = unique_url("marketing")
    wired = MarketingPipeline(engine, client, bus_url, page_size=page_size, consumers=consumers)
    try:
        yield wired
    finally:
        wired.close()
        discard_broker(bus_url)


def case_numbers(engine: Engine) -> list[str]:
    """Application numbers of every case."""
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(cases.c.application_no)).scalars())


def application_events(engine: Engine) -> Counter[str]:
    """How many application-changed events the outbox holds per application."""
    with engine.connect() as conn:
        bodies = conn.execute(
            sa.select(outbox.c.body).where(outbox.c.event_type == "cn.yekuo.application.changed.v1")
        ).scalars()
        return Counter(json.loads(bytes(body))["subject"] for body in bodies)


def kept_case_events(engine: Engine) -> Counter[str]:
    """How many events each case was built from."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(case_events.c.application_no)).scalars()
        return Counter(rows)


def timeline_entries(engine: Engine) -> Counter[str]:
    """How many timeline entries each case has."""
    with engine.connect() as conn:
        return Counter(conn.execute(sa.select(timeline.c.application_no)).scalars())


def parked_records(engine: Engine) -> list[dict[str, Any]]:
    """Every parked message, oldest first."""
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(sa.select(parked).order_by(parked.c.id))]
