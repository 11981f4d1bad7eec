"""Dispatch files as raw records: each CIM/E or curve CSV data row with its file and line, or why it broke.

Record types: a CIM/E row is named after its block's class in snake case (LoadCurve -> load_curve, Analog
-> analog, FeederPW -> feeder_pw); a curve CSV row is power_curve. Where a row holds the 96 points of a
day (P1 ... P96, and Q1 ... Q96 when present), they are grouped into POINTS, a list of {"P": ..., "Q": ...}
in point order, so a mapping can build the profile's points with `each`; the Pn and Qn keys are dropped.

Only record types the caller wants become records; rows of the others are reported as skipped, so a model
file full of substations does not fill the invalid channel. Broken rows are reported with the reason the
parser gave. File-level problems raise MalformedInputError from the parsers, after the rows before them:
a caller must treat the whole file as failed then.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from adapters.dispatch.cime import BlockStart, CimeRow, CimeRowError, iter_cime
from adapters.dispatch.curves_csv import POINT_COLUMNS, QUALITY_COLUMNS, CurveRow, iter_curves
from adapters.dispatch.encoding import UTF8_BOM, BinaryReader
from adapters.records import RawRecord

SYSTEM = "dispatch"
CSV_RECORD_TYPE = "power_curve"
POINTS_KEY = "POINTS"

FileFormat = Literal["cime", "csv"]

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_POINTS = frozenset(POINT_COLUMNS)
_QUALITIES = frozenset(QUALITY_COLUMNS)
_POINT_KEYS = _POINTS | _QUALITIES


@dataclass(frozen=True, slots=True)
class BrokenRow:
    """A data line that could not be read; message names the file and the line."""

    line_no: int
    message: str
    raw_line: str


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A readable row of a record type nobody takes."""

    line_no: int
    record_type: str


FileItem = RawRecord | BrokenRow | SkippedRow


def record_type_of(class_name: str) -> str:
    """The record type of a CIM/E class: LoadCurve -> load_curve, FeederPW -> feeder_pw."""
    return _CAMEL.sub("_", class_name).lower()


def sniff_format(head: bytes) -> FileFormat:
    """CIM/E when the first line with content (after blank, $ and // lines) is a tag; otherwise CSV."""
    if head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM) :]
    for line in head.split(b"\n"):
        text = line.strip(b" \t\r")
        if not text or text.startswith((b"$", b"//")):
            continue
        return "cime" if text.startswith(b"<") else "csv"
    return "csv"


def iter_file_records(
    stream: BinaryReader,
    *,
    source_name: str,
    file_format: FileFormat,
    wanted: Callable[[str], bool],
) -> Iterator[FileItem]:
    """Every data row of the file as a record (wanted types), a skipped row, or a broken row."""
    if file_format == "cime":
        return _cime_records(stream, source_name, wanted)
    return _csv_records(stream, source_name, wanted)


def _cime_records(
    stream: BinaryReader, source_name: str, wanted: Callable[[str], bool]
) -> Iterator[FileItem]:
    record_type = ""
    take = False
    block = ""
    grouped = with_quality = False
    for item in iter_cime(stream, source_name=source_name):
        if isinstance(item, CimeRow):
            if not take:
                yield SkippedRow(item.line_no, record_type)
                continue
            values: dict[str, Any] = item.values
            if grouped:
                values = _grouped(values, with_quality)
            key = item.values.get("mRID") or f"{source_name}:{item.line_no}"
            position = {"file": source_name, "line": item.line_no, "block": block}
            yield RawRecord(SYSTEM, record_type, key, values, position)
        elif isinstance(item, BlockStart):
            record_type = record_type_of(item.class_name)
            take = wanted(record_type)
            block = item.class_name if item.entity is None else f"{item.class_name}::{item.entity}"
            columns = frozenset(item.columns)
            grouped = columns >= _POINTS
            with_quality = columns >= _QUALITIES
        elif isinstance(item, CimeRowError):
            yield BrokenRow(item.line_no, str(item.as_error(source_name)), item.raw_line)


def _grouped(values: Mapping[str, Any], with_quality: bool) -> dict[str, Any]:
    """The row with P1 ... P96 (and Q1 ... Q96 when the block has them all) gathered into POINTS."""
    points = [
        {"P": values[p], "Q": values[q] if with_quality else None}
        for p, q in zip(POINT_COLUMNS, QUALITY_COLUMNS, strict=True)
    ]
    payload = {key: value for key, value in values.items() if key not in _POINT_KEYS}
    payload[POINTS_KEY] = points
    return payload


def _csv_records(stream: BinaryReader, source_name: str, wanted: Callable[[str], bool]) -> Iterator[FileItem]:
    take = wanted(CSV_RECORD_TYPE)
    for item in iter_curves(stream, source_name=source_name):
        if not isinstance(item, CurveRow):
            yield BrokenRow(item.line_no, str(item.as_error(source_name)), item.raw_line)
            continue
        if not take:
            yield SkippedRow(item.line_no, CSV_RECORD_TYPE)
            continue
        curve = item.curve
        day = curve.data_date.isoformat()
        quality = curve.quality or (None,) * len(curve.points)
        payload: dict[str, Any] = {
            "ID": curve.id,
            "DATA_DATE": day,
            "DATA_TYPE": curve.data_type,
            **curve.extra,
            POINTS_KEY: [{"P": _text(p), "Q": q} for p, q in zip(curve.points, quality, strict=True)],
        }
        position = {"file": source_name, "line": item.line_no}
        yield RawRecord(SYSTEM, CSV_RECORD_TYPE, f"{curve.id}/{day}", payload, position)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")
