"""Tests of adapters/dispatch/dropfolder.py: readiness, atomic claims, orphans, done and error, retention
and the free-space floor."""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import pytest

from adapters.dispatch.dropfolder import (
    LOW_SPACE_REMINDER_S,
    DropFolder,
    is_candidate,
    original_name,
    with_sweeps,
)
from ground import clock as hub_clock
from ground.settings import DispatchSettings

GIB = 1024**3
# The hub clock is fixed here; every file time below is set relative to it.
HUB_NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def folder(tmp_path: Path, clock: FakeClock) -> DropFolder:
    return DropFolder(tmp_path / "drop", stable_s=2.0, clock=clock)


@pytest.mark.parametrize(
    ("name", "taken"),
    [
        ("loads.csv", True),
        ("负荷曲线.cime", True),
        ("loads.csv.part", False),
        ("loads.csv.PART", False),
        ("loads.tmp", False),
        ("loads.csv.partial", False),
        (".loads.csv", False),
        (".upload-1a2b.part", False),
    ],
)
def test_hidden_and_temporary_names_are_never_taken(name: str, taken: bool) -> None:
    assert is_candidate(name) is taken


def test_original_names_survive_the_claim_prefix() -> None:
    assert original_name("20261120T001500-0a1b2c3d_loads_2026.csv") == "loads_2026.csv"
    assert original_name("dropped_straight_in.csv") == "dropped_straight_in.csv"


def test_the_folders_are_created(folder: DropFolder) -> None:
    assert all(path.is_dir() for path in (folder.incoming, folder.processing, folder.done, folder.error))


def test_a_file_is_ready_once_its_size_held_still_for_the_stable_time(
    folder: DropFolder, clock: FakeClock
) -> None:
    path = folder.incoming / "loads.csv"
    path.write_bytes(b"ID,DATA_DATE\n")
    assert folder.ready() == []
    clock.now += 1.0
    assert folder.ready() == []
    with path.open("ab") as file:
        file.write(b"more\n")
    clock.now += 1.5
    assert folder.ready() == [], "a growing file starts its stable time again"
    clock.now += 1.9
    assert folder.ready() == []
    clock.now += 0.1
    assert folder.ready() == ["loads.csv"]


def test_temporary_names_directories_and_links_are_never_ready(folder: DropFolder, clock: FakeClock) -> None:
    (folder.incoming / "loads.csv.part").write_bytes(b"half")
    (folder.incoming / ".hidden.csv").write_bytes(b"x")
    (folder.incoming / "a-folder").mkdir()
    outside = folder.root / "outside.csv"
    outside.write_bytes(b"x")
    (folder.incoming / "link.csv").symlink_to(outside)
    for _ in range(3):
        folder.ready()
        clock.now += 10
    assert folder.ready() == []


def test_ready_files_come_oldest_first(folder: DropFolder, clock: FakeClock) -> None:
    for index, name in enumerate(["c.csv", "a.csv", "b.csv"]):
        path = folder.incoming / name
        path.write_bytes(b"x")
        os.utime(path, ns=(1_000_000_000 * (index + 1), 1_000_000_000 * (index + 1)))
    folder.ready()
    clock.now += 2
    assert folder.ready() == ["c.csv", "a.csv", "b.csv"]


def test_a_claim_moves_the_file_under_a_unique_name_and_only_once(folder: DropFolder) -> None:
    (folder.incoming / "loads.csv").write_bytes(b"content")
    claim = folder.claim("loads.csv")
    assert claim is not None
    assert not (folder.incoming / "loads.csv").exists()
    assert claim.path.parent == folder.processing and claim.original == "loads.csv"
    assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{8}_loads\.csv", claim.claimed_name)
    assert claim.file.read() == b"content"
    assert folder.claim("loads.csv") is None
    claim.release()


def test_a_new_file_of_the_same_name_never_replaces_one_being_processed(folder: DropFolder) -> None:
    (folder.incoming / "loads.csv").write_bytes(b"first")
    first = folder.claim("loads.csv")
    (folder.incoming / "loads.csv").write_bytes(b"second")
    second = folder.claim("loads.csv")
    assert first is not None and second is not None
    assert first.path != second.path
    assert first.file.read() == b"first" and second.file.read() == b"second"
    assert folder.finish(first, "done").read_bytes() == b"first"
    assert folder.finish(second, "done").read_bytes() == b"second"


def test_many_claimants_take_each_file_exactly_once(folder: DropFolder) -> None:
    names = [f"file-{n:03d}.csv" for n in range(100)]
    for name in names:
        (folder.incoming / name).write_bytes(name.encode())
    won: list[list[str]] = [[] for _ in range(6)]

    def claimant(index: int) -> None:
        for name in names:
            claim = folder.claim(name)
            if claim is not None:
                won[index].append(claim.file.read().decode())
                folder.finish(claim, "done")

    threads = [threading.Thread(target=claimant, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    taken = [name for names_won in won for name in names_won]
    assert sorted(taken) == names
    assert len(os.listdir(folder.done)) == 100


def test_finish_moves_to_done_or_to_error_with_a_reason_file(folder: DropFolder) -> None:
    for name in ("good.csv", "bad.cime"):
        (folder.incoming / name).write_bytes(b"x")
    good = folder.claim("good.csv")
    bad = folder.claim("bad.cime")
    assert good is not None and bad is not None
    done = folder.finish(good, "done")
    failed = folder.finish(bad, "error", "bad.cime:3: the file ends inside block <LoadCurve>")
    assert done.parent == folder.done and done.name == good.claimed_name
    assert failed.parent == folder.error
    reason = folder.error / f"{bad.claimed_name}.reason"
    assert reason.read_text(encoding="utf-8") == "bad.cime:3: the file ends inside block <LoadCurve>\n"
    assert os.listdir(folder.processing) == []
    assert good.file.closed and bad.file.closed


def test_a_held_claim_is_no_orphan_but_a_released_one_is_taken_over(folder: DropFolder) -> None:
    (folder.incoming / "loads.csv").write_bytes(b"rows")
    claim = folder.claim("loads.csv")
    assert claim is not None
    assert folder.orphans() == []
    claim.release()
    [orphan] = folder.orphans()
    assert orphan.original == "loads.csv" and orphan.path != claim.path
    assert orphan.file.read() == b"rows"
    assert [path.name for path in folder.processing.iterdir()] == [orphan.claimed_name]
    orphan.release()


def _hold_claim(root: str, name: str, claimed: multiprocessing.synchronize.Event) -> None:
    folder = DropFolder(Path(root), stable_s=0.0)
    claim = folder.claim(name)
    assert claim is not None
    claimed.set()
    threading.Event().wait(60)


def test_the_claim_of_a_killed_process_is_taken_over(folder: DropFolder) -> None:
    (folder.incoming / "loads.csv").write_bytes(b"rows")
    context = multiprocessing.get_context("spawn")
    claimed = context.Event()
    holder = context.Process(target=_hold_claim, args=(str(folder.root), "loads.csv", claimed))
    holder.start()
    try:
        assert claimed.wait(30)
        assert folder.orphans() == [], "a live process holds its claim"
    finally:
        holder.kill()
        holder.join()
    [orphan] = folder.orphans()
    assert orphan.original == "loads.csv" and orphan.file.read() == b"rows"
    orphan.release()


class Usage(NamedTuple):
    total: int
    used: int
    free: int


class FakeDisk:
    """The drop folder's file system as disk_usage reports it; a test fills and frees it."""

    def __init__(self, free: int, total: int = 100 * GIB) -> None:
        self.free = free
        self.total = total
        self.calls = 0

    def __call__(self, path: Path) -> Usage:
        self.calls += 1
        return Usage(self.total, self.total - self.free, self.free)


def aged(path: Path, age: timedelta) -> Path:
    """A file whose mtime is `age` before the fixed hub time."""
    path.write_bytes(b"x")
    stamp = (HUB_NOW - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def test_retention_deletes_only_files_older_than_their_folders_window(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.dispatch.dropfolder")
    folder = DropFolder(
        tmp_path / "drop", done_retention=timedelta(days=30), error_retention=timedelta(days=90)
    )
    aged(folder.done / "old_a.csv", timedelta(days=31))
    aged(folder.done / "young_b.csv", timedelta(days=29))
    for name, days in (("old_c.cime", 91), ("kept_d.cime", 89), ("mid_e.csv", 31)):
        aged(folder.error / name, timedelta(days=days))
        aged(folder.error / f"{name}.reason", timedelta(days=days))
    aged(folder.error / "lost_f.csv.reason", timedelta(days=100))  # its file is gone already
    aged(folder.error / "young_g.csv", timedelta(days=10))
    aged(folder.error / "young_g.csv.reason", timedelta(days=100))  # a reason stays with its file
    with hub_clock.frozen_at(HUB_NOW):
        removed = folder.sweep()
    assert sorted(path.name for path in removed) == ["lost_f.csv.reason", "old_a.csv", "old_c.cime"]
    assert os.listdir(folder.done) == ["young_b.csv"]
    assert sorted(os.listdir(folder.error)) == [
        "kept_d.cime",
        "kept_d.cime.reason",
        "mid_e.csv",
        "mid_e.csv.reason",
        "young_g.csv",
        "young_g.csv.reason",
    ]
    logged = [record.getMessage() for record in caplog.records]
    assert any("deleted done/old_a.csv, last changed 2026-10-20" in line for line in logged)
    assert any("deleted error/old_c.cime and its reason file" in line for line in logged)


def test_a_finished_file_ages_from_when_it_was_finished_by_the_hub_clock(tmp_path: Path) -> None:
    folder = DropFolder.from_settings(DispatchSettings(drop_dir=tmp_path / "drop", stable_s=0.0))
    # Copied in with its mtime kept (rsync -t, cp -p): its age must not count from then.
    aged(folder.incoming / "copied.csv", timedelta(days=400))
    aged(folder.incoming / "broken.cime", timedelta(days=400))
    with hub_clock.frozen_at(HUB_NOW) as now:
        good = folder.claim("copied.csv")
        bad = folder.claim("broken.cime")
        assert good is not None and bad is not None
        done = folder.finish(good, "done")
        failed = folder.finish(bad, "error", "broken.cime:3: the file ends inside a block")
        reason = folder.error / f"{failed.name}.reason"
        assert done.stat().st_mtime == failed.stat().st_mtime == reason.stat().st_mtime == HUB_NOW.timestamp()
        assert folder.sweep() == []
        now.advance(timedelta(days=30, seconds=1))
        assert folder.sweep() == [done], "done/ keeps files 30 days by default"
        assert os.listdir(folder.error) != []
        now.advance(timedelta(days=60))
        assert folder.sweep() == [failed], "error/ keeps files 90 days by default"
    assert os.listdir(folder.done) == [] and os.listdir(folder.error) == []


def test_the_worker_step_sweeps_once_per_interval_and_still_runs_its_own_step(
    tmp_path: Path, clock: FakeClock
) -> None:
    folder = DropFolder(
        tmp_path / "drop", clock=clock, done_retention=timedelta(days=30), sweep_interval_s=3600
    )
    taken: list[float] = []

    def intake_step() -> bool:
        taken.append(clock.now)
        return True

    step = with_sweeps(folder, intake_step)
    first = aged(folder.done / "first.csv", timedelta(days=31))
    with hub_clock.frozen_at(HUB_NOW):
        assert step() is True
        assert not first.exists()
        second = aged(folder.done / "second.csv", timedelta(days=31))
        clock.now += 3599
        step()
        assert second.exists(), "no sweep before its interval has passed"
        clock.now += 1
        step()
        assert not second.exists()
    assert len(taken) == 3


def test_while_space_is_low_files_wait_in_incoming_and_are_taken_once_it_is_back(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.dispatch.dropfolder")
    disk = FakeDisk(free=2 * GIB)
    folder = DropFolder(tmp_path / "drop", stable_s=2.0, clock=clock, min_free_bytes=GIB, disk_usage=disk)
    (folder.incoming / "loads.csv").write_bytes(b"ID,DATA_DATE\n")
    assert folder.ready() == []
    disk.free = GIB - 1
    clock.now += 5
    assert folder.ready() == []
    assert folder.claim("loads.csv") is None
    assert os.listdir(folder.incoming) == ["loads.csv"]
    assert os.listdir(folder.processing) == [] and os.listdir(folder.error) == []
    clock.now += 60
    assert folder.ready() == []

    def warnings() -> list[str]:
        return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]

    assert len(warnings()) == 1, "one warning, not one per look"
    assert "1 file(s) wait in incoming/" in warnings()[0] and f"at least {GIB} bytes" in warnings()[0]
    clock.now += LOW_SPACE_REMINDER_S
    folder.ready()
    assert len(warnings()) == 2, "a reminder while it lasts"
    disk.free = 2 * GIB
    assert folder.ready() == ["loads.csv"], "its stable time was counted while it waited"
    claim = folder.claim("loads.csv")
    assert claim is not None and claim.file.read() == b"ID,DATA_DATE\n"
    claim.release()
    assert any("has space again" in record.getMessage() for record in caplog.records)


def test_the_floor_is_the_larger_of_its_bytes_and_its_share_of_the_disk(tmp_path: Path) -> None:
    big = DropFolder(
        tmp_path / "a", min_free_bytes=GIB, min_free_percent=5.0, disk_usage=FakeDisk(4 * GIB, 100 * GIB)
    )
    space = big.free_space()
    assert space is not None and space.floor_bytes == 5 * GIB and space.low and space.room_bytes == 0
    small = DropFolder(
        tmp_path / "b", min_free_bytes=GIB, min_free_percent=5.0, disk_usage=FakeDisk(4 * GIB, 10 * GIB)
    )
    space = small.free_space()
    assert space is not None and space.floor_bytes == GIB and not space.low and space.room_bytes == 3 * GIB
    disk = FakeDisk(0)
    unguarded = DropFolder(tmp_path / "c", stable_s=0.0, disk_usage=disk)
    (unguarded.incoming / "a.csv").write_bytes(b"x")
    unguarded.ready()
    assert unguarded.free_space() is None and unguarded.ready() == ["a.csv"] and disk.calls == 0
