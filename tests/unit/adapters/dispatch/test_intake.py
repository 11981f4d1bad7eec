"""Tests of the dispatch file intake (adapters/dispatch/intake.py feeding pipeline/files.py): a transaction
per file, duplicates, bad rows, file errors."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.dispatch.curves_csv import FACTOR_COLUMNS, POINT_COLUMNS, QUALITY_COLUMNS
from adapters.dispatch.dropfolder import DropFolder
from adapters.dispatch.intake import DispatchFeed, DispatchFile
from adapters.dispatch.records import sniff_format as records_sniff_format
from canonical_model.envelope import CloudEvent
from ground.settings import PROJECT_ROOT, DispatchSettings
from pipeline.config import load_hub_config
from pipeline.decoded import DecodedEvent
from pipeline.files import FileIngestor
from pipeline.records import EventDraft, RawRecord
from pipeline.routing import Router
from store.loads import (
    dispatch_file_log,
    dispatch_files,
    load_measurements,
    load_profiles,
    power_factor_curves,
)
from store.loads import published_file as store_published_file
from store.parking import list_parked
from store.schema import outbox
from workflow.grid import get_equipment, handle_grid_event
from workflow.loads import handle_load_event

# The hub's dispatch intake: the file ingest over the drop folder's feed.
DispatchIntake = FileIngestor[DispatchFile]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TickingClock:
    """A clock that moves one second per reading, so every step may look at the folder again."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture(scope="module")
def router() -> Router:
    return load_hub_config(PROJECT_ROOT).router


@pytest.fixture
def folder(tmp_path: Path) -> DropFolder:
    return DropFolder(tmp_path / "drop", stable_s=0.0)


@pytest.fixture
def intake(sqlite_engine: Engine, router: Router, folder: DropFolder) -> DispatchIntake:
    return DispatchIntake(
        sqlite_engine, router, DispatchFeed(folder, scan_interval_s=0.5, clock=TickingClock())
    )


def run_until_idle(intake: DispatchIntake, limit: int = 100) -> int:
    """Step until two steps in a row find nothing (the first look at a new file only observes it)."""
    taken = idle = 0
    for _ in range(limit):
        if intake.step():
            taken += 1
            idle = 0
            continue
        idle += 1
        if idle == 2:
            return taken
    raise AssertionError("the intake never went idle")


def points(base: float, *, bad: dict[int, tuple[str, str]] | None = None) -> tuple[list[str], list[str]]:
    values = [f"{base + n / 1000:.4f}" for n in range(96)]
    codes = ["0"] * 96
    for index, (value, code) in (bad or {}).items():
        values[index], codes[index] = value, code
    return values, codes


def curve_cime(
    rows: list[tuple[str, str, list[str], list[str]]],
    *,
    declared: str | None = "GBK",
    encoding: str = "gbk",
    extra_block: bool = True,
) -> bytes:
    code = f" Code={declared}" if declared else ""
    lines = [f"<! System=D5000{code} Time='2026-11-21 00:05:00' !>"]
    if extra_block:
        lines += ["<Breaker::南阳>", "@\tNum\tmRID\tname", "#\t1\tKG000001\t白河开关", "</Breaker::南阳>"]
    lines += [
        "<LoadCurve::南阳>",
        "@\t" + "\t".join(["Num", "mRID", "name", "date", *POINT_COLUMNS, *QUALITY_COLUMNS]),
    ]
    for number, (mrid, name, values, codes) in enumerate(rows, start=1):
        lines.append("#\t" + "\t".join([str(number), mrid, name, "2026-11-20", *values, *codes]))
    lines.append("</LoadCurve::南阳>")
    return ("\n".join(lines) + "\n").encode(encoding)


def curve_csv(lines: list[str]) -> bytes:
    header = "ID,DATA_DATE,DATA_TYPE," + ",".join(POINT_COLUMNS)
    return ("\n".join([header, *lines]) + "\n").encode("utf-8")


def csv_row(equipment: str, value: str = "12.5") -> str:
    return ",".join([equipment, "2026-11-20", "1", *([value] * 96)])


def events(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.body, outbox.c.routing_key).order_by(outbox.c.id)).all()
    return [{**json.loads(row.body), "routing_key": row.routing_key} for row in rows]


def log_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(dispatch_file_log).order_by(dispatch_file_log.c.id)).all()
    return [dict(row._mapping) for row in rows]


def drop(folder: DropFolder, name: str, data: bytes) -> Path:
    path = folder.incoming / name
    path.write_bytes(data)
    return path


def test_a_good_file_is_published_whole_and_moved_to_done(
    intake: DispatchIntake, folder: DropFolder, sqlite_engine: Engine
) -> None:
    flagged = {3: ("-", "128"), 80: ("99.0000", "128"), 81: ("1.2000", "64")}
    rows = [
        ("XL000001", "10kV白河Ⅰ线", *points(1.5, bad=flagged)),
        ("XL000002", "10kV卧龙2线", *points(2.0)),
        ("XL000003", "10kV光武3线", *points(0.5)),
    ]
    drop(folder, "dispatch_loadcurve_20261120.cime", curve_cime(rows))
    assert run_until_idle(intake) == 1
    published = events(sqlite_engine)
    assert [event["subject"] for event in published] == ["XL000001", "XL000002", "XL000003"]
    assert {event["type"] for event in published} == {"cn.yekuo.load.profile.recorded.v1"}
    assert {event["routing_key"] for event in published} == {"load.profile.recorded"}
    assert len({event["correlationid"] for event in published}) == 1, "one correlation id per file"
    first = published[0]["data"]
    assert first["equipment_name"] == "10kV白河Ⅰ线" and first["source"] == "dispatch"
    assert first["data_date"] == "2026-11-20" and len(first["points"]) == 96
    assert first["points"][0] == {"load_kw": 1500.0, "quality": 0}
    assert first["points"][3] == {"quality": 128}
    assert first["points"][80] == {"quality": 128}, "a value flagged invalid is kept as missing"
    assert first["points"][81] == {"load_kw": 1200.0, "quality": 64}, "a stale value keeps its number"
    [entry] = log_rows(sqlite_engine)
    assert (entry["outcome"], entry["rows"], entry["events"], entry["invalid"], entry["skipped"]) == (
        "published",
        4,
        3,
        0,
        1,
    )
    assert entry["file_name"] == "dispatch_loadcurve_20261120.cime"
    assert os.listdir(folder.done) == [entry["stored_name"]]
    assert os.listdir(folder.processing) == [] and os.listdir(folder.incoming) == []
    with sqlite_engine.connect() as conn:
        [published_file] = conn.execute(sa.select(dispatch_files)).all()
    assert published_file.sha256 == entry["sha256"] and published_file.format == "cime"
    assert intake.stats.published == 1 and intake.stats.events == 3


def test_the_same_content_under_another_name_is_not_published_again(
    intake: DispatchIntake, folder: DropFolder, sqlite_engine: Engine
) -> None:
    data = curve_csv([csv_row("PB0000001"), csv_row("PB0000002")])
    drop(folder, "curves.csv", data)
    run_until_idle(intake)
    drop(folder, "curves_again.csv", data)
    drop(folder, "curves.csv", data)
    assert run_until_idle(intake) == 2
    assert len(events(sqlite_engine)) == 2
    outcomes = [(row["file_name"], row["outcome"]) for row in log_rows(sqlite_engine)]
    assert outcomes[0] == ("curves.csv", "published")
    assert sorted(outcomes[1:]) == [("curves.csv", "duplicate"), ("curves_again.csv", "duplicate")]
    duplicate = log_rows(sqlite_engine)[1]
    assert duplicate["reason"].startswith("same content as curves.csv, published ")
    assert len(os.listdir(folder.done)) == 3
    assert intake.stats.duplicates == 2


def test_a_duplicate_committed_by_another_process_meanwhile_is_caught_by_the_hash_key(
    intake: DispatchIntake, folder: DropFolder, sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = curve_csv([csv_row("PB0000001")])
    drop(folder, "first.csv", data)
    run_until_idle(intake)
    real = store_published_file
    calls: list[str] = []

    def missed_once(conn: sa.Connection, sha256: str) -> dict[str, Any] | None:
        calls.append(sha256)
        return None if len(calls) == 1 else real(conn, sha256)

    monkeypatch.setattr("pipeline.files.published_file", missed_once)
    drop(folder, "second.csv", data)
    run_until_idle(intake)
    assert len(events(sqlite_engine)) == 1
    assert [row["outcome"] for row in log_rows(sqlite_engine)] == ["published", "duplicate"]
    assert len(calls) == 2


def test_bad_rows_are_parked_with_file_line_and_reason_and_the_good_rows_flow(
    intake: DispatchIntake, folder: DropFolder, sqlite_engine: Engine
) -> None:
    lines = [
        csv_row("PB0000001"),
        csv_row("PB0000002", value="abc"),
        "PB0000003,2026-11-20,1,1,2",
        csv_row("PB0000004"),
        ",".join(["PB0000005", "2026-11-20", "9", *(["1"] * 96)]),
    ]
    drop(folder, "curves.csv", curve_csv(lines))
    run_until_idle(intake)
    assert [event["subject"] for event in events(sqlite_engine)] == ["PB0000001", "PB0000004"]
    with sqlite_engine.connect() as conn:
        parked = list_parked(conn, "invalid")
    assert [(item.position or {}).get("line") for item in parked] == [3, 4, 6]
    assert all((item.position or {}).get("file") == "curves.csv" for item in parked)
    assert parked[0].reason.startswith("curves.csv:3: P1 'abc' is not a decimal number")
    assert parked[1].reason.startswith("curves.csv:4: 5 fields, but the header has 99")
    assert parked[1].payload == {"line": "PB0000003,2026-11-20,1,1,2"}
    assert parked[2].reason_code == "mapping"
    assert parked[2].reason.startswith("curves.csv:6: mappings/dispatch/power_curve.yaml:")
    assert "dispatch/curve_data_type" in parked[2].reason and "'9'" in parked[2].reason
    assert parked[2].payload["ID"] == "PB0000005"
    [entry] = log_rows(sqlite_engine)
    assert (entry["outcome"], entry["rows"], entry["events"], entry["invalid"]) == ("published", 5, 2, 3)


def factor_row(equipment: str, factors: list[str], codes: list[str] | None = None) -> str:
    return ",".join([equipment, "2026-11-20", "1", *factors, *(codes or ["0"] * 96)])


def test_a_factor_curve_file_publishes_its_good_rows_and_parks_each_bad_one_with_its_reason(
    intake: DispatchIntake, folder: DropFolder, sqlite_engine: Engine
) -> None:
    good = ["0.95"] * 96
    good[80] = "0.80"
    flagged = list(good)
    flagged[80] = "9.99"  # a spike the meter itself flags invalid: missing, not a reason to park the day
    flagged_codes = ["0"] * 80 + ["128"] + ["0"] * 15
    header = "ID,DATA_DATE,DATA_TYPE," + ",".join([*FACTOR_COLUMNS, *QUALITY_COLUMNS])
    lines = [
        factor_row("PB0000001", good),
        factor_row("PB0000002", [*good[:80], "1.2", *good[81:]]),
        factor_row("PB0000003", ["0", *good[1:]]),
        factor_row("PB0000004", [*good[:4], "abc", *good[5:]]),
        factor_row("PB0000005", good[:95]),
        factor_row("PB0000006", flagged, flagged_codes),
        factor_row("PB0000007", [*good[:9], "-0.85", *good[10:]]),
    ]
    drop(folder, "factors.csv", ("\n".join([header, *lines]) + "\n").encode("utf-8"))
    run_until_idle(intake)

    published = events(sqlite_engine)
    assert [event["subject"] for event in published] == ["PB0000001", "PB0000006"]
    assert {event["type"] for event in published} == {"cn.yekuo.load.power_factor.recorded.v1"}
    assert {event["routing_key"] for event in published} == {"load.power_factor.recorded"}
    assert published[0]["data"]["points"][80] == {"power_factor": 0.8, "quality": 0}
    assert published[1]["data"]["points"][80] == {"quality": 128}
    with sqlite_engine.connect() as conn:
        parked = list_parked(conn, "invalid")
    assert [(item.position or {}).get("line") for item in parked] == [3, 4, 5, 6, 8]
    above_one, zero, letters, short, negative = parked
    for item, line, point, limit in [
        (above_one, 3, 80, "less than or equal to 1: 1.2"),
        (zero, 4, 0, "greater than 0: 0.0"),
        (negative, 8, 9, "greater than 0: -0.85"),
    ]:
        assert item.reason_code == "schema"
        assert item.reason == (
            f"factors.csv:{line}: mappings/dispatch/factor_curve.yaml:20: "
            f"field 'points.{point}.power_factor' (source F) (PowerFactorProfile): Input should be {limit}"
        ), "the point alone: its day still has 96 points"
    assert letters.reason.startswith("factors.csv:5: F5 'abc' is not a decimal number")
    # ID, DATA_DATE, DATA_TYPE, 95 factors and 96 codes: one cell short of the header.
    assert short.reason.startswith("factors.csv:6: 194 fields, but the header has 195")
    [entry] = log_rows(sqlite_engine)
    assert (entry["outcome"], entry["rows"], entry["events"], entry["invalid"]) == ("published", 7, 2, 5)

    with sqlite_engine.begin() as conn:
        for event in cloud_events(sqlite_engine):
            handle_load_event(conn, DecodedEvent(event))
    with sqlite_engine.connect() as conn:
        stored = {row.equipment_id: row for row in conn.execute(sa.select(power_factor_curves))}
    assert stored["PB0000001"].factors[80] == 0.8 and stored["PB0000001"].good_points == 96
    assert stored["PB0000006"].factors[80] is None and stored["PB0000006"].good_points == 95


def test_a_truncated_file_goes_to_error_with_its_reason_and_none_of_its_rows(
    intake: DispatchIntake, folder: DropFolder, sqlite_engine: Engine
) -> None:
    rows = [("XL000001", "一线", *points(1.0)), ("XL000002", "二线", *points(1.0))]
    data = curve_cime(rows)
    cut = data[: data.index(b"#\t2\t") + 40]
    drop(folder, "cut.cime", cut)
    run_until_idle(intake)
    assert events(sqlite_engine) == []
    with sqlite_engine.connect() as conn:
        assert list_parked(conn) == [], "the broken last line was rolled back with the rest"
    [entry] = log_rows(sqlite_engine)
    assert entry["outcome"] == "error" and entry["events"] == 0 and entry["invalid"] == 0
    assert "the file ends inside block <LoadCurve::南阳>" in entry["reason"]
    [failed] = [path for path in folder.error.iterdir() if not path.name.endswith(".reason")]
    reason = (folder.error / f"{failed.name}.reason").read_text(encoding="utf-8")
    assert reason.startswith("cut.cime:") and "none of the file's rows was published" in reason
    assert failed.read_bytes() == cut
    with sqlite_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(dispatch_files)).scalar_one() == 0


def test_a_file_whose_declared_encoding_is_wrong_goes_to_error(
    intake: DispatchIntake, folder: DropFolder, sqlite_engine: Engine
) -> None:
    drop(folder, "wrong.cime", curve_cime([("XL1", "白河线", *points(1.0))], declared="UTF-8"))
    run_until_idle(intake)
    assert events(sqlite_engine) == []
    [entry] = log_rows(sqlite_engine)
    assert entry["outcome"] == "error" and "declared UTF-8 but line" in entry["reason"]


def test_an_undeclared_gbk_file_is_detected_and_keeps_its_chinese_names(
    intake: DispatchIntake, folder: DropFolder, sqlite_engine: Engine
) -> None:
    drop(folder, "nocode.cime", curve_cime([("XL1", "10kV独山1线", *points(1.0))], declared=None))
    run_until_idle(intake)
    [event] = events(sqlite_engine)
    assert event["data"]["equipment_name"] == "10kV独山1线"


def test_an_oversized_file_goes_to_error_unread(
    sqlite_engine: Engine, router: Router, folder: DropFolder
) -> None:
    feed = DispatchFeed(folder, scan_interval_s=0.5, clock=TickingClock(), max_file_bytes=100)
    intake = DispatchIntake(sqlite_engine, router, feed)
    drop(folder, "big.csv", curve_csv([csv_row("PB0000001")]))
    run_until_idle(intake)
    [entry] = log_rows(sqlite_engine)
    assert entry["outcome"] == "error" and entry["sha256"] is None
    assert entry["reason"] == f"big.csv: {entry['size_bytes']} bytes, more than the 100 bytes allowed"
    assert events(sqlite_engine) == []


def test_a_file_that_changes_while_it_is_read_is_not_published(
    intake: DispatchIntake, folder: DropFolder, sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = records_sniff_format

    def late_writer(head: bytes) -> Any:
        # Runs between the hash and the parse: the producer appends after the claim.
        [claimed] = folder.processing.iterdir()
        with claimed.open("ab") as file:
            file.write(csv_row("PB0000009").encode() + b"\n")
        return real(head)

    monkeypatch.setattr("adapters.dispatch.intake.sniff_format", late_writer)
    drop(folder, "growing.csv", curve_csv([csv_row("PB0000001")]))
    run_until_idle(intake)
    assert events(sqlite_engine) == []
    [entry] = log_rows(sqlite_engine)
    assert entry["outcome"] == "error" and "changed while it was read" in entry["reason"]


class FlakyRouter:
    """Routes like the real router but fails once with a database error on the given call."""

    def __init__(self, router: Router, fail_on: int) -> None:
        self._router = router
        self._fail_on = fail_on
        self.calls = 0

    def routes_for(self, system: str, record_type: str) -> Any:
        return self._router.routes_for(system, record_type)

    def route(self, record: RawRecord) -> list[EventDraft]:
        self.calls += 1
        if self.calls == self._fail_on:
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        return self._router.route(record)


def test_a_failure_that_is_not_the_files_leaves_it_for_a_retry_with_nothing_committed(
    sqlite_engine: Engine, router: Router, folder: DropFolder
) -> None:
    flaky = FlakyRouter(router, fail_on=2)
    feed = DispatchFeed(folder, scan_interval_s=0.5, clock=TickingClock())
    intake = DispatchIntake(sqlite_engine, cast(Router, flaky), feed)
    drop(folder, "curves.csv", curve_csv([csv_row("PB0000001"), csv_row("PB0000002")]))
    intake.step()
    with pytest.raises(sa.exc.OperationalError):
        intake.step()
    assert events(sqlite_engine) == [] and log_rows(sqlite_engine) == []
    assert len(os.listdir(folder.processing)) == 1
    assert run_until_idle(intake) == 1
    assert [event["subject"] for event in events(sqlite_engine)] == ["PB0000001", "PB0000002"]
    assert [row["outcome"] for row in log_rows(sqlite_engine)] == ["published"]
    assert os.listdir(folder.processing) == []


def test_half_written_files_wait_until_complete(
    sqlite_engine: Engine, router: Router, tmp_path: Path
) -> None:
    clock = FakeClock()
    folder = DropFolder(tmp_path / "drop", stable_s=2.0, clock=clock)
    intake = DispatchIntake(sqlite_engine, router, DispatchFeed(folder, scan_interval_s=0.5, clock=clock))
    data = curve_csv([csv_row(f"PB{n:07d}") for n in range(4)])
    (folder.incoming / "temp.csv.part").write_bytes(data)
    growing = folder.incoming / "growing.csv"
    # The producer appends a chunk every second; each look finds a new size, so it is never ready.
    for start in range(0, len(data), 200):
        with growing.open("ab") as file:
            file.write(data[start : start + 200])
        assert intake.step() is False
        clock.now += 1.0
    assert intake.step() is False, "complete, but unchanged for one second only"
    clock.now += 1.0
    assert intake.step() is True
    assert [event["subject"] for event in events(sqlite_engine)] == [f"PB{n:07d}" for n in range(4)]
    clock.now += 100
    assert intake.step() is False
    assert (folder.incoming / "temp.csv.part").exists(), "temporary names are never taken"


def test_new_files_are_looked_for_once_per_scan_interval(
    sqlite_engine: Engine, router: Router, tmp_path: Path
) -> None:
    clock = FakeClock()
    folder = DropFolder(tmp_path / "drop", stable_s=0.0, clock=clock)
    intake = DispatchIntake(sqlite_engine, router, DispatchFeed(folder, scan_interval_s=5.0, clock=clock))
    assert intake.step() is False
    drop(folder, "curves.csv", curve_csv([csv_row("PB0000001")]))
    clock.now += 4.9
    assert intake.step() is False
    clock.now += 0.1
    assert intake.step() is False, "the first look only observes the file"
    clock.now += 5.0
    assert intake.step() is True


def test_progress_is_logged_while_a_large_file_is_read(
    sqlite_engine: Engine, router: Router, folder: DropFolder, caplog: pytest.LogCaptureFixture
) -> None:
    feed = DispatchFeed(folder, scan_interval_s=0.5, clock=TickingClock())
    intake = DispatchIntake(sqlite_engine, router, feed, progress_every_rows=2)
    drop(folder, "curves.csv", curve_csv([csv_row(f"PB{n:07d}") for n in range(5)]))
    with caplog.at_level(logging.INFO, logger="pipeline.files"):
        run_until_idle(intake)
    progress = [record.getMessage() for record in caplog.records if record.getMessage().startswith("reading")]
    assert len(progress) == 2
    assert progress[0].startswith("reading curves.csv: 2 rows, ")
    assert progress[1].startswith("reading curves.csv: 4 rows, ")


def test_the_intake_is_built_from_the_settings(sqlite_engine: Engine, router: Router, tmp_path: Path) -> None:
    settings = DispatchSettings(drop_dir=tmp_path / "feeds", stable_s=0.0, max_file_bytes=50)
    feed = DispatchFeed.from_settings(settings)
    intake = DispatchIntake(sqlite_engine, router, feed)
    assert feed.folder.root == tmp_path / "feeds" and (tmp_path / "feeds" / "incoming").is_dir()
    drop(feed.folder, "big.csv", curve_csv([csv_row("PB0000001")]))
    size = (feed.folder.incoming / "big.csv").stat().st_size
    claim = feed.folder.claim("big.csv")
    assert claim is not None
    assert intake.take(feed.open(claim)).reason == f"big.csv: {size} bytes, more than the 50 bytes allowed"


def model_lines() -> list[str]:
    """A D5000 model and telemetry export: tab-separated, names with inner spaces, one bad row per kind."""
    stamp = "'2026-11-20 00:15:00'"
    return [
        f"<! System=D5000 Version=1.0 Code=GBK Time={stamp} !>",
        "<Substation::南阳>",
        "@\tNum\tmRID\tname\ttype\tx\ty",
        "//\t序号\t标识\t名称\t厂站类型\t经度\t纬度",
        "#\t1\t411300001\t白河 变\t110kV\t112.5301\t32.9907",
        "#\t2\t411300002\t卧龙变\t110kV\t112.4712",
        "</Substation::南阳>",
        "<SubstationPW::南阳>",
        "@\tNum\tmRID\tname\ttype\tx\ty",
        "#\t1\t411300501\t独山 开闭所\t10kV\t112.5500\t33.0100",
        "</SubstationPW::南阳>",
        "<Feeder::南阳>",
        "@\tNum\tmRID\tname\tsubstation\tratedCurrent\ttieSwitches",
        "#\t1\t411300301\t白河 110kV 出线\t411300001\t600\t0",
        "</Feeder::南阳>",
        "<FeederPW::南阳>",
        "@\tNum\tmRID\tname\tsubstation\tratedCurrent\ttieSwitches",
        "//\t序号\t标识\t名称\t所属厂站\t允许电流A\t联络开关数",
        "#\t1\t411300101\t白河Ⅰ线 城东段\t411300001\t485\t2",
        "#\t2\t411300102\t白河Ⅱ线\t411300001\t四百八十五\t1",
        "#\t3\t411300201\t'卧龙Ⅰ线 北段'\t411300002\t400\tnull",
        "</FeederPW::南阳>",
        "<Analog::南阳>",
        "@\tNum\tmRID\tname\tvalue\tunit\tquality\ttime",
        f"#\t1\t411300101-P\t白河Ⅰ线 有功\t4.62\tMW\t0\t{stamp}",
        f"#\t2\t411300102-P\t白河Ⅱ线 有功\t0\tMW\t128\t{stamp}",
        f"#\t3\t411300201-P\t卧龙Ⅰ线 有功\t-\tMW\t8\t{stamp}",
        f"#\t4\t411300101-Q\t白河Ⅰ线 无功\t1.20\tMvar\t0\t{stamp}",
        f"#\t5\t411300101-W\t白河Ⅰ线 其他\t1.00\tMW\t0\t{stamp}",
        "</Analog::南阳>",
    ]


def cloud_events(engine: Engine) -> list[CloudEvent]:
    with engine.connect() as conn:
        bodies = conn.execute(sa.select(outbox.c.body).order_by(outbox.c.id)).scalars().all()
    return [CloudEvent.model_validate_json(body) for body in bodies]


def test_a_gbk_model_file_becomes_grid_records_and_load_readings_and_its_bad_rows_are_parked_by_line(
    intake: DispatchIntake, folder: DropFolder, sqlite_engine: Engine
) -> None:
    drop(folder, "d5000_model_20261120.cime", ("\n".join(model_lines()) + "\n").encode("gbk"))
    assert run_until_idle(intake) == 1

    published = cloud_events(sqlite_engine)
    assert [(event.type, event.subject) for event in published] == [
        ("cn.yekuo.grid.substation.changed.v1", "411300001"),
        ("cn.yekuo.grid.substation.changed.v1", "411300501"),
        ("cn.yekuo.grid.feeder.changed.v1", "411300301"),
        ("cn.yekuo.grid.feeder.changed.v1", "411300101"),
        ("cn.yekuo.grid.feeder.changed.v1", "411300201"),
        ("cn.yekuo.load.measurement.recorded.v1", "411300101"),
        ("cn.yekuo.load.measurement.recorded.v1", "411300102"),
        ("cn.yekuo.load.measurement.recorded.v1", "411300201"),
    ]
    with sqlite_engine.begin() as conn:
        for event in published:
            (handle_grid_event if event.type.startswith("cn.yekuo.grid.") else handle_load_event)(
                conn, DecodedEvent(event)
            )
    with sqlite_engine.connect() as conn:
        station = get_equipment(conn, "substation", "411300001")
        distribution = get_equipment(conn, "substation", "411300501")
        city_east = get_equipment(conn, "feeder", "411300101")
        north = get_equipment(conn, "feeder", "411300201")
        outgoing = get_equipment(conn, "feeder", "411300301")
        readings = {
            row.equipment_id: (row.load_kw, row.quality, row.good)
            for row in conn.execute(sa.select(load_measurements))
        }
        parked = list_parked(conn, "invalid")
    assert station is not None and distribution is not None and outgoing is not None
    assert (station["name"], station["voltage_kv"], station["status"]) == ("白河 变", 110.0, "in_service")
    assert station["location"] == {"lon": 112.5301, "lat": 32.9907}
    assert (distribution["name"], distribution["voltage_kv"]) == ("独山 开闭所", 10.0)
    assert outgoing["name"] == "白河 110kV 出线"
    assert city_east is not None and north is not None
    assert (city_east["name"], city_east["substation_id"]) == ("白河Ⅰ线 城东段", "411300001")
    assert (city_east["allowed_current_a"], city_east["tie_switch_count"]) == (485.0, 2)
    assert north["name"] == "卧龙Ⅰ线 北段" and "tie_switch_count" not in north
    assert readings == {
        "411300101": (4620.0, 0, True),
        "411300102": (None, 128, False),
        "411300201": (None, 8, False),
    }, "values flagged invalid or missing are stored as missing with their code, never as 0"

    assert [(item.position or {}).get("line") for item in parked] == [6, 20, 29]
    assert all((item.position or {}).get("file") == "d5000_model_20261120.cime" for item in parked)
    too_short, not_a_number, unknown_quantity = parked
    assert too_short.reason.startswith(
        "d5000_model_20261120.cime:6: 5 fields, but the column line (line 3) has 6"
    )
    assert too_short.payload == {"line": "#\t2\t411300002\t卧龙变\t110kV\t112.4712"}
    assert not_a_number.reason_code == "mapping"
    assert not_a_number.reason.startswith("d5000_model_20261120.cime:20: mappings/dispatch/feeder_pw.yaml:")
    assert "allowed_current_a" in not_a_number.reason and "四百八十五" in not_a_number.reason
    assert unknown_quantity.reason == (
        "d5000_model_20261120.cime:29: mRID '411300101-W' ends in an unknown quantity 'W'; "
        "known: P active power, Q reactive power, I current, U or V voltage"
    )

    [entry] = log_rows(sqlite_engine)
    assert (entry["outcome"], entry["rows"], entry["events"], entry["invalid"], entry["skipped"]) == (
        "published",
        12,
        8,
        3,
        1,
    )
    assert (entry["encoding"], entry["encoding_source"], entry["encoding_declared"]) == (
        "GBK",
        "declared",
        "GBK",
    )


def test_a_curve_point_flagged_invalid_reaches_the_load_store_as_missing_not_zero(
    intake: DispatchIntake, folder: DropFolder, sqlite_engine: Engine
) -> None:
    values, codes = points(1.0, bad={5: ("0", "128"), 6: ("-", "0"), 7: ("0", "0")})
    drop(folder, "curve.cime", curve_cime([("XL000001", "10kV白河Ⅰ线", values, codes)]))
    run_until_idle(intake)
    [event] = cloud_events(sqlite_engine)
    with sqlite_engine.begin() as conn:
        handle_load_event(conn, DecodedEvent(event))
    with sqlite_engine.connect() as conn:
        [stored] = conn.execute(sa.select(load_profiles)).all()
    stored_points = stored.document["points"]
    assert stored_points[5] == {"quality": 128}
    assert stored_points[6] == {"quality": 0}
    assert stored_points[7] == {"load_kw": 0.0, "quality": 0}, "a measured 0 stays a 0"
    assert stored.good_points == 94


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("declared.cime", curve_cime([("XL1", "白河线", *points(1.0))]), ("GBK", "declared", "GBK")),
        (
            "declared_gb2312.cime",
            curve_cime([("XL1", "白河线", *points(1.0))], declared="gb2312"),
            ("GBK", "declared", "gb2312"),
        ),
        (
            "undeclared.cime",
            curve_cime([("XL1", "白河线", *points(1.0))], declared=None),
            ("GB18030", "detected", None),
        ),
        ("bom.csv", b"\xef\xbb\xbf" + curve_csv([csv_row("PB0000001")]), ("UTF-8", "bom", None)),
        ("ascii.csv", curve_csv([csv_row("PB0000001")]), ("ASCII", "detected", None)),
    ],
)
def test_the_outcome_reports_the_encoding_declared_or_detected(
    intake: DispatchIntake,
    folder: DropFolder,
    sqlite_engine: Engine,
    caplog: pytest.LogCaptureFixture,
    name: str,
    data: bytes,
    expected: tuple[str, str, str | None],
) -> None:
    drop(folder, name, data)
    with caplog.at_level(logging.INFO, logger="pipeline.files"):
        run_until_idle(intake)
    [entry] = log_rows(sqlite_engine)
    assert entry["outcome"] == "published" and entry["events"] == 1
    assert (entry["encoding"], entry["encoding_source"], entry["encoding_declared"]) == expected
    [published] = [
        record.getMessage() for record in caplog.records if record.getMessage().startswith("published")
    ]
    assert published.startswith(f"published {name} (")
    assert f", {expected[0]} (" in published


def test_a_failed_file_reports_its_encoding_and_counts_in_the_reason_file(
    intake: DispatchIntake, folder: DropFolder, sqlite_engine: Engine
) -> None:
    head = b"<! System=D5000 Code=UTF-8 !>\n<Breaker::NY>\n@\tmRID\tname\n#\tKG1\tswitch-1\n"
    drop(folder, "wrong.cime", head + "#\tKG2\t白河开关\n</Breaker::NY>\n".encode("gbk"))
    run_until_idle(intake)
    [entry] = log_rows(sqlite_engine)
    assert entry["outcome"] == "error" and "declared UTF-8 but line 5 is not valid UTF-8" in entry["reason"]
    assert (entry["encoding"], entry["encoding_source"], entry["encoding_declared"]) == (
        "UTF-8",
        "declared",
        "UTF-8",
    )
    [reason_file] = folder.error.glob("*.reason")
    reason = reason_file.read_text(encoding="utf-8").splitlines()
    assert "encoding: UTF-8 (declared Code=UTF-8)" in reason
    assert "rows read before the problem: 1; none of the file's rows was published" in reason
