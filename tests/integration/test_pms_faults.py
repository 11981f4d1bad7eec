"""PMS faults on real databases: outages mid-sync, late commits, lock timeouts, a SELECT-only reader."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from adapters.pms.source import PmsSource, create_pms_engine
from adapters.pms.state import settled
from bus.memory import discard_broker, unique_url
from canonical_model.events import PROJECTION_UPDATED
from ground.errors import SourceUnavailableError
from ground.settings import PROJECT_ROOT, MarketingSettings, PmsSettings, Settings
from pipeline.config import load_hub_config
from simulators.pms.changes import ChangeGenerator
from simulators.pms.faults import late_commit, table_lock
from simulators.pms.seed import seed_database
from store.checkpoints import load_checkpoint
from store.database import create_engine, create_schema, drop_schema
from store.schema import outbox
from tests.support.pipeline import (
    FEASIBILITY_CONSUMER,
    GRID_CONSUMER,
    last_outbox_id,
    pipeline,
    subject_counts,
)
from tests.support.pms import backend_url, pms_database, projected_transformers, source_transformers
from tests.support.relay import TcpRelay
from yekuo.hub import Hub

CHANGED = "cn.yekuo.grid.transformer.changed.v1"
ALL = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]
SERVERS = [
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]
PORTS = {"postgres": 5432, "mariadb": 3306}
# '%%' is MariaDB's any-host wildcard, doubled because the driver formats the statement with '%'.
MARIADB_HOSTS = ("%%", "localhost")


def wait_for(what: str, condition: Callable[[], bool], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def small_world(engine: Engine, transformers: int = 2000) -> None:
    seed_database(engine, seed=5, substation_count=4, feeder_count=40, transformer_count=transformers)


@contextmanager
def hub_store(backend: str, tmp_path: Path, pms_url: str) -> Iterator[Engine]:
    """The hub's own tables on the same backend as PMS (dropped and created), or a SQLite file."""
    engine = create_engine(f"sqlite:///{tmp_path / 'hub.db'}" if backend == "sqlite" else pms_url)
    drop_schema(engine)
    create_schema(engine)
    try:
        yield engine
    finally:
        drop_schema(engine)
        engine.dispose()


def pending(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
            ).scalar_one()
        )


def staged(engine: Engine) -> int:
    """Events the PMS source staged (the grid consumer's own notices join the outbox meanwhile)."""
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(outbox.c.event_type != PROJECTION_UPDATED)
        return int(conn.execute(query).scalar_one())


@pytest.mark.parametrize("backend", ALL)
def test_an_outage_mid_sync_under_the_running_hub_loses_and_doubles_nothing(
    backend: str, tmp_path: Path
) -> None:
    relay = TcpRelay(PORTS[backend]) if backend in PORTS else None
    reader_url = backend_url(backend, tmp_path)
    if relay is not None:
        reader_url = make_url(reader_url).set(port=relay.port).render_as_string(hide_password=False)
    with (
        pms_database(backend, tmp_path, reader_url=reader_url, timeout_s=1.0) as pms,
        hub_store(backend, tmp_path, pms.url) as store,
    ):
        small_world(pms.writer)
        config = load_hub_config(PROJECT_ROOT)
        source = PmsSource(
            config.routes,
            state_engine=store,
            engine=pms.reader,
            settings=PmsSettings(page_size=100, reconcile_interval_s=3600),
        )
        bus_url = unique_url("pms-outage")
        settings = Settings(bus_url=bus_url, marketing=MarketingSettings(poll_interval_s=0.05))
        consumers = [GRID_CONSUMER, FEASIBILITY_CONSUMER]
        hub = Hub(settings, sources=[source], engine=store, config=config, consumers=consumers)
        hub.start()
        try:
            wait_for("part of the sync is committed", lambda: staged(store) >= 500)
            # Every PMS connection drops and new ones fail; on SQLite the database stays locked instead.
            with outage(pms.writer, relay):
                wait_for("the poll loop backs off", lambda: hub.health["poll:pms"].failures >= 2)
                assert not hub.health["poll:pms"].ok
                during = staged(store)
                failures = hub.health["poll:pms"].failures
                wait_for("another failed poll", lambda: hub.health["poll:pms"].failures > failures)
                assert staged(store) == during
                assert during < 2000
            wait_for(
                "the sync settles",
                lambda: (
                    pending(store) == 0
                    and settled(checkpoint(store))
                    and len(projected_transformers(store)) == 2000
                ),
            )
        finally:
            hub.stop()
            discard_broker(bus_url)
            if relay is not None:
                relay.close()
        assert hub.health["poll:pms"].ok
        assert projected_transformers(store) == source_transformers(pms.writer)
        counts = subject_counts(store, CHANGED)
        assert len(counts) == 2000 and set(counts.values()) == {1}


def checkpoint(engine: Engine) -> dict[str, object] | None:
    with engine.connect() as conn:
        return load_checkpoint(conn, "pms")


@contextmanager
def outage(writer: Engine, relay: TcpRelay | None) -> Iterator[None]:
    if relay is None:
        with table_lock(writer, "T_SB_ZNYC_PDBYQ"):
            yield
        return
    relay.cut(refuse=True)
    try:
        yield
    finally:
        relay.restore()


@pytest.mark.parametrize("backend", SERVERS)
def test_a_commit_later_than_newer_changes_is_delivered_once(backend: str, tmp_path: Path) -> None:
    with pms_database(backend, tmp_path) as pms:
        small_world(pms.writer, transformers=300)
        hub = create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
        create_schema(hub)
        config = load_hub_config(PROJECT_ROOT)
        settings = PmsSettings(page_size=100, overlap_s=60, reconcile_interval_s=3600)
        source = PmsSource(config.routes, state_engine=hub, engine=pms.reader, settings=settings)
        with pipeline(hub, source, config) as wired:
            wired.sync()
            mark = last_outbox_id(hub)
            with late_commit(pms.writer, "PB0000001", rated_kva=1600) as at:
                # A later change commits first and is read first.
                later = ChangeGenerator(pms.writer, seed=8, clock=lambda: at + timedelta(seconds=2)).rating()
                wired.sync()
                assert subject_counts(hub, CHANGED, after_id=mark) == Counter({later.keys[0]: 1})
            wired.sync()
            wired.sync()
        assert subject_counts(hub, CHANGED, after_id=mark) == Counter({later.keys[0]: 1, "PB0000001": 1})
        assert projected_transformers(hub)["PB0000001"]["rated_capacity_kva"] == 1600
        hub.dispose()


@pytest.mark.parametrize("backend", ALL)
def test_a_table_lock_times_out_as_source_unavailable_then_reading_resumes(
    backend: str, tmp_path: Path
) -> None:
    with pms_database(backend, tmp_path, timeout_s=0.5) as pms:
        small_world(pms.writer, transformers=50)
        hub = create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
        create_schema(hub)
        config = load_hub_config(PROJECT_ROOT)
        source = PmsSource(
            config.routes, state_engine=hub, engine=pms.reader, settings=PmsSettings(page_size=1000)
        )
        first = source.poll(None)
        with (
            table_lock(pms.writer, "T_SB_ZNYC_PDBYQ"),
            pytest.raises(SourceUnavailableError, match="PMS database unavailable"),
        ):
            source.poll(first.checkpoint)
        again = source.poll(first.checkpoint)
        assert [r.key for r in again.records] == []
        assert again.checkpoint["tables"] == source.poll(first.checkpoint).checkpoint["tables"]
        hub.dispose()


@contextmanager
def select_only_user(backend: str, url: str) -> Iterator[str]:
    """A database user that may read the PMS tables and nothing else; yields its URL."""
    name = f"pms_reader_{uuid.uuid4().hex[:8]}"
    database = make_url(url).database
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if backend == "postgres":
            conn.exec_driver_sql(f"CREATE ROLE {name} LOGIN PASSWORD 'reader'")
            conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}")
        else:
            for host in MARIADB_HOSTS:
                conn.exec_driver_sql(f"CREATE USER '{name}'@'{host}' IDENTIFIED BY 'reader'")
                conn.exec_driver_sql(f"GRANT SELECT ON `{database}`.* TO '{name}'@'{host}'")
    try:
        yield make_url(url).set(username=name, password="reader").render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if backend == "postgres":
                conn.exec_driver_sql(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {name}")
                conn.exec_driver_sql(f"DROP ROLE {name}")
            else:
                for host in MARIADB_HOSTS:
                    conn.exec_driver_sql(f"DROP USER '{name}'@'{host}'")
        admin.dispose()


@pytest.mark.parametrize("backend", SERVERS)
def test_read_access_is_all_the_adapter_needs(backend: str, tmp_path: Path) -> None:
    with pms_database(backend, tmp_path) as pms:
        small_world(pms.writer, transformers=200)
        with select_only_user(backend, pms.url) as reader_url:
            plain = sa.create_engine(reader_url)
            with plain.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="denied"):
                conn.exec_driver_sql(
                    'DELETE FROM "T_SB_ZNYC_PDBYQ"'
                    if backend == "postgres"
                    else "DELETE FROM T_SB_ZNYC_PDBYQ"
                )
            plain.dispose()
            reader = create_pms_engine(reader_url)
            hub = create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
            create_schema(hub)
            config = load_hub_config(PROJECT_ROOT)
            source = PmsSource(
                config.routes, state_engine=hub, engine=reader, settings=PmsSettings(reconcile_interval_s=0)
            )
            with pipeline(hub, source, config) as wired:
                wired.sync()
            assert projected_transformers(hub) == source_transformers(pms.writer)
            reader.dispose()
            hub.dispose()
