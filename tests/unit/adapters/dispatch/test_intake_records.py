"""Tests of adapters/dispatch/records.py: CIM/E and CSV rows as raw records, skipped and broken rows."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.dispatch.curves_csv import FACTOR_COLUMNS, POINT_COLUMNS, QUALITY_COLUMNS
from adapters.dispatch.records import (
    QUANTITIES,
    FileFormat,
    iter_file_records,
    record_type_of,
    sniff_format,
)
from ground.errors import MalformedInputError
from pipeline.records import BrokenRow, FileItem, RawRecord, SkippedRow

SAMPLE = Path(__file__).parent / "data" / "cime_sample.txt"


def items(data: bytes, file_format: FileFormat, wanted: set[str]) -> list[FileItem]:
    stream = io.BytesIO(data)
    return list(
        iter_file_records(stream, source_name="feed.dat", file_format=file_format, wanted=wanted.__contains__)
    )


def load_curve_file(rows: list[list[str]], *, quality: bool = True) -> bytes:
    columns = ["Num", "mRID", "name", "date", *POINT_COLUMNS, *(QUALITY_COLUMNS if quality else ())]
    lines = ["<! System=D5000 Code=GBK !>", "<LoadCurve::南阳>", "@\t" + "\t".join(columns)]
    lines += ["#\t" + "\t".join(row) for row in rows]
    lines.append("</LoadCurve::南阳>")
    return ("\n".join(lines) + "\n").encode("gbk")


def curve_row(mrid: str, name: str, *, quality: bool = True) -> list[str]:
    points = [f"{n / 100:.2f}" for n in range(96)]
    points[10] = "-"
    codes = ["0"] * 96
    codes[10] = "128"
    return ["1", mrid, name, "2026-11-20", *points, *(codes if quality else [])]


@pytest.mark.parametrize(
    ("class_name", "record_type"),
    [
        ("Analog", "analog"),
        ("LoadCurve", "load_curve"),
        ("FeederPW", "feeder_pw"),
        ("PowerTransformerPW", "power_transformer_pw"),
        ("ACLineSegment", "ac_line_segment"),
        ("BaseVoltage", "base_voltage"),
    ],
)
def test_record_types_are_class_names_in_snake_case(class_name: str, record_type: str) -> None:
    assert record_type_of(class_name) == record_type


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"<! System=D5000 !>\n", "cime"),
        (b"\xef\xbb\xbf<! Code=UTF-8 !>\n", "cime"),
        (b"\n$ remark\n// comment\n  <Analog>\n", "cime"),
        (b"ID,DATA_DATE,P1\n", "csv"),
        (b"\xef\xbb\xbfID,DATA_DATE\n", "csv"),
        (b"", "csv"),
        (b"\x00\x01binary", "csv"),
    ],
)
def test_the_format_is_sniffed_from_the_first_line_with_content(head: bytes, expected: str) -> None:
    assert sniff_format(head) == expected


def test_cime_curve_rows_group_their_points_and_quality_codes() -> None:
    data = load_curve_file([curve_row("XL000001", "10kV白河1线")])
    [record] = items(data, "cime", {"load_curve"})
    assert isinstance(record, RawRecord)
    assert (record.system, record.record_type, record.key) == ("dispatch", "load_curve", "XL000001")
    assert record.position == {"file": "feed.dat", "line": 4, "block": "LoadCurve::南阳"}
    payload = record.payload
    assert payload["name"] == "10kV白河1线" and payload["date"] == "2026-11-20"
    assert not any(key in payload for key in (*POINT_COLUMNS, *QUALITY_COLUMNS))
    points = payload["POINTS"]
    assert len(points) == 96
    assert points[0] == {"P": "0.00", "Q": "0"} and points[95] == {"P": "0.95", "Q": "0"}
    assert points[10] == {"P": None, "Q": "128"}


def test_cime_curves_without_quality_columns_have_no_codes() -> None:
    data = load_curve_file([curve_row("XL000001", "线", quality=False)], quality=False)
    [record] = items(data, "cime", {"load_curve"})
    assert isinstance(record, RawRecord)
    assert {point["Q"] for point in record.payload["POINTS"]} == {None}


def test_rows_of_unrouted_classes_are_skipped_and_broken_lines_reported() -> None:
    data = SAMPLE.read_bytes().replace(b"#\t2\t411300002", b"#\t2\t411300002\textra\tfields")
    result = items(data, "cime", {"analog_p"})
    skipped = [item for item in result if isinstance(item, SkippedRow)]
    broken = [item for item in result if isinstance(item, BrokenRow)]
    records = [item for item in result if isinstance(item, RawRecord)]
    assert [(item.line_no, item.record_type) for item in skipped] == [
        (5, "substation"),
        (11, "feeder_pw"),
        (12, "feeder_pw"),
        (13, "feeder_pw"),
    ]
    assert [item.line_no for item in broken] == [6]
    assert broken[0].message.startswith("feed.dat:6: 8 fields, but the column line (line 3) has 6")
    assert "extra" in broken[0].raw_line
    assert [record.key for record in records] == ["411300101-P", "411300102-P", "411300201-P"]
    assert {record.record_type for record in records} == {"analog_p"}
    assert records[2].payload["value"] is None and records[2].payload["quality"] == "8"
    assert (records[2].payload["EQUIPMENT"], records[2].payload["QUANTITY"]) == ("411300201", "P")
    assert "POINTS" not in records[0].payload


def test_a_row_without_mrid_is_keyed_by_file_and_line() -> None:
    data = "<! Code=UTF-8 !>\n<Analog>\n@ name equipment measurementType value\n# 甲 XL1 P 1.5\n</Analog>\n"
    [record] = items(data.encode(), "cime", {"analog_p"})
    assert isinstance(record, RawRecord)
    assert record.key == "feed.dat:4" and record.position["block"] == "Analog"


def test_a_truncated_cime_file_fails_after_its_first_rows() -> None:
    data = load_curve_file([curve_row("XL1", "一"), curve_row("XL2", "二")])
    cut = data[: data.rindex(b"</LoadCurve")]
    stream = iter_file_records(io.BytesIO(cut), source_name="cut.cime", file_format="cime", wanted=bool)
    assert isinstance(next(stream), RawRecord)
    assert isinstance(next(stream), RawRecord)
    with pytest.raises(MalformedInputError, match=r"cut.cime:\d+: the file ends inside block"):
        next(stream)


def test_csv_rows_become_power_curve_records_with_exact_points() -> None:
    header = "ID,DATA_DATE,DATA_TYPE," + ",".join(POINT_COLUMNS) + ",NAME"
    points = ["1.10"] * 96
    points[0] = "0.0001"
    points[95] = ""
    good = ",".join(["PB0000001", "20261120", "1", *points, "卧龙路1号公变"])
    bad = ",".join(["PB0000002", "2026-11-20", "1", *(["x"] * 96), ""])
    data = "\n".join([header, good, bad, ""]).encode("utf-8")
    record, broken = items(data, "csv", {"power_curve"})
    assert isinstance(record, RawRecord) and isinstance(broken, BrokenRow)
    assert (record.record_type, record.key, record.position) == (
        "power_curve",
        "PB0000001/2026-11-20",
        {"file": "feed.dat", "line": 2},
    )
    payload = record.payload
    assert payload["DATA_DATE"] == "2026-11-20" and payload["DATA_TYPE"] == "1"
    assert payload["NAME"] == "卧龙路1号公变"
    assert payload["POINTS"][0] == {"P": "0.0001", "Q": None}
    assert payload["POINTS"][1] == {"P": "1.10", "Q": None}
    assert payload["POINTS"][95] == {"P": None, "Q": None}
    assert broken.line_no == 3 and broken.message.startswith("feed.dat:3: P1 'x' is not a decimal number")


def test_csv_rows_are_skipped_when_no_route_takes_them() -> None:
    header = "ID,DATA_DATE," + ",".join(POINT_COLUMNS)
    data = "\n".join([header, ",".join(["A", "2026-11-20", *(["1"] * 96)])]).encode()
    assert items(data, "csv", set()) == [SkippedRow(2, "power_curve")]


def test_csv_rows_of_a_factor_file_become_factor_curve_records() -> None:
    header = "ID,DATA_DATE," + ",".join([*FACTOR_COLUMNS, *QUALITY_COLUMNS])
    factors = ["0.95"] * 96
    factors[79] = "0.80"
    codes = ["0"] * 96
    codes[5] = "128"
    data = "\n".join([header, ",".join(["PB0000001", "2026-11-20", *factors, *codes])]).encode()
    [record] = items(data, "csv", {"factor_curve"})
    assert isinstance(record, RawRecord)
    assert (record.record_type, record.key) == ("factor_curve", "PB0000001/2026-11-20")
    assert record.payload["POINTS"][79] == {"F": "0.80", "Q": "0"}
    assert record.payload["POINTS"][5] == {"F": "0.95", "Q": "128"}
    assert not any(key.startswith(("F", "Q")) for key in record.payload if key != "POINTS")
    assert items(data, "csv", {"power_curve"}) == [SkippedRow(2, "factor_curve")]


def analog_file(columns: str, rows: list[str]) -> bytes:
    lines = ["<! System=D5000 Code=GBK !>", "<Analog::南阳>", "@\t" + columns.replace(" ", "\t")]
    lines += ["#\t" + row.replace(" ", "\t") for row in rows]
    lines.append("</Analog::南阳>")
    return ("\n".join(lines) + "\n").encode("gbk")


ANALOG_QUANTITIES = {"analog_p", "analog_q", "analog_i", "analog_u"}


def test_an_analog_mrid_names_the_equipment_and_the_quantity() -> None:
    data = analog_file(
        "Num mRID name value unit quality time",
        [
            "1 411300101-P 白河Ⅰ线有功 4.62 MW 0 2026-11-20T00:15:00",
            "2 411300101-Q 白河Ⅰ线无功 1.10 Mvar 0 2026-11-20T00:15:00",
            "3 411300101-I 白河Ⅰ线电流 210 A 0 2026-11-20T00:15:00",
            "4 411300001-U 白河变母线电压 10.4 kV 0 2026-11-20T00:15:00",
            "5 411300001-v 白河变母线电压 10.5 kV 0 2026-11-20T00:15:00",
            "6 XL-0001-p 带连字符的设备 1.0 MW 0 2026-11-20T00:15:00",
        ],
    )

    records = items(data, "cime", ANALOG_QUANTITIES)

    assert all(isinstance(record, RawRecord) for record in records)
    named = [
        (record.record_type, record.payload["EQUIPMENT"], record.payload["QUANTITY"], record.key)
        for record in records
        if isinstance(record, RawRecord)
    ]
    assert named == [
        ("analog_p", "411300101", "P", "411300101-P"),
        ("analog_q", "411300101", "Q", "411300101-Q"),
        ("analog_i", "411300101", "I", "411300101-I"),
        ("analog_u", "411300001", "U", "411300001-U"),
        ("analog_u", "411300001", "V", "411300001-v"),
        ("analog_p", "XL-0001", "P", "XL-0001-p"),
    ]


def outline(item: FileItem) -> tuple[str, int]:
    line = item.position["line"] if isinstance(item, RawRecord) else item.line_no
    return type(item).__name__, line


def test_analog_rows_of_quantities_without_a_route_are_skipped_not_broken() -> None:
    data = analog_file(
        "Num mRID value quality",
        ["1 411300101-P 4.62 0", "2 411300101-Q 1.10 0", "3 411300101-I 210 0", "4 411300102-P 3.18 0"],
    )

    result = items(data, "cime", {"analog_p"})

    assert [outline(item) for item in result] == [
        ("RawRecord", 4),
        ("SkippedRow", 5),
        ("SkippedRow", 6),
        ("RawRecord", 7),
    ]
    assert [item.record_type for item in result if isinstance(item, SkippedRow)] == ["analog_q", "analog_i"]


@pytest.mark.parametrize(
    ("columns", "row", "reason"),
    [
        (
            "Num mRID value",
            "1 411300101-X 4.62",
            "mRID '411300101-X' ends in an unknown quantity 'X'; known: P active power, Q reactive power, "
            "I current, U or V voltage",
        ),
        (
            "Num mRID value",
            "1 411300101 4.62",
            "mRID '411300101' does not name the measured equipment as <equipment>-<quantity> "
            "(e.g. 411300101-P), and the block has no equipment column",
        ),
        (
            "Num mRID measurementType value",
            "1 411300101-Q P 4.62",
            "mRID '411300101-Q' names quantity Q, but measurementType says 'P'",
        ),
        (
            "Num mRID equipment measurementType value",
            "1 YC0001 XL1 功率 4.62",
            "unknown quantity in measurementType '功率'; known: P active power, Q reactive power, I current, "
            "U or V voltage",
        ),
        (
            "Num mRID equipment value",
            "1 YC0001 XL1 4.62",
            "no quantity: measurementType is empty or missing, and mRID 'YC0001' has no -<quantity> suffix",
        ),
        (
            "Num mRID equipment value",
            "1 YC0001-P null 4.62",
            "the equipment column is empty: the row names no measured equipment",
        ),
    ],
)
def test_an_analog_row_that_does_not_name_what_it_measures_is_broken_with_its_line(
    columns: str, row: str, reason: str
) -> None:
    good = "2 411300102-P 3.18" if columns == "Num mRID value" else None
    rows = [row, good] if good else [row]
    result = items(analog_file(columns, rows), "cime", ANALOG_QUANTITIES)

    broken = result[0]
    assert isinstance(broken, BrokenRow)
    assert broken.line_no == 4 and broken.message == f"feed.dat:4: {reason}"
    assert broken.raw_line == "#\t" + row.replace(" ", "\t")
    if good:
        assert isinstance(result[1], RawRecord) and result[1].payload["EQUIPMENT"] == "411300102"


def test_an_equipment_column_names_the_equipment_when_the_block_has_one() -> None:
    data = analog_file(
        "Num mRID equipment measurementType value", ["1 YC-0001-P XL000001 P 1.5", "2 YC0002 XL000002 p 2.5"]
    )

    records = items(data, "cime", {"analog_p"})

    assert [
        (record.payload["EQUIPMENT"], record.payload["QUANTITY"])
        for record in records
        if isinstance(record, RawRecord)
    ] == [("XL000001", "P"), ("XL000002", "P")]


def test_each_grid_block_kind_is_a_record_type_with_names_kept_whole() -> None:
    blocks = [
        ("Substation", "Num mRID name type x y", "1 411300001 白河 变 110kV 112.5301 32.9907"),
        ("SubstationPW", "Num mRID name type x y", "1 411300501 独山 开闭所 10kV 112.55 33.01"),
        (
            "Feeder",
            "Num mRID name substation ratedCurrent tieSwitches",
            "1 411300301 白河 出线 411300001 600 0",
        ),
        (
            "FeederPW",
            "Num mRID name substation ratedCurrent tieSwitches",
            "1 411300101 白河Ⅰ线 东段 411300001 485 2",
        ),
    ]
    lines = ["<! System=D5000 Code=GBK !>"]
    for class_name, columns, row in blocks:
        cells = row.split(" ")
        # The name holds a space; only tabs separate the fields.
        cells[2:4] = [f"{cells[2]} {cells[3]}"]
        lines += [f"<{class_name}::南阳>", "@\t" + columns.replace(" ", "\t"), "#\t" + "\t".join(cells)]
        lines.append(f"</{class_name}::南阳>")
    data = ("\n".join(lines) + "\n").encode("gbk")

    records = items(data, "cime", {"substation", "substation_pw", "feeder", "feeder_pw"})

    assert [
        (record.record_type, record.key, record.payload["name"])
        for record in records
        if isinstance(record, RawRecord)
    ] == [
        ("substation", "411300001", "白河 变"),
        ("substation_pw", "411300501", "独山 开闭所"),
        ("feeder", "411300301", "白河 出线"),
        ("feeder_pw", "411300101", "白河Ⅰ线 东段"),
    ]
    assert len(records) == 4


@settings(max_examples=100, deadline=None)
@given(
    equipment=st.text(st.sampled_from("0123456789ABXLab-_白河"), min_size=1, max_size=12),
    quantity=st.sampled_from(sorted(QUANTITIES)),
)
def test_any_equipment_id_comes_back_whole_from_its_mrid(equipment: str, quantity: str) -> None:
    data = analog_file("Num mRID value", [f"1 {equipment}-{quantity.lower()} 1.0"])

    [record] = items(data, "cime", set(QUANTITIES.values()))

    assert isinstance(record, RawRecord)
    assert (record.payload["EQUIPMENT"], record.payload["QUANTITY"]) == (equipment, quantity)
    assert record.record_type == QUANTITIES[quantity]
