"""File ingest: the files of a file-fed source through the route table into the outbox, one transaction each.

For every file the feed hands over (see pipeline.records.FileFeed; the dispatch drop folder is one):

1. A file the feed refuses unread (too large) goes to error/.
2. Content already published (the dispatch_files table, by any hub process) is a duplicate: the file goes
   to done/ and nothing is published.
3. One database transaction: the content hash is inserted first (a concurrent duplicate in another process
   waits on it, then fails and is treated as a duplicate), then the file is streamed: each good row goes
   through route_or_park like a polled or pushed record (its events into the outbox, or parked as invalid
   with the file and the line), each broken row is parked on the invalid channel with the file, the line
   and the reason, rows of record types without a route are counted and skipped.
4. A file-level problem (MalformedInputError: an unreadable encoding, a truncated file, a file that changed
   while it was read) rolls the transaction back, so none of its rows is published, and the file goes to
   error/ with a reason. After a commit the file goes to done/.

Every outcome (the FileOutcome, its dispatch_file_log row, the log line and the reason) says what the file
was read as (see pipeline.records.ReadAs) beside the counts of rows, events, parked and skipped rows.

Memory stays bounded: the feed streams, and rows go to the database as they are read. Progress is logged
every ``progress_every_rows`` rows. Any other failure (the hub database is down, say) hands the file back
to the feed for a retry; its rolled-back transaction left nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Generic

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ground.errors import MalformedInputError
from ground.logs import correlated
from pipeline.ingest import route_or_park
from pipeline.outbox import stage_events
from pipeline.records import BrokenRow, EventDraft, F, FileFeed, RawRecord, ReadAs, SkippedRow
from pipeline.routing import Router
from store.loads import FileOutcome, log_outcome, published_file, record_published
from store.parking import park

log = logging.getLogger(__name__)

# Outbox drafts gathered before they are staged together.
STAGE_BATCH = 500


@dataclass
class FileIngestStats:
    """What a file ingest did since it started."""

    files: int = 0
    published: int = 0
    duplicates: int = 0
    errors: int = 0
    rows: int = 0
    events: int = 0
    invalid: int = 0


@dataclass
class _Counts:
    rows: int = 0
    events: int = 0
    invalid: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def onto(self, outcome: FileOutcome, encoding: ReadAs | None) -> FileOutcome:
        """The outcome with the rows read and the encoding they were read in."""
        if encoding is None:
            return replace(outcome, rows=self.rows)
        return replace(
            outcome,
            rows=self.rows,
            encoding=encoding.name,
            encoding_source=encoding.source,
            encoding_declared=encoding.declared,
        )


class _Duplicate(Exception):
    """The content hash was published while this file was being read."""


def worker_id() -> str:
    """This process as host:pid, recorded with every file it finishes."""
    return f"{socket.gethostname()}:{os.getpid()}"


class FileIngestor(Generic[F]):
    """The hub loop over a file feed: each step() takes at most one file through to done/ or error/."""

    def __init__(
        self, engine: Engine, router: Router, feed: FileFeed[F], *, progress_every_rows: int = 100_000
    ) -> None:
        self._engine = engine
        self._router = router
        self.feed = feed
        self._progress_every = progress_every_rows
        self._routed: dict[str, bool] = {}
        self.worker = worker_id()
        self.stats = FileIngestStats()

    @property
    def name(self) -> str:
        """The feed's system name."""
        return self.feed.name

    def step(self) -> bool:
        """Take one file if the feed has one ready; return whether it had."""
        file = self.feed.next_file()
        if file is None:
            return False
        self.take(file)
        return True

    def take(self, file: F) -> FileOutcome:
        """Take a file through to done/ or error/ and return what happened to it."""
        self.stats.files += 1
        correlation_id = str(uuid.uuid4())
        with correlated(correlation_id):
            try:
                outcome = self._take(file, correlation_id)
            except BaseException:
                self.feed.release(file)
                raise
        if outcome.outcome == "published":
            self.stats.published += 1
        elif outcome.outcome == "duplicate":
            self.stats.duplicates += 1
        else:
            self.stats.errors += 1
        return outcome

    def _take(self, file: F, correlation_id: str) -> FileOutcome:
        base = FileOutcome(
            file_name=file.name,
            stored_name=file.stored_name,
            outcome="",
            sha256=None,
            size_bytes=file.size_bytes,
        )
        refusal = file.refusal()
        if refusal is not None:
            return self._fail(file, base, refusal)
        sha256 = file.sha256()
        base = replace(base, sha256=sha256)
        with self._engine.connect() as conn:
            existing = published_file(conn, sha256)
        if existing is not None:
            return self._duplicate(file, base, existing)
        file_format = file.file_format()
        counts = _Counts()
        started = time.monotonic()
        try:
            with self._engine.begin() as conn:
                try:
                    record_published(conn, base, file_format=file_format, worker=self.worker)
                except sa.exc.IntegrityError:
                    raise _Duplicate from None
                self._publish(conn, file, counts, correlation_id)
                outcome = self._published(base, counts, file.encoding)
                log_outcome(conn, outcome, worker=self.worker)
        except _Duplicate:
            with self._engine.connect() as conn:
                existing = published_file(conn, sha256)
            return self._duplicate(file, base, existing or {})
        except MalformedInputError as exc:
            # The counts of a rolled-back file say how far it was read; nothing of it was kept.
            return self._fail(file, counts.onto(base, file.encoding), str(exc))
        self.feed.finish(file, "done")
        self.stats.rows += counts.rows
        self.stats.events += counts.events
        self.stats.invalid += counts.invalid
        skipped = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.skipped.items()))
        log.info(
            "published %s (%s, %s, %d bytes): %d rows, %d events, %d invalid%s in %.1f s",
            file.name,
            file_format,
            _describe(file.encoding),
            file.size_bytes,
            counts.rows,
            counts.events,
            counts.invalid,
            f", skipped without a route: {skipped}" if skipped else "",
            time.monotonic() - started,
        )
        return outcome

    @staticmethod
    def _published(base: FileOutcome, counts: _Counts, encoding: ReadAs | None) -> FileOutcome:
        return replace(
            counts.onto(base, encoding),
            outcome="published",
            events=counts.events,
            invalid=counts.invalid,
            skipped=sum(counts.skipped.values()),
        )

    def _publish(self, conn: Connection, file: F, counts: _Counts, correlation_id: str) -> None:
        """Stream the file's rows into the outbox and the invalid channel.

        Every event of the file shares its correlation id, so an operator can follow a file from its log
        lines to its events.
        """
        name = file.name
        system = self.feed.name
        started = time.monotonic()
        pending: list[tuple[EventDraft, str]] = []
        for item in file.rows(self._has_route):
            counts.rows += 1
            if isinstance(item, RawRecord):
                self._stage(conn, item, correlation_id, counts, pending)
            elif isinstance(item, BrokenRow):
                park(
                    conn,
                    kind="invalid",
                    reason_code=MalformedInputError.reason_code,
                    reason=item.message,
                    payload={"line": item.raw_line},
                    source_system=system,
                    record_key=f"{name}:{item.line_no}",
                    position={"file": name, "line": item.line_no},
                )
                counts.invalid += 1
            elif isinstance(item, SkippedRow):
                counts.skipped[item.record_type] += 1
            if counts.rows % self._progress_every == 0:
                elapsed = max(time.monotonic() - started, 1e-9)
                log.info(
                    "reading %s: %d rows, %d of %d bytes (%.0f%%), %.0f rows/s",
                    name,
                    counts.rows,
                    file.bytes_read,
                    file.size_bytes,
                    100.0 * file.bytes_read / max(file.size_bytes, 1),
                    counts.rows / elapsed,
                )
        stage_events(conn, pending)

    def _has_route(self, record_type: str) -> bool:
        known = self._routed.get(record_type)
        if known is None:
            known = self._routed[record_type] = bool(self._router.routes_for(self.feed.name, record_type))
        return known

    def _stage(
        self,
        conn: Connection,
        record: RawRecord,
        correlation_id: str,
        counts: _Counts,
        pending: list[tuple[EventDraft, str]],
    ) -> None:
        where = f"{record.position.get('file')}:{record.position.get('line')}: "
        routed = route_or_park(conn, self._router, record, correlation_id, where=where)
        if routed.parked is not None:
            counts.invalid += 1
            return
        pending.extend(routed.drafts)
        counts.events += len(routed.drafts)
        # The outbox takes the events in batches: its cost is per batch, and memory stays flat.
        if len(pending) >= STAGE_BATCH:
            stage_events(conn, pending)
            pending.clear()

    def _duplicate(self, file: F, base: FileOutcome, existing: dict[str, object]) -> FileOutcome:
        first = existing.get("file_name", "?")
        reason = f"same content as {first}, published {existing.get('published_at', '?')}"
        outcome = replace(base, outcome="duplicate", reason=reason)
        self.feed.finish(file, "done")
        with self._engine.begin() as conn:
            log_outcome(conn, outcome, worker=self.worker)
        log.info("%s is a duplicate (%s); nothing published", file.name, reason)
        return outcome

    def _fail(self, file: F, base: FileOutcome, reason: str) -> FileOutcome:
        outcome = replace(base, outcome="error", reason=reason)
        details = [
            reason,
            "",
            f"file: {file.name}",
            f"sha256: {base.sha256 or '-'}",
            f"size: {base.size_bytes} bytes",
            f"encoding: {_describe(file.encoding)}",
            f"rows read before the problem: {base.rows}; none of the file's rows was published",
        ]
        self.feed.finish(file, "error", "\n".join(details))
        with self._engine.begin() as conn:
            log_outcome(conn, outcome, worker=self.worker)
        log.error("%s moved to error/: %s", file.name, reason)
        return outcome


def _describe(encoding: ReadAs | None) -> str:
    return encoding.describe() if encoding is not None else "not settled (the file was not read that far)"
