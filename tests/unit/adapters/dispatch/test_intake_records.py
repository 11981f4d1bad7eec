"""Tests of adapters/dispatch/records.py: CIM/E and CSV rows as raw records, skipped and broken rows."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from adapters.dispatch.curves_csv import POINT_COLUMNS, QUALITY_COLUMNS
from adapters.dispatch.records import (
    BrokenRow,
    FileFormat,
    FileItem,
    SkippedRow,
    iter_file_records,
    record_type_of,
    sniff_format,
)
from adapters.records import RawRecord
from yekuo.errors import MalformedInputError

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
    result = items(data, "cime", {"analog"})
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
    assert records[2].payload["value"] is None and records[2].payload["quality"] == "8"
    assert "POINTS" not in records[0].payload


def test_a_row_without_mrid_is_keyed_by_file_and_line() -> None:
    data = "<! Code=UTF-8 !>\n<Analog>\n@ name value\n# 甲 1.5\n</Analog>\n".encode()
    [record] = items(data, "cime", {"analog"})
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
