"""The simulator's files: good ones parse back to what was measured, each fault trigger writes its fault."""

from __future__ import annotations

import io
import os
import random
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from adapters.dispatch.cime import BlockStart, CimeRow, CimeRowError, Header, iter_cime
from adapters.dispatch.curves_csv import CurveKind, CurveRow, CurveRowError, iter_curves
from adapters.dispatch.dropfolder import DropFolder
from adapters.dispatch.intake import DispatchFeed
from ground.errors import ConfigError, MalformedInputError
from ground.settings import PROJECT_ROOT
from pipeline.config import load_hub_config
from pipeline.files import FileIngestor
from simulators.dispatch.equipment import Equipment, EquipmentKind, LoadClass
from simulators.dispatch.faults import Fault
from simulators.dispatch.files import (
    INVALID,
    NOT_TOPICAL,
    SUBSTITUTED,
    power_curve_bytes,
    readings,
    records_power_factor,
)
from simulators.dispatch.writer import DispatchWriter

DAY = date(2026, 7, 22)
FEEDERS = [
    Equipment(f"XL{n:06d}", f"10kV卧龙{n}线", EquipmentKind.FEEDER, 7000.0, LoadClass.RESIDENTIAL)
    for n in range(1, 4)
]
TRANSFORMERS = [
    Equipment(f"PB{n:07d}", f"建设路{n}号公变", EquipmentKind.TRANSFORMER, 360.0, LoadClass.COMMERCIAL)
    for n in range(1, 6)
]


@pytest.fixture
def writer(tmp_path: Path) -> DispatchWriter:
    return DispatchWriter(tmp_path / "out", [*FEEDERS, *TRANSFORMERS], seed=5, oversize_bytes=1_000_000)


def cime_items(path: Path) -> list[object]:
    with path.open("rb") as file:
        return list(iter_cime(file, source_name=path.name))


def csv_items(path: Path) -> list[CurveRow | CurveRowError]:
    with path.open("rb") as file:
        return list(iter_curves(file, source_name=path.name))


def test_a_day_writes_curves_and_telemetry_in_gbk_cime_and_curves_in_csv(writer: DispatchWriter) -> None:
    written = writer.write_day(DAY)
    assert [(item.name, item.rows, item.outcome) for item in written] == [
        ("dispatch_loadcurve_20260722.cime", 3, "published"),
        ("dispatch_analog_20260722T2015.cime", 3, "published"),
        ("metering_power_curve_20260722.csv", 5, "published"),
        # The five are dedicated (commercial): their meters record the power factor.
        ("metering_factor_curve_20260722.csv", 5, "published"),
    ]
    assert sorted(os.listdir(writer.out_dir)) == sorted(item.name for item in written), "no .part is left"
    curves = writer.out_dir / "dispatch_loadcurve_20260722.cime"
    assert b"Code=GBK" in curves.read_bytes().split(b"\n")[0]
    items = cime_items(curves)
    header, start = items[0], items[1]
    assert isinstance(header, Header) and isinstance(start, BlockStart)
    assert (start.class_name, start.entity, start.labels is not None) == ("LoadCurve", "南阳", True)
    rows = [item for item in items if isinstance(item, CimeRow)]
    assert [row.values["mRID"] for row in rows] == ["XL000001", "XL000002", "XL000003"]
    assert rows[0].values["name"] == "10kV卧龙1线" and rows[0].values["date"] == "2026-07-22"
    peak_mw = max(float(value) for key, value in rows[0].values.items() if key.startswith("P") and value)
    assert 1.0 < peak_mw < 9.0, "MW, not kW"
    analog = [
        item
        for item in cime_items(writer.out_dir / "dispatch_analog_20260722T2015.cime")
        if isinstance(item, CimeRow)
    ]
    assert analog[0].values["equipment"] == "XL000001" and analog[0].values["unit"] == "MW"
    assert analog[0].values["time"] == "2026-07-22 20:15:00" and analog[0].values["measurementType"] == "P"
    assert analog[0].values["value"] == rows[0].values["P81"]
    curve_rows = csv_items(writer.out_dir / "metering_power_curve_20260722.csv")
    assert all(isinstance(row, CurveRow) for row in curve_rows) and len(curve_rows) == 5
    factor_rows = csv_items(writer.out_dir / "metering_factor_curve_20260722.csv")
    assert [row.curve.id for row in factor_rows if isinstance(row, CurveRow)] == [
        t.equipment_id for t in TRANSFORMERS
    ]
    for power, factor in zip(curve_rows, factor_rows, strict=True):
        assert isinstance(power, CurveRow) and isinstance(factor, CurveRow)
        assert factor.curve.kind is CurveKind.FACTOR and factor.curve.data_type == "1"
        assert [p is None for p in factor.curve.points] == [p is None for p in power.curve.points]
        assert all(Decimal("0.85") <= f <= Decimal("0.98") for f in factor.curve.points if f is not None)


def test_the_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    outputs = []
    for run in ("a", "b"):
        writer = DispatchWriter(tmp_path / run, [*FEEDERS, *TRANSFORMERS], seed=5)
        writer.write_day(DAY)
        outputs.append(sorted((path.name, path.read_bytes()) for path in (tmp_path / run).iterdir()))
    assert len(outputs[0]) == 4 and outputs[0] == outputs[1]


def test_dedicated_transformers_record_the_power_factor_and_about_half_the_public_ones() -> None:
    public = [
        Equipment(f"PB{n:07d}", "x", EquipmentKind.TRANSFORMER, 400.0, LoadClass.RESIDENTIAL)
        for n in range(400)
    ]
    recording = [item for item in public if records_power_factor(item, 7)]
    assert 160 < len(recording) < 240
    assert recording == [item for item in public if records_power_factor(item, 7)], "fixed per seed"
    assert recording != [item for item in public if records_power_factor(item, 8)]
    assert all(records_power_factor(item, seed) for item in TRANSFORMERS for seed in (7, 8))


def test_industrial_transformers_run_at_their_lowest_power_factor_at_their_peak(tmp_path: Path) -> None:
    factory = Equipment(
        "PB0000009", "南阳纺织有限公司专变", EquipmentKind.TRANSFORMER, 560.0, LoadClass.INDUSTRIAL
    )
    writer = DispatchWriter(tmp_path, [factory], seed=5)
    writer.write_day(DAY)
    [power] = csv_items(tmp_path / "metering_power_curve_20260722.csv")
    [factor] = csv_items(tmp_path / "metering_factor_curve_20260722.csv")
    assert isinstance(power, CurveRow) and isinstance(factor, CurveRow)
    loads = power.curve.points
    peak = max(range(96), key=lambda n: loads[n] or Decimal(0))
    at_peak = factor.curve.points[peak]
    assert at_peak is not None and at_peak < Decimal("0.9"), "below the 0.9 a province would assume"
    night = [f for f in factor.curve.points[:20] if f is not None]  # 00:00-05:00, the base load
    assert sum(night) / len(night) > at_peak + Decimal("0.05")


def test_about_one_percent_of_points_are_flagged_and_spikes_are_flagged_invalid() -> None:
    many = [
        Equipment(f"PB{n:07d}", "x", EquipmentKind.TRANSFORMER, 400.0, LoadClass.RESIDENTIAL)
        for n in range(200)
    ]
    day = readings(many, DAY, random.Random(3))
    codes = [code for reading in day for code in reading.quality]
    flagged = sum(1 for code in codes if code)
    assert 0.005 * len(codes) < flagged < 0.02 * len(codes)
    assert {INVALID, NOT_TOPICAL, SUBSTITUTED} <= set(codes)
    for reading in day:
        good = [value for value, code in zip(reading.load_kw, reading.quality, strict=True) if not code]
        for value, code in zip(reading.load_kw, reading.quality, strict=True):
            if value is None or value > 2.5 * max(v for v in good if v is not None):
                assert code in (INVALID, NOT_TOPICAL), "missing values and spikes are always flagged"


def test_truncated_cime_ends_inside_its_block(writer: DispatchWriter) -> None:
    written = writer.write_fault(Fault.TRUNCATED, DAY)
    assert (written.outcome, written.events, written.fault) == ("error", 0, "truncated")
    with pytest.raises(MalformedInputError, match=r"ends inside block|not valid GBK"):
        cime_items(writer.out_dir / written.name)


def test_wrong_encoding_declares_utf8_over_gbk_bytes(writer: DispatchWriter) -> None:
    written = writer.write_fault(Fault.WRONG_ENCODING, DAY)
    data = (writer.out_dir / written.name).read_bytes()
    assert b"Code=UTF-8" in data.split(b"\n")[0] and "卧龙".encode("gbk") in data
    with pytest.raises(MalformedInputError, match="declared UTF-8"):
        cime_items(writer.out_dir / written.name)


def test_undeclared_encoding_parses_by_detection_with_names_intact(writer: DispatchWriter) -> None:
    written = writer.write_fault(Fault.UNDECLARED_ENCODING, DAY)
    path = writer.out_dir / written.name
    assert b"Code=" not in path.read_bytes().split(b"\n")[0]
    names = [item.values["name"] for item in cime_items(path) if isinstance(item, CimeRow)]
    assert names == ["10kV卧龙1线", "10kV卧龙2线", "10kV卧龙3线"]
    assert (written.outcome, written.events) == ("published", 3)


def test_garbage_rows_are_mixed_into_a_good_cime_file(writer: DispatchWriter) -> None:
    written = writer.write_fault(Fault.GARBAGE_ROWS, DAY)
    items = cime_items(writer.out_dir / written.name)
    errors = [item for item in items if isinstance(item, CimeRowError)]
    rows = [item for item in items if isinstance(item, CimeRow)]
    assert len(errors) == 3, "field count, not CIM/E, broken quote"
    assert len(rows) == 5, "three good rows and two that fail their mapping"
    assert sorted(row.values["P1"] or "" for row in rows)[-1] == "abc"
    assert "2026-13-45" in {row.values["date"] for row in rows}
    assert (written.rows, written.events, written.invalid) == (8, 3, 5)


def test_garbage_rows_are_mixed_into_a_good_csv(writer: DispatchWriter) -> None:
    written = writer.write_fault(Fault.GARBAGE_ROWS_CSV, DAY)
    items = csv_items(writer.out_dir / written.name)
    assert sum(isinstance(item, CurveRowError) for item in items) == 4
    assert sum(isinstance(item, CurveRow) for item in items) == 5
    assert (written.rows, written.events, written.invalid) == (9, 5, 4)


def test_bad_factor_rows_are_mixed_into_a_factor_csv_and_the_hub_parks_just_them(
    writer: DispatchWriter, sqlite_engine: Engine, tmp_path: Path
) -> None:
    written = writer.write_fault(Fault.BAD_FACTOR_CSV, DAY)
    items = csv_items(writer.out_dir / written.name)
    assert sum(isinstance(item, CurveRowError) for item in items) == 2, "not a number, one factor short"
    assert sum(isinstance(item, CurveRow) for item in items) == 7, "five good rows and two out of range"
    assert (written.kind, written.rows, written.events, written.invalid) == ("factor_curve", 9, 5, 4)
    folder = DropFolder(tmp_path / "drop", stable_s=0.0)
    shutil.copy(writer.out_dir / written.name, folder.incoming / written.name)
    feed = DispatchFeed(folder)
    intake = FileIngestor(sqlite_engine, load_hub_config(PROJECT_ROOT).router, feed)
    claim = folder.claim(written.name)
    assert claim is not None
    outcome = intake.take(feed.open(claim))
    assert (outcome.outcome, outcome.rows, outcome.events, outcome.invalid) == (
        written.outcome,
        written.rows,
        written.events,
        written.invalid,
    )


def test_truncated_csv_breaks_only_its_last_row(writer: DispatchWriter) -> None:
    written = writer.write_fault(Fault.TRUNCATED_CSV, DAY)
    items = csv_items(writer.out_dir / written.name)
    assert [type(item).__name__ for item in items] == ["CurveRow"] * 4 + ["CurveRowError"]
    assert (written.events, written.invalid) == (4, 1)


def test_oversized_is_a_sparse_file_of_the_given_size(writer: DispatchWriter) -> None:
    written = writer.write_fault(Fault.OVERSIZED, DAY)
    path = writer.out_dir / written.name
    assert path.stat().st_size == 1_000_000 and written.outcome == "error"
    assert path.stat().st_blocks * 512 < 200_000, "sparse: the size is claimed, not written"


def test_still_writing_pauses_with_half_the_file_under_its_final_name(tmp_path: Path) -> None:
    seen: list[int] = []
    out = tmp_path / "out"
    writer = DispatchWriter(out, TRANSFORMERS, seed=5, pause=lambda: seen.append(len(os.listdir(out))))
    written = writer.write_fault(Fault.STILL_WRITING, DAY)
    path = out / written.name
    assert seen == [1], "paused once, with the file already there"
    assert len(csv_items(path)) == 5 and written.outcome == "published"


def test_a_duplicate_copies_the_last_good_file(writer: DispatchWriter) -> None:
    with pytest.raises(ConfigError, match="write a day first"):
        writer.write_fault(Fault.DUPLICATE, DAY)
    good = writer.write_day(DAY)[-1]
    copy = writer.write_fault(Fault.DUPLICATE, DAY)
    assert copy.name != good.name and copy.outcome == "duplicate" and copy.events == 0
    assert (writer.out_dir / copy.name).read_bytes() == (writer.out_dir / good.name).read_bytes()


def test_a_writer_needs_equipment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least one feeder or transformer"):
        DispatchWriter(tmp_path, [], seed=1)


def test_only_transformers_write_only_the_csv(tmp_path: Path) -> None:
    writer = DispatchWriter(tmp_path, TRANSFORMERS, seed=1)
    assert [item.kind for item in writer.write_day(DAY)] == ["power_curve", "factor_curve"]
    cime_fault = writer.write_fault(Fault.TRUNCATED, DAY)
    assert cime_fault.name.endswith(".cime") and cime_fault.rows == 5


def test_metering_curves_leave_invalid_points_empty_rather_than_write_a_spike() -> None:
    # The curve CSV has no quality codes, so a flagged spike written there would pass as a load.
    item = Equipment("PB0000001", "人民路1号公变", EquipmentKind.TRANSFORMER, 360.0, LoadClass.RESIDENTIAL)
    (reading,) = readings([item], date(2026, 7, 22), random.Random(3), flag_rate=0.3)
    (row,) = list(iter_curves(io.BytesIO(power_curve_bytes([reading])), source_name="t.csv"))
    assert isinstance(row, CurveRow)
    invalid = [n for n, code in enumerate(reading.quality) if code == INVALID]
    assert invalid  # at a 30% flag rate some points are invalid
    assert all(row.curve.points[n] is None for n in invalid)
    good = [n for n, code in enumerate(reading.quality) if code != INVALID and reading.load_kw[n] is not None]
    assert all(row.curve.points[n] is not None for n in good)
