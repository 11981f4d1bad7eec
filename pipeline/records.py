"""The two records the pipeline moves: a RawRecord as an adapter read it, and an EventDraft to be published.

Adapters produce and consume RawRecords and know nothing else of the pipeline; routes turn each RawRecord
into EventDrafts, and the hub's own producers (workflow, feasibility, forecast) write EventDrafts directly.

Beside them, the shapes an adapter gives its records in: a PollingSource read from a checkpoint, a FileFeed
whose files are read row by row, and the SourceParts an adapter kind builds for one declared legacy system.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class RawRecord:
    """A legacy record plus where it came from; mappings turn its payload into a canonical document.

    system: the legacy system ("marketing", "pms", "dispatch").
    record_type: the record kind within that system ("application", "customer", ...).
    key: the record's natural key in the source (APP_NO, CONS_NO, OBJ_ID, ...).
    position: where in the source it was read (watermark, file and line), for operators.
    payload: the legacy field names and values, as plain Python values (str, int, float, None, dict, list).
    """

    system: str
    record_type: str
    key: str
    payload: Mapping[str, Any]
    position: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BrokenRow:
    """A data line of a file-fed source that could not be read; message names the file and the line."""

    line_no: int
    message: str
    raw_line: str


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A readable row of a file-fed source, of a record type no route takes."""

    line_no: int
    record_type: str


# What a file-fed source reads from each data line.
FileItem = RawRecord | BrokenRow | SkippedRow


@dataclass(frozen=True)
class SourceBatch:
    """What one poll of a legacy source returned: records, and the checkpoint that covers them."""

    records: list[RawRecord]
    checkpoint: Mapping[str, Any]
    has_more: bool
    # The source's own state changes that belong to this checkpoint: run in the transaction that commits
    # it, after its fence check, so a poller that lost its lease changes nothing.
    settle: Callable[[Connection], None] | None = None


class PollingSource(Protocol):
    """A legacy source read by polling from a checkpoint (watermark); it persists nothing itself."""

    name: str

    def poll(self, checkpoint: Mapping[str, Any] | None) -> SourceBatch:
        """Read the next records after the checkpoint (None: from the beginning)."""

    def close(self) -> None:
        """Release connections; the hub calls it once the source's loop has stopped."""


class ReadAs(Protocol):
    """The text encoding a file was read as, and how it was settled (declared, byte-order mark, detected)."""

    @property
    def name(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def declared(self) -> str | None: ...

    def describe(self) -> str:
        """One line for an operator."""
        ...


class FeedFile(Protocol):
    """A file a feed holds for the pipeline: its names and size, then its hash, format and rows."""

    @property
    def name(self) -> str:
        """The name it arrived under."""
        ...

    @property
    def stored_name(self) -> str:
        """Its unique name in the feed, kept where it is finished."""
        ...

    @property
    def size_bytes(self) -> int: ...

    @property
    def bytes_read(self) -> int:
        """How far rows() has read it."""
        ...

    @property
    def encoding(self) -> ReadAs | None:
        """What the rows are read as, once settled."""
        ...

    def refusal(self) -> str | None:
        """Why the file is refused unread, or None."""
        ...

    def sha256(self) -> str:
        """The content hash."""
        ...

    def file_format(self) -> str:
        """The format it is read as (recorded with the published file)."""
        ...

    def rows(self, wanted: Callable[[str], bool]) -> Iterator[FileItem]:
        """Every data row: a record of a wanted type, a skipped row or a broken row.

        Raises MalformedInputError for a file-level problem, after the rows before it.
        """
        ...


F = TypeVar("F", bound=FeedFile)


class FileFeed(Protocol[F]):
    """A file-fed source: hands over one file at a time and puts it away when the pipeline is done.

    name: the legacy system its rows come from, under which their routes are looked up.
    """

    name: str

    def next_file(self) -> F | None:
        """The next file to read, or None when none is ready."""
        ...

    def finish(self, file: F, destination: Literal["done", "error"], reason: str | None = None) -> None:
        """Put a file away as read (done) or failed (error, with the reason)."""
        ...

    def release(self, file: F) -> None:
        """Hand a file back unread, to be offered again."""
        ...


@dataclass(frozen=True)
class SourceParts:
    """What one declared legacy system runs as in the hub, as its adapter kind's factory built it.

    poll: a source the hub polls from its checkpoint; feed: a file feed the hub ingests file by file.
    idle_s: the pause of that loop when it found nothing; progress_every_rows: how often reading one of the
    feed's files logs its progress; around_step: wraps that loop's step (the drop folder sweeps its
    retention in its own loop). loops: further hub loops by name, each step saying whether it was busy
    (the marketing writer). adapter: the adapter itself, for the parts of the wiring that talk to it
    directly (the API's status report and push wake-up).
    """

    name: str
    poll: PollingSource | None = None
    feed: FileFeed[Any] | None = None
    idle_s: float = 0.05
    progress_every_rows: int = 100_000
    around_step: Callable[[Callable[[], bool]], Callable[[], bool]] | None = None
    loops: tuple[tuple[str, Callable[[], bool]], ...] = ()
    adapter: object = None


@dataclass(frozen=True)
class EventDraft:
    """What a producer knows about an event before the outbox gives it an id and a sequence.

    route: the route that mapped it from a legacy record; empty for events the hub raises itself.
    """

    event_type: str
    source: str
    subject: str
    dataschema: str
    data: dict[str, Any]
    exchange: str
    routing_key: str
    time: datetime | None = None
    route: str = ""
