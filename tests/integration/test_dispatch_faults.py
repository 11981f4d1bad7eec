"""Each dispatch fault trigger through the intake: the right outcome, with nothing lost or doubled.

Each test writes a good day and one faulty file with the simulator, runs the intake until the drop folder is
empty, then holds every file to the outcome the simulator expects of it: published files account for each
of their rows (an event or a parked invalid row), duplicates and failed files publish nothing, a failed
file waits in error/ unchanged beside its reason, and no profile or measurement is published twice.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.dispatch.dropfolder import DropFolder, original_name
from adapters.dispatch.intake import DispatchFeed, DispatchFile
from ground.settings import PROJECT_ROOT
from pipeline.config import load_hub_config
from pipeline.files import FileIngestor
from pipeline.routing import Router
from simulators.dispatch.equipment import Equipment, EquipmentKind, LoadClass
from simulators.dispatch.faults import Fault
from simulators.dispatch.files import WrittenFile
from simulators.dispatch.writer import DispatchWriter
from store.loads import dispatch_file_log
from store.parking import list_parked
from store.schema import outbox

DAY = date(2026, 7, 22)
OVERSIZE = 3_000_000
EQUIPMENT = [
    *(
        Equipment(f"XL{n:06d}", f"10kV白河{n}线", EquipmentKind.FEEDER, 7000.0, LoadClass.RESIDENTIAL)
        for n in range(1, 5)
    ),
    *(
        Equipment(
            f"PB{n:07d}", f"南阳{n}纺织有限公司专变", EquipmentKind.TRANSFORMER, 560.0, LoadClass.INDUSTRIAL
        )
        for n in range(1, 7)
    ),
]


class TickingClock:
    """Moves one second per reading, so each intake step may look at the folder again."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture(scope="module")
def router() -> Router:
    return load_hub_config(PROJECT_ROOT).router


def drain(intake: FileIngestor[DispatchFile]) -> None:
    idle = 0
    for _ in range(200):
        idle = 0 if intake.step() else idle + 1
        if idle == 3:
            return
    raise AssertionError("the intake never went idle")


def published(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [json.loads(body) for body in conn.execute(sa.select(outbox.c.body)).scalars()]


def outcomes(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(dispatch_file_log)).all()
    by_name = {row.file_name: dict(row._mapping) for row in rows}
    assert len(by_name) == len(rows), "each file was finished once"
    return by_name


def check(engine: Engine, folder: DropFolder, expected: list[WrittenFile]) -> None:
    finished = outcomes(engine)
    assert set(finished) == {item.name for item in expected}
    for item in expected:
        got = finished[item.name]
        assert (got["outcome"], got["events"], got["invalid"]) == (item.outcome, item.events, item.invalid), (
            item
        )
        if item.outcome == "published":
            assert got["rows"] == item.rows == got["events"] + got["invalid"], "every row accounted for"
    events = published(engine)
    assert len(events) == sum(item.events for item in expected)
    keys = Counter(
        (
            event["type"],
            event["subject"],
            event["data"].get("data_date"),
            event["data"].get("measured_at"),
            event["data"].get("source"),
        )
        for event in events
    )
    assert max(keys.values()) == 1, "nothing published twice"
    with engine.connect() as conn:
        assert len(list_parked(conn, "invalid")) == sum(item.invalid for item in expected)
    assert os.listdir(folder.incoming) == [] and os.listdir(folder.processing) == []
    failed = {
        original_name(path.name) for path in folder.error.iterdir() if not path.name.endswith(".reason")
    }
    assert failed == {item.name for item in expected if item.outcome == "error"}
    for path in folder.error.iterdir():
        if not path.name.endswith(".reason"):
            assert (folder.error / f"{path.name}.reason").read_text(encoding="utf-8").strip()
    done = {original_name(path.name) for path in folder.done.iterdir()}
    assert done == {item.name for item in expected if item.outcome != "error"}


@pytest.mark.parametrize("fault", [fault for fault in Fault if fault is not Fault.STILL_WRITING])
def test_each_fault_trigger_has_its_outcome_and_nothing_is_lost_or_doubled(
    fault: Fault, sqlite_engine: Engine, router: Router, tmp_path: Path
) -> None:
    folder = DropFolder(tmp_path / "drop", stable_s=0.0)
    feed = DispatchFeed(folder, scan_interval_s=0.5, clock=TickingClock(), max_file_bytes=OVERSIZE - 1)
    intake = FileIngestor(sqlite_engine, router, feed)
    writer = DispatchWriter(folder.incoming, EQUIPMENT, seed=11, oversize_bytes=OVERSIZE)
    expected = writer.write_day(DAY)
    # A faulty file covers the next day, so no profile of it can be mistaken for one of the good files.
    faulty = writer.write_fault(fault, DAY + timedelta(days=1))
    if fault is Fault.DUPLICATE:
        # The original must be taken first for the copy to be the duplicate; the order is by age.
        os.utime(folder.incoming / faulty.name, ns=(2**62, 2**62))
    drain(intake)
    check(sqlite_engine, folder, [*expected, faulty])
    if faulty.outcome == "error":
        [kept] = [path for path in folder.error.iterdir() if original_name(path.name) == faulty.name]
        assert kept.stat().st_size > 0


def test_a_file_still_being_written_is_taken_only_when_complete(
    sqlite_engine: Engine, router: Router, tmp_path: Path
) -> None:
    clock = [0.0]
    folder = DropFolder(tmp_path / "drop", stable_s=5.0, clock=lambda: clock[0])
    intake = FileIngestor(
        sqlite_engine, router, DispatchFeed(folder, scan_interval_s=1.0, clock=lambda: clock[0])
    )
    looks: list[bool] = []

    def producer_pauses() -> None:
        # Half the file is there; the intake looks several times within the stable time.
        for _ in range(4):
            looks.append(intake.step())
            clock[0] += 1.0

    writer = DispatchWriter(folder.incoming, EQUIPMENT, seed=11, pause=producer_pauses)
    written = writer.write_fault(Fault.STILL_WRITING, DAY)
    assert looks == [False, False, False, False]
    assert os.listdir(folder.incoming) == [written.name]
    for _ in range(12):
        intake.step()
        clock[0] += 1.0
    check(sqlite_engine, folder, [written])
    assert written.events == 6
