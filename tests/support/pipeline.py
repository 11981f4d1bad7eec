"""Drives the real hub pipeline step by step: source -> ingest -> outbox -> relay -> bus -> consumer.

One thread, no sleeps: a test says when to poll, relay and consume, and reads the results from the
database, so what it checks does not depend on timing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.pms.state import settled
from bus import open_bus
from bus.memory import discard_broker, unique_url
from pipeline.config import HubConfig
from pipeline.consumer import InboxConsumer
from pipeline.consumers import ConsumerSpec, consumer_topology
from pipeline.ingest import Ingestor
from pipeline.outbox import OutboxRelay
from pipeline.records import PollingSource
from store.checkpoints import load_checkpoint
from store.schema import outbox
from yekuo.consumers import CONSUMERS

GRID_CONSUMER: ConsumerSpec = next(spec for spec in CONSUMERS if spec.name == "grid")
# The grid consumer announces what it stored to the feasibility checks; their queue takes those notices
# (left unread here), so the relay can publish them.
FEASIBILITY_CONSUMER: ConsumerSpec = next(spec for spec in CONSUMERS if spec.name == "feasibility")


class Pipeline:
    """A polling source wired through the hub's ingest, outbox relay, in-process bus and grid consumer."""

    def __init__(self, engine: Engine, source: PollingSource, config: HubConfig, bus_url: str) -> None:
        self.engine = engine
        self.source = source
        self.ingestor = Ingestor(engine, config.router)
        exchanges = sorted({route.exchange for route in config.routes})
        declaring = open_bus(bus_url)
        declaring.declare(consumer_topology(exchanges, [GRID_CONSUMER, FEASIBILITY_CONSUMER]))
        declaring.close()
        self.relay = OutboxRelay(engine, open_bus(bus_url))
        self.consumer = InboxConsumer(
            engine,
            open_bus(bus_url),
            queue=GRID_CONSUMER.queue,
            name=GRID_CONSUMER.name,
            handler=GRID_CONSUMER.handler,
        )

    def checkpoint(self) -> dict[str, Any] | None:
        """The source's committed checkpoint."""
        with self.engine.connect() as conn:
            return load_checkpoint(conn, self.source.name)

    def poll_until_settled(self, max_polls: int = 100_000) -> int:
        """Poll until a poll finds nothing and the PMS checkpoint is settled; return the number of polls."""
        for polls in range(1, max_polls + 1):
            before = self.ingestor.stats.records
            more = self.ingestor.poll_source(self.source)
            if not more and self.ingestor.stats.records == before and settled(self.checkpoint()):
                return polls
        raise AssertionError(f"the source did not settle within {max_polls} polls")

    def deliver(self) -> int:
        """Relay every committed event and let the grid consumer handle all of them; return how many."""
        while self.relay.relay_batches():
            pass
        handled = 0
        while settled_now := self.consumer.consume_once(max_messages=500, timeout_s=0.05):
            handled += settled_now
        return handled

    def sync(self) -> int:
        """Poll until settled, then deliver; return the number of events delivered."""
        self.poll_until_settled()
        return self.deliver()

    def close(self) -> None:
        self.relay.bus.close()
        self.consumer.bus.close()


@contextmanager
def pipeline(engine: Engine, source: PollingSource, config: HubConfig) -> Iterator[Pipeline]:
    """A Pipeline on a private in-process broker, closed and discarded afterwards."""
    bus_url = unique_url("pms")
    wired = Pipeline(engine, source, config, bus_url)
    try:
        yield wired
    finally:
        wired.close()
        discard_broker(bus_url)


def last_outbox_id(engine: Engine) -> int:
    """The id of the newest outbox event (0 when empty)."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(outbox.c.id), 0))).scalar_one())


def subject_counts(engine: Engine, event_type: str, *, after_id: int = 0) -> Counter[str]:
    """How many outbox events of a type each subject got after an outbox id."""
    query = (
        sa.select(outbox.c.subject, sa.func.count())
        .where(outbox.c.event_type == event_type, outbox.c.id > after_id)
        .group_by(outbox.c.subject)
    )
    with engine.connect() as conn:
        return Counter({subject: int(count) for subject, count in conn.execute(query).tuples()})


def event_types(engine: Engine, *, after_id: int = 0) -> set[str]:
    """The types of the outbox events after an id."""
    with engine.connect() as conn:
        return set(
            conn.execute(sa.select(outbox.c.event_type).where(outbox.c.id > after_id).distinct()).scalars()
        )
