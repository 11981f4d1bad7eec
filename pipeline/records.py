"""The two records the pipeline moves: a RawRecord as an adapter read it, and an EventDraft to be published.

Adapters produce and consume RawRecords and know nothing else of the pipeline; routes turn each RawRecord
into EventDrafts, and the hub's own producers (workflow, feasibility, forecast) write EventDrafts directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


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


class PollingSource(Protocol):
    """A legacy source read by polling from a checkpoint (watermark); it persists nothing itself."""

    name: str

    def poll(self, checkpoint: Mapping[str, Any] | None) -> SourceBatch:
        """Read the next records after the checkpoint (None: from the beginning)."""

    def close(self) -> None:
        """Release connections; the hub calls it once the source's loop has stopped."""


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
