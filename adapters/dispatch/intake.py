"""The dispatch file intake: takes files from the drop folder and publishes their rows, one transaction each.

For every claimed file (see dropfolder.py for the life cycle and the claim):

1. A file larger than ``max_file_bytes`` goes to error/ unread.
2. Its SHA-256 is computed. Content already published (the dispatch_files table, by any hub process) is a
   duplicate: the file goes to done/ and nothing is published.
3. One database transaction: the content hash is inserted first (a concurrent duplicate in another process
   waits on it, then fails and is treated as a duplicate), then the file is streamed: each good row goes
   through the route table into the outbox, each broken or unmappable row is parked on the invalid channel
   with the file, the line and the reason, rows of record types without a route are counted and skipped.
   The bytes read are hashed again; a file that changed while it was read is an error.
4. A file-level problem (unreadable encoding, truncated CIM/E, a CSV without its header, a changed file)
   rolls the transaction back, so none of its rows is published, and the file goes to error/ with a
   .reason file. After a commit the file goes to done/.

Every outcome (the FileOutcome, its dispatch_file_log row, the log line and the .reason file) says what the
file was read as: the encoding its header declared (CIM/E Code=), a UTF-8 byte-order mark, or the one
detected (see encoding.py), beside the counts of rows, events, parked and skipped rows.

Memory stays bounded: the parsers stream, and rows go to the database as they are read. Progress is logged
every ``progress_every_rows`` rows. Any other failure (the hub database is down, say) leaves the file in
processing/ unlocked; the next take-over of orphans retries it, and its rolled-back transaction left nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import BinaryIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from adapters.dispatch.dropfolder import Claim, DropFolder
from adapters.dispatch.encoding import TextEncoding
from adapters.dispatch.records import (
    SYSTEM,
    BrokenRow,
    FileFormat,
    SkippedRow,
    iter_file_records,
    sniff_format,
)
from ground.errors import MalformedInputError
from ground.logs import correlated
from ground.settings import DEFAULT_MAX_FILE_BYTES, DispatchSettings
from pipeline.ingest import route_or_park
from pipeline.outbox import stage_events
from pipeline.records import EventDraft, RawRecord
from pipeline.routing import Router
from store.loads import FileOutcome, log_outcome, published_file, record_published
from store.parking import park

log = logging.getLogger(__name__)

_HASH_CHUNK = 1024 * 1024
_SNIFF_BYTES = 64 * 1024
# Outbox drafts gathered before they are staged together.
STAGE_BATCH = 500


@dataclass
class IntakeStats:
    """What the intake did since it started."""

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
    encoding: TextEncoding | None = None

    def read_as(self, encoding: TextEncoding) -> None:
        """Note what the file is read as (the parsers call this once it is settled)."""
        self.encoding = encoding

    def onto(self, outcome: FileOutcome) -> FileOutcome:
        """The outcome with the rows read and the encoding they were read in."""
        encoding = self.encoding
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


class _HashingReader:
    """A binary reader that hashes and counts what passes through it."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._hash = hashlib.sha256()
        self.bytes_read = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._file.read(size)
        self._hash.update(data)
        self.bytes_read += len(data)
        return data

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def worker_id() -> str:
    """This process as host:pid, recorded with every file it finishes."""
    return f"{socket.gethostname()}:{os.getpid()}"


class DispatchIntake:
    """The hub loop over a drop folder: each step() takes at most one file through to done/ or error/."""

    name = SYSTEM

    def __init__(
        self,
        engine: Engine,
        router: Router,
        folder: DropFolder,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        progress_every_rows: int = 100_000,
        scan_interval_s: float = 1.0,
        recover_interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._router = router
        self.folder = folder
        self._max_file_bytes = max_file_bytes
        self._progress_every = progress_every_rows
        self._scan_interval_s = scan_interval_s
        self._recover_interval_s = recover_interval_s
        self._clock = clock
        self._next_scan = 0.0
        self._next_recovery = 0.0
        self._queue: deque[str] = deque()
        self._held: deque[Claim] = deque()
        self._routed: dict[str, bool] = {}
        self.worker = worker_id()
        self.stats = IntakeStats()

    @classmethod
    def from_settings(cls, settings: DispatchSettings, engine: Engine, router: Router) -> DispatchIntake:
        """An intake over the configured drop folder, with its free-space floor and retentions."""
        return cls(
            engine,
            router,
            DropFolder.from_settings(settings),
            max_file_bytes=settings.max_file_bytes,
            progress_every_rows=settings.progress_every_rows,
            scan_interval_s=settings.scan_interval_s,
        )

    def step(self) -> bool:
        """Take one file if one is ready (or left behind by a stopped process); return whether one was."""
        now = self._clock()
        if now >= self._next_recovery:
            self._next_recovery = now + self._recover_interval_s
            self._held.extend(self.folder.orphans())
        if self._held:
            self.take(self._held.popleft())
            return True
        if not self._queue:
            if now < self._next_scan:
                return False
            self._next_scan = now + self._scan_interval_s
            self._queue.extend(self.folder.ready())
        while self._queue:
            claim = self.folder.claim(self._queue.popleft())
            if claim is not None:
                self.take(claim)
                return True
        return False

    def take(self, claim: Claim) -> FileOutcome:
        """Take a claimed file through to done/ or error/ and return what happened to it."""
        self.stats.files += 1
        correlation_id = str(uuid.uuid4())
        with correlated(correlation_id):
            try:
                outcome = self._take(claim, correlation_id)
            except BaseException:
                claim.release()
                # Retry it (and any other file left behind) at the next step, after the loop's back-off.
                self._next_recovery = 0.0
                raise
        if outcome.outcome == "published":
            self.stats.published += 1
        elif outcome.outcome == "duplicate":
            self.stats.duplicates += 1
        else:
            self.stats.errors += 1
        return outcome

    def _take(self, claim: Claim, correlation_id: str) -> FileOutcome:
        size = os.fstat(claim.file.fileno()).st_size
        base = FileOutcome(
            file_name=claim.original, stored_name=claim.claimed_name, outcome="", sha256=None, size_bytes=size
        )
        if size > self._max_file_bytes:
            reason = f"{claim.original}: {size} bytes, more than the {self._max_file_bytes} bytes allowed"
            return self._fail(claim, base, reason)
        sha256 = _hash(claim.file)
        base = replace(base, sha256=sha256)
        with self._engine.connect() as conn:
            existing = published_file(conn, sha256)
        if existing is not None:
            return self._duplicate(claim, base, existing)
        claim.file.seek(0)
        file_format = sniff_format(claim.file.read(_SNIFF_BYTES))
        claim.file.seek(0)
        counts = _Counts()
        started = time.monotonic()
        try:
            with self._engine.begin() as conn:
                try:
                    record_published(conn, base, file_format=file_format, worker=self.worker)
                except sa.exc.IntegrityError:
                    raise _Duplicate from None
                self._publish(conn, claim, file_format, sha256, counts, correlation_id)
                outcome = self._published(base, counts)
                log_outcome(conn, outcome, worker=self.worker)
        except _Duplicate:
            with self._engine.connect() as conn:
                existing = published_file(conn, sha256)
            return self._duplicate(claim, base, existing or {})
        except MalformedInputError as exc:
            # The counts of a rolled-back file say how far it was read; nothing of it was kept.
            return self._fail(claim, counts.onto(base), str(exc), counts.encoding)
        self.folder.finish(claim, "done")
        self.stats.rows += counts.rows
        self.stats.events += counts.events
        self.stats.invalid += counts.invalid
        skipped = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.skipped.items()))
        log.info(
            "published %s (%s, %s, %d bytes): %d rows, %d events, %d invalid%s in %.1f s",
            claim.original,
            file_format,
            _describe(counts.encoding),
            size,
            counts.rows,
            counts.events,
            counts.invalid,
            f", skipped without a route: {skipped}" if skipped else "",
            time.monotonic() - started,
        )
        return outcome

    @staticmethod
    def _published(base: FileOutcome, counts: _Counts) -> FileOutcome:
        return replace(
            counts.onto(base),
            outcome="published",
            events=counts.events,
            invalid=counts.invalid,
            skipped=sum(counts.skipped.values()),
        )

    def _publish(
        self,
        conn: Connection,
        claim: Claim,
        file_format: FileFormat,
        sha256: str,
        counts: _Counts,
        correlation_id: str,
    ) -> None:
        """Stream the file's rows into the outbox and the invalid channel.

        Every event of the file shares its correlation id, so an operator can follow a file from its log
        lines to its events.
        """
        name = claim.original
        reader = _HashingReader(claim.file)
        size = os.fstat(claim.file.fileno()).st_size
        started = time.monotonic()
        items = iter_file_records(
            reader,
            source_name=name,
            file_format=file_format,
            wanted=self._has_route,
            on_encoding=counts.read_as,
        )
        pending: list[tuple[EventDraft, str]] = []
        for item in items:
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
                    source_system=SYSTEM,
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
                    reader.bytes_read,
                    size,
                    100.0 * reader.bytes_read / max(size, 1),
                    counts.rows / elapsed,
                )
        stage_events(conn, pending)
        if reader.hexdigest() != sha256:
            raise MalformedInputError(
                f"{name}: the file changed while it was read (still being written?); it was not published"
            )

    def _has_route(self, record_type: str) -> bool:
        known = self._routed.get(record_type)
        if known is None:
            known = self._routed[record_type] = bool(self._router.routes_for(SYSTEM, record_type))
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

    def _duplicate(self, claim: Claim, base: FileOutcome, existing: dict[str, object]) -> FileOutcome:
        first = existing.get("file_name", "?")
        reason = f"same content as {first}, published {existing.get('published_at', '?')}"
        outcome = replace(base, outcome="duplicate", reason=reason)
        self.folder.finish(claim, "done")
        with self._engine.begin() as conn:
            log_outcome(conn, outcome, worker=self.worker)
        log.info("%s is a duplicate (%s); nothing published", claim.original, reason)
        return outcome

    def _fail(
        self, claim: Claim, base: FileOutcome, reason: str, encoding: TextEncoding | None = None
    ) -> FileOutcome:
        outcome = replace(base, outcome="error", reason=reason)
        details = [
            reason,
            "",
            f"file: {claim.original}",
            f"sha256: {base.sha256 or '-'}",
            f"size: {base.size_bytes} bytes",
            f"encoding: {_describe(encoding)}",
            f"rows read before the problem: {base.rows}; none of the file's rows was published",
        ]
        self.folder.finish(claim, "error", "\n".join(details))
        with self._engine.begin() as conn:
            log_outcome(conn, outcome, worker=self.worker)
        log.error("%s moved to error/: %s", claim.original, reason)
        return outcome


def _describe(encoding: TextEncoding | None) -> str:
    return encoding.describe() if encoding is not None else "not settled (the file was not read that far)"


def _hash(file: BinaryIO) -> str:
    file.seek(0)
    digest = hashlib.sha256()
    while chunk := file.read(_HASH_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()
