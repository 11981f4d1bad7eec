"""Tests of adapters/dispatch/dropfolder.py: readiness, atomic claims, orphans, done and error."""

from __future__ import annotations

import multiprocessing
import os
import re
import threading
from pathlib import Path

import pytest

from adapters.dispatch.dropfolder import DropFolder, is_candidate, original_name


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
