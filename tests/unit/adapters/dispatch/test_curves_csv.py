"""Tests of adapters/dispatch/curves_csv.py: 96-point curve rows, row errors, encodings and rendering."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.dispatch.curves_csv import (
    FACTOR_COLUMNS,
    POINT_COLUMNS,
    POINTS,
    QUALITY_COLUMNS,
    Curve,
    CurveKind,
    CurveRow,
    CurveRowError,
    iter_curves,
    render_curves,
)
from ground.errors import MalformedInputError

HEADER = ",".join(["ID", "DATA_DATE", "DATA_TYPE", *POINT_COLUMNS])
RISING = tuple(Decimal(n) / 4 for n in range(POINTS))


def parse(data: bytes | str) -> list[CurveRow | CurveRowError]:
    raw = data.encode() if isinstance(data, str) else data
    return list(iter_curves(io.BytesIO(raw), source_name="curves.csv"))


def row(curve_id: str, day: str, data_type: str, points: list[str]) -> str:
    return ",".join([curve_id, day, data_type, *points])


def points_text(values: tuple[Decimal | None, ...] = RISING) -> list[str]:
    return ["" if value is None else str(value) for value in values]


def test_rows_parse_with_both_date_formats_and_missing_points() -> None:
    gappy = (*RISING[:10], None, *RISING[11:])
    text = "\n".join(
        [
            HEADER,
            row("4113000001", "2026-11-20", "1", points_text()),
            row("4113000002", "20261121", "", points_text(gappy)),
        ]
    )

    assert parse(text) == [
        CurveRow(2, Curve("4113000001", date(2026, 11, 20), RISING, data_type="1")),
        CurveRow(3, Curve("4113000002", date(2026, 11, 21), gappy)),
    ]


def test_data_type_column_is_optional_and_header_case_is_ignored() -> None:
    header = ",".join([" id ", "Data_Date", *(name.lower() for name in POINT_COLUMNS)])
    text = header + "\n" + ",".join(["M1", "2026-11-20", *points_text()]) + "\n"

    assert parse(text) == [CurveRow(2, Curve("M1", date(2026, 11, 20), RISING))]


def test_quality_flags_and_extra_columns() -> None:
    header = ",".join([HEADER, *QUALITY_COLUMNS, "ORG_NO", "备注"])
    flags = ["0"] * 95 + [""]
    text = header + "\n" + ",".join([row("M1", "2026-11-20", "1", points_text()), *flags, "41401", "南阳"])

    (parsed,) = parse(text)

    assert parsed == CurveRow(
        2,
        Curve(
            "M1",
            date(2026, 11, 20),
            RISING,
            data_type="1",
            quality=("0",) * 95 + (None,),
            extra={"ORG_NO": "41401", "备注": "南阳"},
        ),
    )


def test_incomplete_quality_set_is_kept_as_extra_columns() -> None:
    text = HEADER + ",Q1\n" + row("M1", "2026-11-20", "1", points_text()) + ",3\n"

    (parsed,) = parse(text)

    assert isinstance(parsed, CurveRow)
    assert parsed.curve.quality is None
    assert parsed.curve.extra == {"Q1": "3"}


def test_a_header_with_the_factor_columns_makes_power_factor_curves() -> None:
    header = ",".join(["ID", "DATA_DATE", *FACTOR_COLUMNS, *QUALITY_COLUMNS])
    factors = [f"0.{900 + n}" for n in range(POINTS)]
    flags = ["0"] * 95 + ["128"]
    good = ",".join(["PB1", "2026-11-20", *factors, *flags])
    # The parser reads numbers; whether 1.2 is a power factor is the canonical model's question.
    above_one = ",".join(["PB2", "2026-11-20", "1.2", *factors[1:], *flags])
    short = ",".join(["PB3", "2026-11-20", *factors[:95], *flags])
    letters = ",".join(["PB4", "2026-11-20", *factors[:9], "abc", *factors[10:], *flags])

    items = parse("\n".join([header, good, above_one, short, letters]))

    first, second, third, fourth = items
    assert isinstance(first, CurveRow) and first.curve.kind is CurveKind.FACTOR
    assert first.curve.points[0] == Decimal("0.900") and first.curve.points[95] == Decimal("0.995")
    assert first.curve.quality == ("0",) * 95 + ("128",)
    assert isinstance(second, CurveRow) and second.curve.points[0] == Decimal("1.2")
    # 2 + 95 factors + 96 flags = 193 cells, the header has 2 + 96 + 96 = 194.
    assert third == CurveRowError(4, "193 fields, but the header has 194", short)
    assert isinstance(fourth, CurveRowError) and fourth.reason == "F10 'abc' is not a decimal number"


def test_a_header_with_both_kinds_of_points_is_refused() -> None:
    header = ",".join(["ID", "DATA_DATE", *POINT_COLUMNS, "F1"])
    with pytest.raises(MalformedInputError, match=r"curves\.csv:1: header has both P and F point columns"):
        parse(header + "\n")


def test_a_factor_header_lacking_points_names_the_factor_columns() -> None:
    with pytest.raises(MalformedInputError, match=r"lacks required columns F3, F4, F5, F6, F7 and 89 more"):
        parse("ID,DATA_DATE,F1,F2\n")


def test_row_errors_do_not_stop_the_good_rows_around_them() -> None:
    good = points_text()
    nan = [*good[:4], "NaN", *good[5:]]
    letters = [*good[:36], "1.2.3", *good[37:95], "abc"]
    text = "\n".join(
        [
            HEADER,
            row("M1", "2026-11-20", "1", good),
            "M2,2026-11-20,1,1.0,2.0",
            row("M3", "2026-02-30", "1", good),
            "",
            row("M4", "2026-11-20", "1", letters),
            row("M5", "2026-11-20", "1", good),
            row("", "2026/11/20", "1", nan),
            '"M7,2026-11-20,1,' + ",".join(good),
            row("M8", "2026-11-20", "1", good),
        ]
    )

    items = parse(text)

    assert [(item.line_no, item.reason) for item in items if isinstance(item, CurveRowError)] == [
        (3, "5 fields, but the header has 99"),
        (4, "DATA_DATE '2026-02-30' is not a date (YYYY-MM-DD or YYYYMMDD)"),
        (6, "P37 '1.2.3' is not a decimal number; P96 'abc' is not a decimal number"),
        (
            8,
            "ID is empty; DATA_DATE '2026/11/20' is not a date (YYYY-MM-DD or YYYYMMDD); "
            "P5 'NaN' is not a decimal number",
        ),
        (9, "bad CSV quoting: unexpected end of data"),
    ]
    assert [(item.line_no, item.curve.id) for item in items if isinstance(item, CurveRow)] == [
        (2, "M1"),
        (7, "M5"),
        (10, "M8"),
    ]


def test_row_error_becomes_a_parkable_error() -> None:
    (error,) = parse(HEADER + "\nM2,2026-11-20\n")

    assert isinstance(error, CurveRowError)
    assert str(error.as_error("curves.csv")) == (
        "curves.csv:2: 2 fields, but the header has 99: 'M2,2026-11-20'"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("", r"curves\.csv: empty file"),
        (
            "ID,DATA_DATE,P1,P2\n",
            r"curves\.csv:1: header lacks required columns P3, P4, P5, P6, P7 and 89 more",
        ),
        (HEADER + ",id\n", r"curves\.csv:1: header column 'id' appears twice"),
        (HEADER + ",\n", r"curves\.csv:1: header column 100 has no name"),
        ('"ID,DATA_DATE\n', r"curves\.csv:1: unreadable CSV header"),
    ],
)
def test_unusable_files_raise(data: str, message: str) -> None:
    with pytest.raises(MalformedInputError, match=message):
        parse(data)


@pytest.mark.parametrize(("codec", "prefix"), [("gbk", b""), ("gb18030", b""), ("utf-8", b"\xef\xbb\xbf")])
def test_chinese_text_in_other_encodings_parses_identically(codec: str, prefix: bytes) -> None:
    text = HEADER + ",备注\n" + row("南阳-01", "2026-11-20", "有功", points_text()) + ",白河变\n"

    assert parse(prefix + text.encode(codec)) == parse(text.encode("utf-8"))
    (parsed,) = parse(text.encode(codec))
    assert isinstance(parsed, CurveRow)
    assert (parsed.curve.id, parsed.curve.data_type, parsed.curve.extra) == (
        "南阳-01",
        "有功",
        {"备注": "白河变"},
    )


def test_render_writes_the_table_layout() -> None:
    curve = Curve("M1,a", date(2026, 11, 20), (Decimal("1E+2"), None, *RISING[2:]), data_type="1")

    text = render_curves([curve], compact_dates=True)

    header, line = text.splitlines()
    assert header == HEADER
    assert line.startswith('"M1,a",20261120,1,100,,0.5,0.75,')


@pytest.mark.parametrize(
    ("curve", "data_type", "message"),
    [
        (Curve("M", date(2026, 1, 1), RISING[:95]), True, "95 points, a daily curve has 96"),
        (Curve("M", date(2026, 1, 1), RISING, data_type="1"), False, "no DATA_TYPE column"),
        (Curve("M", date(2026, 1, 1), RISING, quality=("0",) * 96), True, "need quality=True"),
        (Curve("M", date(2026, 1, 1), RISING, extra={"ORG_NO": "1"}), True, r"extra values \['ORG_NO'\]"),
        (Curve("M\nN", date(2026, 1, 1), RISING), True, "holds a line break"),
    ],
)
def test_render_refuses_to_lose_data(curve: Curve, data_type: bool, message: str) -> None:
    with pytest.raises(MalformedInputError, match=message):
        render_curves([curve], data_type=data_type)


def test_render_writes_factor_curves_under_their_own_columns_only() -> None:
    factors = tuple(Decimal("0.93") for _ in range(POINTS))
    curve = Curve("PB1", date(2026, 11, 20), factors, kind=CurveKind.FACTOR)

    header, line = render_curves([curve], data_type=False, kind=CurveKind.FACTOR).splitlines()

    assert header == ",".join(["ID", "DATA_DATE", *FACTOR_COLUMNS])
    assert line == ",".join(["PB1", "2026-11-20", *(["0.93"] * POINTS)])
    with pytest.raises(MalformedInputError, match="a FACTOR curve in a POWER curve file"):
        render_curves([curve], data_type=False)


cell_text = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=10
).filter(lambda text: text == text.strip())
maybe_text = st.one_of(st.none(), cell_text)
points = st.one_of(
    st.none(),
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**9), max_value=10**9, places=4),
)


@st.composite
def layouts_and_curves(draw: st.DrawFn) -> tuple[dict[str, object], list[Curve]]:
    with_type = draw(st.booleans())
    with_quality = draw(st.booleans())
    kind = draw(st.sampled_from(CurveKind))
    extra_columns = draw(
        st.lists(
            st.sampled_from(["ORG_NO", "备注", "CT", "Q1"] if not with_quality else ["ORG_NO", "备注", "CT"]),
            unique=True,
            max_size=2,
        )
    )
    curves = draw(
        st.lists(
            st.builds(
                Curve,
                id=cell_text,
                data_date=st.dates(min_value=date(1, 1, 1)),
                points=st.tuples(*[points] * POINTS),
                data_type=maybe_text if with_type else st.none(),
                quality=st.tuples(*[maybe_text] * POINTS) if with_quality else st.none(),
                extra=st.fixed_dictionaries({name: maybe_text for name in extra_columns}),
                kind=st.just(kind),
            ),
            max_size=3,
        )
    )
    options = {
        "data_type": with_type,
        "quality": with_quality,
        "extra_columns": extra_columns,
        "compact_dates": draw(st.booleans()),
        "kind": kind,
    }
    return options, curves


@settings(max_examples=60, deadline=None)
@given(case=layouts_and_curves(), codec=st.sampled_from(["utf-8", "gb18030"]))
def test_parse_of_render_is_identity(case: tuple[dict[str, object], list[Curve]], codec: str) -> None:
    options, curves = case

    parsed = parse(render_curves(curves, **options).encode(codec))  # type: ignore[arg-type]

    assert parsed == [CurveRow(line_no, curve) for line_no, curve in enumerate(curves, start=2)]


csv_pieces = st.sampled_from(
    ['"', ",", "\n", "\r\n", " ", "1.5", "2026-11-20", "20261120", "M1", "NaN", "白", "\xff"]
)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(csv_pieces, max_size=60))
def test_any_row_gives_a_curve_or_a_row_error(parts: list[str]) -> None:
    data = (HEADER + "\n" + "".join(parts)).encode("utf-8", "surrogateescape")

    try:
        items = parse(data)
    except MalformedInputError:
        return
    assert all(isinstance(item, CurveRow | CurveRowError) for item in items)
