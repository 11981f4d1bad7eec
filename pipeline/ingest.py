"""Ingest: raw legacy records through the route table into the outbox, with the source checkpoint.

Each poll commits in one transaction: the canonical events of the good records, the parked entries of
the bad ones, and the checkpoint after them. A crash before the commit repeats the poll from the old
checkpoint; nothing in between is lost or published half.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection, Engine

from ground.errors import InvalidRecordError
from ground.logs import correlated
from ground.metrics import INGEST_INVALID, INGEST_RECORDS
from pipeline.outbox import stage_events
from pipeline.records import EventDraft, PollingSource, RawRecord
from pipeline.routing import Router
from store.checkpoints import load_checkpoint, save_checkpoint
from store.leases import Fence
from store.parking import park

log = logging.getLogger(__name__)


@dataclass
class IngestStats:
    """Counters of one ingest pipeline since it started."""

    records: int = 0
    events: int = 0
    invalid: int = 0
    polls: int = 0


@dataclass
class IngestOutcome:
    """What one ingest call staged: how many outbox events, and the ids of the records it parked."""

    events: int = 0
    parked_ids: list[int] = field(default_factory=list)


class Ingestor:
    """Routes raw records to outbox events, parking each record that cannot be mapped."""

    def __init__(self, engine: Engine, router: Router) -> None:
        self._engine = engine
        self._router = router
        self.stats = IngestStats()

    def poll_source(self, source: PollingSource, fence: Fence | None = None) -> bool:
        """Poll a source once from its committed checkpoint; return whether it has more right away.

        With fence (the poller's lease), the events and the checkpoint commit only while its token is
        current; otherwise FencedOutError, and nothing of the poll is kept.
        """
        with self._engine.connect() as conn:
            checkpoint = load_checkpoint(conn, source.name)
        batch = source.poll(checkpoint)
        with self._engine.begin() as conn:
            # The checkpoint first: its fence check then holds the lease for the whole transaction.
            save_checkpoint(conn, source.name, dict(batch.checkpoint), fence=fence)
            if batch.settle is not None:
                batch.settle(conn)
            self._stage(conn, batch.records)
        self.stats.polls += 1
        return batch.has_more

    def ingest(self, records: Iterable[RawRecord], *, conn: Connection | None = None) -> IngestOutcome:
        """Route records pushed by a legacy system (no checkpoint) into the outbox in one transaction.

        With conn, the records join the caller's transaction (an operator's replay commits them together
        with the parked entry's new status).
        """
        if conn is not None:
            return self._stage(conn, records)
        with self._engine.begin() as own:
            return self._stage(own, records)

    def _stage(self, conn: Connection, records: Iterable[RawRecord]) -> IngestOutcome:
        outcome = IngestOutcome()
        drafts: list[tuple[EventDraft, str]] = []
        for record in records:
            self.stats.records += 1
            INGEST_RECORDS.labels(record.system).inc()
            correlation_id = str(uuid.uuid4())
            with correlated(correlation_id):
                drafts.extend(self._route_record(conn, record, correlation_id, outcome))
        # One batch for the whole transaction: the outbox cost is per batch, not per event.
        stage_events(conn, drafts)
        self.stats.events += len(drafts)
        outcome.events += len(drafts)
        return outcome

    def _route_record(
        self, conn: Connection, record: RawRecord, correlation_id: str, outcome: IngestOutcome
    ) -> list[tuple[EventDraft, str]]:
        """The record's events as outbox drafts; none when the record is parked instead."""
        routed = route_or_park(conn, self._router, record, correlation_id)
        if routed.parked is not None:
            self.stats.invalid += 1
            outcome.parked_ids.append(routed.parked.parked_id)
            # The reason can quote the rejected value, which may be personal data: it stays in the
            # (encrypted) parked entry, and the log names only the kind of failure and the field.
            log.warning(
                "parked %s/%s %s as #%d: %s%s",
                record.system,
                record.record_type,
                record.key,
                routed.parked.parked_id,
                routed.parked.reason_code,
                f" in field {routed.parked.field}" if routed.parked.field else "",
            )
        return routed.drafts


@dataclass(frozen=True)
class ParkedRecord:
    """Where a record that could not be routed was parked, and why (kind and field, never the value)."""

    parked_id: int
    reason_code: str
    field: str | None


@dataclass(frozen=True)
class RoutedRecord:
    """A record's outbox drafts, or the entry it was parked as instead."""

    drafts: list[tuple[EventDraft, str]]
    parked: ParkedRecord | None = None


def route_or_park(
    conn: Connection, router: Router, record: RawRecord, correlation_id: str, *, where: str = ""
) -> RoutedRecord:
    """Route one raw record to outbox drafts, or park it as invalid in the caller's transaction.

    where prefixes the parked reason (a file and line, for instance).
    """
    try:
        routed = router.route(record)
    except InvalidRecordError as exc:
        parked_id = park(
            conn,
            kind="invalid",
            reason_code=exc.reason_code,
            reason=f"{where}{exc}",
            payload=dict(record.payload),
            source_system=record.system,
            record_type=record.record_type,
            record_key=record.key,
            position=dict(record.position),
        )
        INGEST_INVALID.labels(record.system, exc.reason_code).inc()
        return RoutedRecord([], ParkedRecord(parked_id, exc.reason_code, getattr(exc, "field", None)))
    return RoutedRecord([(draft, correlation_id) for draft in routed])
