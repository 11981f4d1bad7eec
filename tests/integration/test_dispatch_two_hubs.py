"""Two hub processes working one drop folder and one hub database take 200 files exactly once between them.

Each process runs the dispatch intake loop on its own. The files arrive while both are running. Afterwards
every file was finished once, by one of the two, every row was published once, and nothing is left in
incoming/ or processing/. The test runs on SQLite and, when it is up, on PostgreSQL.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import Counter
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.dispatch.curves_csv import POINT_COLUMNS
from adapters.dispatch.dropfolder import DropFolder
from store.loads import dispatch_file_log
from store.schema import outbox
from tests.conftest import POSTGRES_URL

FILES = 200
ROWS_PER_FILE = 2
HEADER = "ID,DATA_DATE,DATA_TYPE," + ",".join(POINT_COLUMNS)


def _work(root: str, db_url: str, ready: Event, written: Event) -> None:
    """One hub process: the intake loop until the producer is done and nothing is left to take."""
    from adapters.dispatch.intake import DispatchFeed
    from ground.settings import PROJECT_ROOT
    from pipeline.config import load_hub_config
    from pipeline.files import FileIngestor
    from store.database import create_engine

    engine = create_engine(db_url)
    folder = DropFolder(Path(root), stable_s=0.0)
    intake = FileIngestor(
        engine, load_hub_config(PROJECT_ROOT).router, DispatchFeed(folder, scan_interval_s=0.01)
    )
    ready.set()
    deadline = time.monotonic() + 120
    idle = 0
    while time.monotonic() < deadline:
        if intake.step():
            idle = 0
            continue
        idle += 1
        if written.is_set() and idle >= 20 and not os.listdir(folder.incoming):
            break
        time.sleep(0.01)
    engine.dispose()


def _equipment(file_number: int, row: int) -> str:
    return f"PB{file_number * ROWS_PER_FILE + row:07d}"


def _file(file_number: int) -> bytes:
    rows = [
        ",".join([_equipment(file_number, row), "2026-11-20", "1", *([f"{file_number}.{row}"] * 96)])
        for row in range(ROWS_PER_FILE)
    ]
    return ("\n".join([HEADER, *rows]) + "\n").encode()


def _run_two_hubs(root: Path, db_url: str) -> None:
    folder = DropFolder(root, stable_s=0.0)
    context = multiprocessing.get_context("spawn")
    written = context.Event()
    readiness = [context.Event(), context.Event()]
    hubs = [context.Process(target=_work, args=(str(root), db_url, ready, written)) for ready in readiness]
    for hub in hubs:
        hub.start()
    try:
        for ready in readiness:
            assert ready.wait(60), "a hub process did not start"
        for number in range(FILES):
            temporary = folder.incoming / f"curves_{number:03d}.csv.part"
            temporary.write_bytes(_file(number))
            os.replace(temporary, folder.incoming / f"curves_{number:03d}.csv")
        written.set()
        for hub in hubs:
            hub.join(150)
            assert hub.exitcode == 0, f"hub process {hub.pid} ended with {hub.exitcode}"
    finally:
        for hub in hubs:
            if hub.is_alive():
                hub.kill()


def _check(engine: Engine, root: Path) -> None:
    folder = DropFolder(root, stable_s=0.0)
    assert os.listdir(folder.incoming) == [] and os.listdir(folder.processing) == []
    assert os.listdir(folder.error) == []
    assert len(os.listdir(folder.done)) == FILES
    with engine.connect() as conn:
        log = conn.execute(
            sa.select(dispatch_file_log.c.file_name, dispatch_file_log.c.outcome, dispatch_file_log.c.worker)
        ).all()
        subjects = conn.execute(sa.select(outbox.c.subject)).scalars().all()
    assert sorted(row.file_name for row in log) == [f"curves_{number:03d}.csv" for number in range(FILES)]
    assert {row.outcome for row in log} == {"published"}
    workers = Counter(row.worker for row in log)
    assert len(workers) == 2, f"both hub processes took files: {workers}"
    per_file = Counter(int(subject[2:]) // ROWS_PER_FILE for subject in subjects)
    assert per_file == dict.fromkeys(range(FILES), ROWS_PER_FILE), "each file's rows published exactly once"
    assert len(subjects) == len(set(subjects)) == FILES * ROWS_PER_FILE


def test_two_hub_processes_share_a_drop_folder_on_sqlite(tmp_path: Path, sqlite_engine: Engine) -> None:
    db_url = sqlite_engine.url.render_as_string(hide_password=False)
    _run_two_hubs(tmp_path / "drop", db_url)
    _check(sqlite_engine, tmp_path / "drop")


@pytest.mark.postgres
def test_two_hub_processes_share_a_drop_folder_on_postgres(tmp_path: Path, postgres_engine: Engine) -> None:
    _run_two_hubs(tmp_path / "drop", POSTGRES_URL)
    _check(postgres_engine, tmp_path / "drop")
