"""Leases on SQLite between processes on one machine: two processes poll one source from one checkpoint in
one database file, each under its own lease keeper, and every source version is staged once; a process that
paused past its lease is refused by the fence check once the other took the poller over."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Mapping
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipeline.records import RawRecord, SourceBatch
from store.database import create_engine, create_schema
from store.schema import checkpoints, outbox

VERSIONS = 300
PAGE = 20


class CountingSource:
    """VERSIONS application changes read in pages from the checkpoint, the same in every process."""

    name = "marketing"

    def poll(self, checkpoint: Mapping[str, Any] | None) -> SourceBatch:
        from tests.unit.mappings.samples import application_record

        after = int((checkpoint or {}).get("after", 0))
        upto = min(after + PAGE, VERSIONS)
        records = [
            RawRecord("marketing", "application", no, application_record(APP_NO=no), {"key": no})
            for no in (f"SP{n:07d}" for n in range(after + 1, upto + 1))
        ]
        return SourceBatch(records, {"after": upto}, upto < VERSIONS)


def _poll_under_lease(url: str, owner: str, start: Barrier) -> None:
    """One hub process: its keeper and the poller's singleton step, until the source is read to its end."""
    from ground.settings import PROJECT_ROOT
    from pipeline.config import load_hub_config
    from pipeline.ingest import Ingestor
    from pipeline.leases import LeaseKeeper
    from store.checkpoints import load_checkpoint

    engine = create_engine(url)
    keeper = LeaseKeeper(engine, owner, ttl_s=3.0)
    ingestor = Ingestor(engine, load_hub_config(PROJECT_ROOT).router)
    source = CountingSource()
    step = keeper.singleton("poll:marketing", lambda fence: ingestor.poll_source(source, fence))
    start.wait(timeout=60)
    deadline = time.monotonic() + 120
    kept = 0.0
    while time.monotonic() < deadline:
        if time.monotonic() - kept >= keeper.interval_s:
            keeper.keep()
            kept = time.monotonic()
        step()
        with engine.connect() as conn:
            if (load_checkpoint(conn, "marketing") or {}).get("after") == VERSIONS:
                break
        _pause(0.01)
    keeper.release_all()
    engine.dispose()


def _pause(seconds: float) -> None:
    # A timed wait on an event, not time.sleep: a spawned child does not load the moved-clock plugin, and
    # under libfaketime time.sleep's absolute deadline is refused by the kernel (see tests/moved_clock.py).
    threading.Event().wait(seconds)


def test_two_processes_on_one_sqlite_file_stage_each_version_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/hub.db"
    engine = create_engine(url)
    create_schema(engine)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    workers = [
        context.Process(target=_poll_under_lease, args=(url, owner, start)) for owner in ("hub-1", "hub-2")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(180)

    assert [worker.exitcode for worker in workers] == [0, 0]
    with engine.connect() as conn:
        rows, subjects = conn.execute(
            sa.select(sa.func.count(), sa.func.count(sa.distinct(outbox.c.subject)))
        ).one()
    assert (rows, subjects) == (VERSIONS, VERSIONS)
    engine.dispose()


REFUSED, WROTE = 0, 3


class PausedSource(CountingSource):
    """The source as its poll is read by a process that pauses (past its lease) before the poll returns."""

    def __init__(self, resume: Event) -> None:
        self._resume = resume

    def poll(self, checkpoint: Mapping[str, Any] | None) -> SourceBatch:
        self._resume.wait(timeout=60)
        return super().poll(checkpoint)


def _poll_then_pause(url: str, holds: Event, resume: Event) -> int:
    from ground.errors import FencedOutError
    from ground.settings import PROJECT_ROOT
    from pipeline.config import load_hub_config
    from pipeline.ingest import Ingestor
    from pipeline.leases import LeaseKeeper

    engine = create_engine(url)
    keeper = LeaseKeeper(engine, "hub-1", ttl_s=1.0, duties=["poll:marketing"])
    keeper.keep()
    fence = keeper.fence("poll:marketing")
    holds.set()
    try:
        Ingestor(engine, load_hub_config(PROJECT_ROOT).router).poll_source(PausedSource(resume), fence)
    except FencedOutError:
        return REFUSED
    finally:
        engine.dispose()
    return WROTE


def _paused_holder(url: str, holds: Event, resume: Event) -> None:
    raise SystemExit(_poll_then_pause(url, holds, resume))


def _successor(url: str, holds: Event, resume: Event) -> None:
    from ground.settings import PROJECT_ROOT
    from pipeline.config import load_hub_config
    from pipeline.ingest import Ingestor
    from pipeline.leases import LeaseKeeper

    engine = create_engine(url)
    keeper = LeaseKeeper(engine, "hub-2", ttl_s=1.0, duties=["poll:marketing"])
    holds.wait(timeout=60)
    deadline = time.monotonic() + 60
    while (fence := keeper.fence("poll:marketing")) is None and time.monotonic() < deadline:
        keeper.keep()
        _pause(0.05)
    Ingestor(engine, load_hub_config(PROJECT_ROOT).router).poll_source(CountingSource(), fence)
    engine.dispose()
    resume.set()


def test_a_process_paused_past_its_lease_is_refused_by_the_fence_and_the_successors_poll_stands(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/hub.db"
    engine = create_engine(url)
    create_schema(engine)
    context = multiprocessing.get_context("spawn")
    holds, resume = context.Event(), context.Event()
    paused = context.Process(target=_paused_holder, args=(url, holds, resume))
    successor = context.Process(target=_successor, args=(url, holds, resume))
    for worker in (paused, successor):
        worker.start()
    for worker in (paused, successor):
        worker.join(120)

    assert (successor.exitcode, paused.exitcode) == (0, REFUSED)
    with engine.connect() as conn:
        assert conn.execute(sa.select(checkpoints.c.value, checkpoints.c.fence)).one() == ({"after": PAGE}, 2)
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one() == PAGE
    engine.dispose()
