"""Fixtures for the PMS adapter tests: a small seeded PMS on SQLite, a hub store and a settable clock."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.pms.source import PmsSource, create_pms_engine
from adapters.pms.state import settled
from ground.settings import PROJECT_ROOT, PmsSettings
from pipeline.config import HubConfig, load_hub_config
from pipeline.records import RawRecord, SourceBatch
from simulators.pms.seed import seed_database
from store.database import create_engine, create_schema

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    """A settable clock: `now` is the hub's aware time, local() the PMS wall time in whole seconds."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def local(self) -> datetime:
        return self.now.astimezone(SHANGHAI).replace(tzinfo=None, microsecond=0)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Driver:
    """Polls a source the way the hub does: the checkpoint of a poll is kept only when it is committed."""

    source: PmsSource
    hub: Engine
    checkpoint: dict[str, Any] | None = None
    polls: int = 0
    batches: list[SourceBatch] = field(default_factory=list)

    def poll(self, *, commit: bool = True) -> SourceBatch:
        batch = self.source.poll(self.checkpoint)
        self.polls += 1
        if commit:
            if batch.settle is not None:
                with self.hub.begin() as conn:
                    batch.settle(conn)
            # The hub stores the checkpoint as JSON; go through that form here as well.
            self.checkpoint = json.loads(json.dumps(batch.checkpoint))
            self.batches.append(batch)
        return batch

    def drain(self, max_polls: int = 1000) -> list[RawRecord]:
        """Poll until a poll finds nothing and the checkpoint is settled; the records of those polls."""
        records: list[RawRecord] = []
        for _ in range(max_polls):
            batch = self.poll()
            records += batch.records
            if not batch.has_more and not batch.records and settled(self.checkpoint):
                return records
        raise AssertionError(f"no settled state within {max_polls} polls")


@dataclass(frozen=True)
class Pms:
    writer: Engine
    reader: Engine


@pytest.fixture(scope="session")
def config() -> HubConfig:
    return load_hub_config(PROJECT_ROOT)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 26, 2, 0, 0, tzinfo=UTC))


@pytest.fixture
def pms(tmp_path: Path) -> Iterator[Pms]:
    url = f"sqlite:///{tmp_path / 'pms.db'}"
    writer = sa.create_engine(url)
    seed_database(writer, seed=7, substation_count=3, feeder_count=12, transformer_count=300)
    reader = create_pms_engine(url, statement_timeout_s=0.5)
    yield Pms(writer, reader)
    reader.dispose()
    writer.dispose()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    create_schema(engine)
    yield engine
    engine.dispose()


def make_source(pms: Pms, hub: Engine, config: HubConfig, clock: Clock, **settings: Any) -> PmsSource:
    options: dict[str, Any] = {
        "page_size": 25,
        "reconcile_page_size": 40,
        "reconcile_interval_s": 0.0,
        "rescan_interval_s": 3600.0,
    }
    options.update(settings)
    return PmsSource(
        config.routes, state_engine=hub, engine=pms.reader, settings=PmsSettings(**options), clock=clock
    )


def keys(records: list[RawRecord], record_type: str) -> list[str]:
    return [record.key for record in records if record.record_type == record_type]


def table_keys(engine: Engine, table: sa.Table) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(table.c[next(iter(table.primary_key)).name])).scalars())


def payloads(records: list[RawRecord], record_type: str) -> Mapping[str, Mapping[str, Any]]:
    return {record.key: record.payload for record in records if record.record_type == record_type}
