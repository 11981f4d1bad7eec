"""The runner writes a day per interval with faults in turn, keeps a manifest, and runs from the CLI."""

from __future__ import annotations

import json
import threading
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from ground.errors import ConfigError
from simulators.dispatch.equipment import Equipment, EquipmentKind, LoadClass
from simulators.dispatch.faults import Fault, parse_faults
from simulators.dispatch.files import records_power_factor
from simulators.dispatch.runner import run
from simulators.pms.seed import seed_database
from yekuo.cli import main

EQUIPMENT = [
    Equipment("XL000001", "10kV白河1线", EquipmentKind.FEEDER, 7000.0, LoadClass.INDUSTRIAL),
    Equipment("PB0000001", "建设路1号公变", EquipmentKind.TRANSFORMER, 360.0, LoadClass.RESIDENTIAL),
]


def quiet(_text: str) -> None:
    """Swallow the runner's progress lines."""


def test_faults_take_their_turn_and_the_manifest_says_what_the_hub_should_do(tmp_path: Path) -> None:
    # Seed 3 counts the public transformer among those whose meters record the power factor: each day
    # writes four files.
    assert records_power_factor(EQUIPMENT[1], 3)
    manifest = tmp_path / "manifest.jsonl"
    faults = (Fault.DUPLICATE, Fault.GARBAGE_ROWS_CSV, Fault.UNDECLARED_ENCODING)
    written = run(
        tmp_path / "incoming",
        3,
        equipment=EQUIPMENT,
        start=date(2026, 11, 1),
        days=4,
        interval_s=0,
        faults=faults,
        fault_rate=1.0,
        out=quiet,
    )
    assert [item.fault for item in written if item.fault] == [
        "duplicate",
        "garbage_rows_csv",
        "undeclared_encoding",
        "duplicate",
    ]
    assert len(written) == 4 * 4 + 4
    assert {item.name for item in written} == {path.name for path in (tmp_path / "incoming").iterdir()}
    assert not manifest.exists()
    again = run(
        tmp_path / "again",
        3,
        equipment=EQUIPMENT,
        start=date(2026, 11, 1),
        days=2,
        interval_s=0,
        manifest=manifest,
        out=quiet,
    )
    lines = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    assert lines == [item.as_dict() for item in again]
    assert (
        lines[0]["name"] == "dispatch_loadcurve_20261101.cime"
        and lines[-1]["name"] == "metering_factor_curve_20261102.csv"
    )


def test_without_faults_no_faulty_file_is_written(tmp_path: Path) -> None:
    written = run(tmp_path, 1, equipment=EQUIPMENT, start=date(2026, 11, 1), days=3, interval_s=0, out=quiet)
    assert all(item.fault is None and item.outcome == "published" for item in written)


def test_the_runner_stops_when_asked(tmp_path: Path) -> None:
    stop = threading.Event()
    lines: list[str] = []

    def out(text: str) -> None:
        lines.append(text)
        if len(lines) == 3:
            stop.set()

    written = run(tmp_path, 1, equipment=EQUIPMENT, interval_s=30, out=out, stop=stop)
    assert not records_power_factor(EQUIPMENT[1], 1), "seed 1 writes no factor curve"
    assert len(written) == 3, "one day, then the stop"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"interval_s": -1.0}, "must not be negative"),
        ({"fault_rate": 1.5}, r"\[0, 1\]"),
        ({"fault_rate": 0.5}, "needs at least one fault trigger"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, options: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        run(tmp_path, 1, equipment=EQUIPMENT, days=1, out=quiet, **options)  # type: ignore[arg-type]


def test_fault_lists_are_parsed_by_name() -> None:
    assert parse_faults("all") == tuple(Fault)
    assert parse_faults("") == ()
    assert parse_faults(" truncated , duplicate") == (Fault.TRUNCATED, Fault.DUPLICATE)
    with pytest.raises(ConfigError, match="unknown dispatch fault trigger 'bogus'"):
        parse_faults("truncated,bogus")


def test_yekuo_sim_dispatch_writes_files_for_the_equipment_of_a_pms_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pms_url = f"sqlite:///{tmp_path / 'pms.db'}"
    engine = sa.create_engine(pms_url)
    seed_database(engine, seed=4, substation_count=3, feeder_count=6, transformer_count=30)
    engine.dispose()
    out = tmp_path / "incoming"
    code = main(
        [
            "sim",
            "dispatch",
            "--out",
            str(out),
            "--pms-db",
            pms_url,
            "--days",
            "2",
            "--interval",
            "0",
            "--start",
            "2026-11-20",
            "--feeders",
            "2",
            "--transformers",
            "3",
            "--faults",
            "truncated",
            "--fault-rate",
            "1",
            "--manifest",
            str(tmp_path / "m.jsonl"),
        ]
    )
    assert code == 0
    names = sorted(path.name for path in out.iterdir())
    assert "dispatch_loadcurve_20261121.cime" in names and "metering_power_curve_20261120.csv" in names
    assert sum("truncated" in name for name in names) == 2
    # Two days of four files (curves, telemetry, power and factor curves) and the two faulty files.
    assert "metering_factor_curve_20261121.csv" in names
    assert len((tmp_path / "m.jsonl").read_text(encoding="utf-8").splitlines()) == len(names) == 10
    assert "2 feeders, 3 transformers" in capsys.readouterr().out
