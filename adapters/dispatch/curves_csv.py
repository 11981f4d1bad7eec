"""96-point daily curves as CSV (the metering platform's curve tables): a streaming parser and a renderer.

Layout: a header row, then one curve per row, comma-separated, standard CSV quoting. The header says which
kind of curve the file holds (CurveKind): P1 ... P96, active power in kW as in E_MP_POWER_CURVE, or F1 ...
F96, the power factor as in E_MP_FACTOR_CURVE. A file holds one kind; a header with both is refused.

- Required columns: ID, DATA_DATE and the 96 point columns (point n covers the n-th 15-minute interval of
  the day). DATA_TYPE is optional. Header names match case-insensitively, surrounding spaces ignored.
- Quality flags: when every one of Q1 ... Q96 is present, they become ``Curve.quality`` (96 texts or None);
  any other column, an incomplete set of Qn included, is kept by its header name in ``Curve.extra``.
- Cells are stripped of surrounding spaces; an empty cell is None (a missing point, flag or text).
- DATA_DATE is ``YYYY-MM-DD`` or ``YYYYMMDD``. Points are decimals (Decimal, so no rounding), negative
  allowed (reverse flow), NaN and infinities refused. The range a quantity allows (a power factor in
  (0, 1]) is the canonical model's to check: such a row parses, and its mapping parks it.
- Each physical line is one row: a quoted field cannot span lines, so one broken quote costs one row.

Row-level problems yield a CurveRowError with the line number and parsing goes on: a wrong number of
fields, bad CSV quoting, an empty ID, a bad date, a point that is not a finite decimal (every problem of
the row is named in one reason). File-level problems raise MalformedInputError: an empty file, a header
without a required column or with both kinds of point columns, a header with an empty or repeated name,
and the encoding problems of encoding.py (the encoding is detected: UTF-8 when the bytes read as UTF-8,
else GB18030).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from adapters.dispatch.encoding import BinaryReader, EncodingListener, iter_text_lines
from ground.errors import MalformedInputError

POINTS = 96
QUALITY_COLUMNS = tuple(f"Q{n}" for n in range(1, POINTS + 1))
_DATE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")


class CurveKind(StrEnum):
    """What a curve file measures; the value is the letter of its point columns (P1, F1)."""

    POWER = "P"
    FACTOR = "F"

    @property
    def columns(self) -> tuple[str, ...]:
        """The 96 point columns of this kind, in point order."""
        return _COLUMNS[self]


_COLUMNS = {kind: tuple(f"{kind.value}{n}" for n in range(1, POINTS + 1)) for kind in CurveKind}
POINT_COLUMNS = CurveKind.POWER.columns
FACTOR_COLUMNS = CurveKind.FACTOR.columns


@dataclass(frozen=True, slots=True)
class Curve:
    """One metering point's curve for one day; points[n - 1] is Pn (Fn), None where the point is missing."""

    id: str
    data_date: date
    points: tuple[Decimal | None, ...]
    data_type: str | None = None
    quality: tuple[str | None, ...] | None = None
    extra: Mapping[str, str | None] = field(default_factory=dict)
    kind: CurveKind = CurveKind.POWER


@dataclass(frozen=True, slots=True)
class CurveRow:
    """A curve and the line it was read from."""

    line_no: int
    curve: Curve


@dataclass(frozen=True, slots=True)
class CurveRowError:
    """A row that could not be read; the rows around it are unaffected."""

    line_no: int
    reason: str
    raw_line: str

    def as_error(self, source_name: str) -> MalformedInputError:
        """The error to park this row with, naming the file and the line."""
        return MalformedInputError(f"{source_name}:{self.line_no}: {self.reason}: {self.raw_line!r}")


@dataclass(frozen=True, slots=True)
class _Layout:
    kind: CurveKind
    width: int
    id: int
    data_date: int
    data_type: int | None
    points: tuple[int, ...]
    quality: tuple[int, ...] | None
    extra: tuple[tuple[str, int], ...]


def iter_curves(
    stream: BinaryReader, *, source_name: str, on_encoding: EncodingListener | None = None
) -> Iterator[CurveRow | CurveRowError]:
    """Parse a curve CSV row by row; memory does not grow with the number of rows.

    on_encoding: told what the file is read as (see encoding.py).
    """
    layout: _Layout | None = None
    for line_no, text in iter_text_lines(stream, source_name=source_name, on_encoding=on_encoding):
        if not text.strip():
            continue
        try:
            cells = next(csv.reader([text], strict=True))
        except csv.Error as exc:
            if layout is None:
                raise MalformedInputError(f"{source_name}:{line_no}: unreadable CSV header: {exc}") from exc
            yield CurveRowError(line_no, f"bad CSV quoting: {exc}", text)
            continue
        if layout is None:
            layout = _layout([cell.strip() for cell in cells], source_name, line_no)
            continue
        yield _row(layout, cells, line_no, text)
    if layout is None:
        raise MalformedInputError(f"{source_name}: empty file: no CSV header row")


def _layout(names: list[str], source_name: str, line_no: int) -> _Layout:
    where = f"{source_name}:{line_no}"
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        if not name:
            raise MalformedInputError(f"{where}: header column {position + 1} has no name")
        if name.upper() in index:
            raise MalformedInputError(f"{where}: header column {name!r} appears twice")
        index[name.upper()] = position
    kind = _kind_of(index, where)
    missing = [name for name in ("ID", "DATA_DATE", *kind.columns) if name not in index]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise MalformedInputError(f"{where}: header lacks required columns {shown}")
    has_quality = all(name in index for name in QUALITY_COLUMNS)
    known = {"ID", "DATA_DATE", "DATA_TYPE", *kind.columns, *(QUALITY_COLUMNS if has_quality else ())}
    return _Layout(
        kind=kind,
        width=len(names),
        id=index["ID"],
        data_date=index["DATA_DATE"],
        data_type=index.get("DATA_TYPE"),
        points=tuple(index[name] for name in kind.columns),
        quality=tuple(index[name] for name in QUALITY_COLUMNS) if has_quality else None,
        extra=tuple((name, position) for position, name in enumerate(names) if name.upper() not in known),
    )


def _kind_of(index: Mapping[str, int], where: str) -> CurveKind:
    """The kind whose point columns the header has; an active-power curve when it has neither (so the
    missing columns named are P1 ... P96, the common layout)."""
    found = [kind for kind in CurveKind if any(name in index for name in kind.columns)]
    if len(found) > 1:
        raise MalformedInputError(
            f"{where}: header has both P and F point columns; a file holds one kind of curve, "
            "active power (P1 ... P96) or power factor (F1 ... F96)"
        )
    return found[0] if found else CurveKind.POWER


def _row(layout: _Layout, cells: list[str], line_no: int, text: str) -> CurveRow | CurveRowError:
    if len(cells) != layout.width:
        return CurveRowError(line_no, f"{len(cells)} fields, but the header has {layout.width}", text)
    problems: list[str] = []
    curve_id = cells[layout.id].strip()
    if not curve_id:
        problems.append("ID is empty")
    data_date = _date(cells[layout.data_date].strip(), problems)
    points = tuple(
        _point(cells[position], name, problems)
        for position, name in zip(layout.points, layout.kind.columns, strict=True)
    )
    if problems or data_date is None:
        return CurveRowError(line_no, "; ".join(problems), text)
    return CurveRow(
        line_no,
        Curve(
            id=curve_id,
            data_date=data_date,
            points=points,
            data_type=_text(cells[layout.data_type]) if layout.data_type is not None else None,
            quality=tuple(_text(cells[position]) for position in layout.quality) if layout.quality else None,
            extra={name: _text(cells[position]) for name, position in layout.extra},
            kind=layout.kind,
        ),
    )


def _text(cell: str) -> str | None:
    return cell.strip() or None


def _date(cell: str, problems: list[str]) -> date | None:
    match = _DATE.fullmatch(cell)
    if match is not None and (len(cell) == 8 or (len(cell) == 10 and cell[4] == cell[7] == "-")):
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            pass
    problems.append(f"DATA_DATE {cell!r} is not a date (YYYY-MM-DD or YYYYMMDD)")
    return None


def _point(cell: str, name: str, problems: list[str]) -> Decimal | None:
    cell = cell.strip()
    if not cell:
        return None
    try:
        value = Decimal(cell)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        problems.append(f"{name} {cell!r} is not a decimal number")
        return None
    return value


def iter_curve_lines(
    curves: Iterable[Curve],
    *,
    data_type: bool = True,
    quality: bool = False,
    extra_columns: Sequence[str] = (),
    compact_dates: bool = False,
    kind: CurveKind = CurveKind.POWER,
) -> Iterator[str]:
    """Render a curve CSV line by line (each ending in a newline), header first.

    kind, data_type, quality and extra_columns choose the layout; a curve of another kind or carrying data
    the layout has no column for (a DATA_TYPE, quality flags, an extra key) raises MalformedInputError
    rather than losing it. compact_dates writes YYYYMMDD instead of YYYY-MM-DD. Points are written in
    plain notation.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def line(cells: Sequence[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        return buffer.getvalue()

    header = ["ID", "DATA_DATE", *(["DATA_TYPE"] if data_type else []), *kind.columns]
    header += [*(QUALITY_COLUMNS if quality else ()), *extra_columns]
    yield line(header)
    for curve in curves:
        if curve.kind is not kind:
            where = f"curve {curve.id!r} of {curve.data_date.isoformat()}"
            raise MalformedInputError(f"{where}: a {curve.kind.name} curve in a {kind.name} curve file")
        yield line(_cells(curve, data_type, quality, extra_columns, compact_dates))


def render_curves(
    curves: Iterable[Curve],
    *,
    data_type: bool = True,
    quality: bool = False,
    extra_columns: Sequence[str] = (),
    compact_dates: bool = False,
    kind: CurveKind = CurveKind.POWER,
) -> str:
    """The whole CSV as one string (small files, tests); see iter_curve_lines."""
    lines = iter_curve_lines(
        curves,
        data_type=data_type,
        quality=quality,
        extra_columns=extra_columns,
        compact_dates=compact_dates,
        kind=kind,
    )
    return "".join(lines)


def _cells(
    curve: Curve, data_type: bool, quality: bool, extra_columns: Sequence[str], compact_dates: bool
) -> list[str]:
    where = f"curve {curve.id!r} of {curve.data_date.isoformat()}"
    if len(curve.points) != POINTS:
        raise MalformedInputError(f"{where}: {len(curve.points)} points, a daily curve has {POINTS}")
    if curve.data_type is not None and not data_type:
        raise MalformedInputError(f"{where}: has a DATA_TYPE but the layout has no DATA_TYPE column")
    if curve.quality is not None and (not quality or len(curve.quality) != POINTS):
        raise MalformedInputError(f"{where}: quality flags need quality=True and {POINTS} flags")
    unknown = [key for key in curve.extra if key not in extra_columns]
    if unknown:
        raise MalformedInputError(f"{where}: extra values {unknown} have no column in the layout")
    day = curve.data_date
    cells = [curve.id, f"{day.year:04d}{day.month:02d}{day.day:02d}" if compact_dates else day.isoformat()]
    if data_type:
        cells.append(curve.data_type or "")
    cells += ["" if point is None else format(point, "f") for point in curve.points]
    if quality:
        cells += [flag or "" for flag in (curve.quality or (None,) * POINTS)]
    cells += [curve.extra.get(name) or "" for name in extra_columns]
    broken = [cell for cell in cells if "\n" in cell or "\r" in cell or "\x00" in cell]
    if broken:
        raise MalformedInputError(f"{where}: {broken[0]!r} holds a line break or NUL; a row is one line")
    return cells
