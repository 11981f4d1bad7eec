"""Dispatch files as raw records: each CIM/E or curve CSV data row with its file and line, or why it broke.

Record types: a CIM/E row is named after its block's class in snake case (LoadCurve -> load_curve,
FeederPW -> feeder_pw); a curve CSV row is power_curve, or factor_curve when the file's header has the
power-factor columns F1 ... F96 (see curves_csv.py). Where a row holds the 96 points of a day (P1 ... P96
or F1 ... F96, and Q1 ... Q96 when present), they are grouped into POINTS, a list of {"P": ..., "Q": ...}
(or {"F": ..., "Q": ...}) in point order, so a mapping can build the profile's points with `each`; the
point and quality keys are dropped.

An Analog (telemetry) row also names what it measures, and its record type says which quantity it is:
analog_p (active power), analog_q (reactive power), analog_i (current), analog_u (voltage, written U or
V), so the routes choose the quantities the hub takes and rows of the others are skipped, not parked.
Producers name the measured equipment in an ``equipment`` column or through the mRID, ``<equipment
id>-<quantity>`` (411300101-P), and the quantity in a ``measurementType`` column or that suffix; the
columns win, the mRID names what they lack. The payload gets both as EQUIPMENT and QUANTITY (upper case:
made here, like POINTS). A row is broken, with its line, when it names no equipment or no quantity, a
quantity outside those above (an mRID suffix included), or a suffix that contradicts measurementType.

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
from adapters.dispatch.curves_csv import POINT_COLUMNS, QUALITY_COLUMNS, CurveKind, CurveRow, iter_curves
from adapters.dispatch.encoding import UTF8_BOM, BinaryReader, EncodingListener
from pipeline.records import BrokenRow, FileItem, RawRecord, SkippedRow

SYSTEM = "dispatch"
# The record type of a curve CSV row, by the kind of curve the file's header names.
CSV_RECORD_TYPES: dict[CurveKind, str] = {CurveKind.POWER: "power_curve", CurveKind.FACTOR: "factor_curve"}
POINTS_KEY = "POINTS"
EQUIPMENT_KEY = "EQUIPMENT"
QUANTITY_KEY = "QUANTITY"
ANALOG_CLASS = "Analog"
# Telemetry quantities (量测类型) as CIM/E producers letter them -> the record type of their rows.
QUANTITIES: dict[str, str] = {
    "P": "analog_p",
    "Q": "analog_q",
    "I": "analog_i",
    "U": "analog_u",
    "V": "analog_u",
}
_QUANTITY_NAMES = "P active power, Q reactive power, I current, U or V voltage"
_MEASURED_MRID = re.compile(r"(?P<equipment>.+)-(?P<quantity>[A-Za-z]+)")

FileFormat = Literal["cime", "csv"]

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_POINTS = frozenset(POINT_COLUMNS)
_QUALITIES = frozenset(QUALITY_COLUMNS)
_POINT_KEYS = _POINTS | _QUALITIES


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
    on_encoding: EncodingListener | None = None,
) -> Iterator[FileItem]:
    """Every data row of the file as a record (wanted types), a skipped row, or a broken row.

    on_encoding: told what the file is read as, declared or detected (see encoding.py).
    """
    if file_format == "cime":
        return _cime_records(stream, source_name, wanted, on_encoding)
    return _csv_records(stream, source_name, wanted, on_encoding)


def _cime_records(
    stream: BinaryReader,
    source_name: str,
    wanted: Callable[[str], bool],
    on_encoding: EncodingListener | None,
) -> Iterator[FileItem]:
    record_type = ""
    take = False
    block = ""
    grouped = with_quality = False
    analog: _AnalogColumns | None = None
    for item in iter_cime(stream, source_name=source_name, on_encoding=on_encoding):
        if isinstance(item, CimeRow):
            values: dict[str, Any] = item.values
            row_type = record_type
            if analog is not None:
                try:
                    equipment, quantity = analog.measured(values)
                except _UnnamedMeasurement as problem:
                    message = f"{source_name}:{item.line_no}: {problem}"
                    yield BrokenRow(item.line_no, message, item.raw_line)
                    continue
                row_type = QUANTITIES[quantity]
                if not wanted(row_type):
                    yield SkippedRow(item.line_no, row_type)
                    continue
                values = {**values, EQUIPMENT_KEY: equipment, QUANTITY_KEY: quantity}
            elif not take:
                yield SkippedRow(item.line_no, record_type)
                continue
            if grouped:
                values = _grouped(values, with_quality)
            key = item.values.get("mRID") or f"{source_name}:{item.line_no}"
            position = {"file": source_name, "line": item.line_no, "block": block}
            yield RawRecord(SYSTEM, row_type, key, values, position)
        elif isinstance(item, BlockStart):
            record_type = record_type_of(item.class_name)
            block = item.class_name if item.entity is None else f"{item.class_name}::{item.entity}"
            columns = frozenset(item.columns)
            grouped = columns >= _POINTS
            with_quality = columns >= _QUALITIES
            # An Analog block's rows each have the record type of their quantity, asked for row by row.
            analog = _AnalogColumns(columns) if item.class_name == ANALOG_CLASS else None
            take = analog is None and wanted(record_type)
        elif isinstance(item, CimeRowError):
            yield BrokenRow(item.line_no, str(item.as_error(source_name)), item.raw_line)


class _UnnamedMeasurement(Exception):
    """An Analog row whose equipment or quantity cannot be told; the message says why."""


@dataclass(frozen=True, slots=True)
class _AnalogColumns:
    """Which naming columns an Analog block has, and how its rows name equipment and quantity."""

    columns: frozenset[str]

    def measured(self, values: Mapping[str, str | None]) -> tuple[str, str]:
        """The equipment id and the quantity letter (upper case) a row measures."""
        mrid = values.get("mRID")
        named = _MEASURED_MRID.fullmatch(mrid) if mrid is not None else None
        suffix = named["quantity"].upper() if named is not None else None
        if "equipment" in self.columns:
            equipment = values.get("equipment")
            if equipment is None:
                raise _UnnamedMeasurement(
                    "the equipment column is empty: the row names no measured equipment"
                )
        elif named is None:
            raise _UnnamedMeasurement(
                f"mRID {mrid!r} does not name the measured equipment as <equipment>-<quantity> "
                "(e.g. 411300101-P), and the block has no equipment column"
            )
        elif suffix not in QUANTITIES:
            raise _UnnamedMeasurement(
                f"mRID {mrid!r} ends in an unknown quantity {named['quantity']!r}; known: {_QUANTITY_NAMES}"
            )
        else:
            equipment = named["equipment"]
        written = values.get("measurementType")
        quantity = written.upper() if written is not None else suffix
        if quantity is None:
            raise _UnnamedMeasurement(
                f"no quantity: measurementType is empty or missing, and mRID {mrid!r} "
                "has no -<quantity> suffix"
            )
        if quantity not in QUANTITIES:
            where = f"measurementType {written!r}" if written is not None else f"mRID {mrid!r}"
            raise _UnnamedMeasurement(f"unknown quantity in {where}; known: {_QUANTITY_NAMES}")
        if suffix in QUANTITIES and QUANTITIES[suffix] != QUANTITIES[quantity]:
            raise _UnnamedMeasurement(
                f"mRID {mrid!r} names quantity {suffix}, but measurementType says {written!r}"
            )
        return equipment, quantity


def _grouped(values: Mapping[str, Any], with_quality: bool) -> dict[str, Any]:
    """The row with P1 ... P96 (and Q1 ... Q96 when the block has them all) gathered into POINTS."""
    points = [
        {"P": values[p], "Q": values[q] if with_quality else None}
        for p, q in zip(POINT_COLUMNS, QUALITY_COLUMNS, strict=True)
    ]
    payload = {key: value for key, value in values.items() if key not in _POINT_KEYS}
    payload[POINTS_KEY] = points
    return payload


def _csv_records(
    stream: BinaryReader,
    source_name: str,
    wanted: Callable[[str], bool],
    on_encoding: EncodingListener | None,
) -> Iterator[FileItem]:
    taken: dict[str, bool] = {}
    for item in iter_curves(stream, source_name=source_name, on_encoding=on_encoding):
        if not isinstance(item, CurveRow):
            yield BrokenRow(item.line_no, str(item.as_error(source_name)), item.raw_line)
            continue
        curve = item.curve
        record_type = CSV_RECORD_TYPES[curve.kind]
        take = taken.get(record_type)
        if take is None:
            take = taken[record_type] = wanted(record_type)
        if not take:
            yield SkippedRow(item.line_no, record_type)
            continue
        day = curve.data_date.isoformat()
        quality = curve.quality or (None,) * len(curve.points)
        payload: dict[str, Any] = {
            "ID": curve.id,
            "DATA_DATE": day,
            "DATA_TYPE": curve.data_type,
            **curve.extra,
            POINTS_KEY: [
                {curve.kind.value: _text(p), "Q": q} for p, q in zip(curve.points, quality, strict=True)
            ],
        }
        position = {"file": source_name, "line": item.line_no}
        yield RawRecord(SYSTEM, record_type, f"{curve.id}/{day}", payload, position)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")
