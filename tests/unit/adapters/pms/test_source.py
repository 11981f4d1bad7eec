"""The PMS source: keyset pages, the overlap window, commits, GIS changes, deletions, rescans, errors."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.pms.registry import RowRegistry
from adapters.pms.source import DETECTED_AT, PmsSource, create_pms_engine
from adapters.pms.wiring import pms_parts
from ground import clock as lease_clock
from ground.errors import ConfigError, FencedOutError, SourceUnavailableError
from ground.settings import PmsSettings, Settings
from pipeline.config import HubConfig
from pipeline.ingest import Ingestor
from pipeline.leases import LeaseKeeper
from pipeline.records import RawRecord, SourceBatch
from simulators.pms.changes import ChangeGenerator, ChangeKind
from simulators.pms.faults import table_lock
from simulators.pms.schema import coordinates, feeders, main_transformers, substations, transformers
from simulators.pms.seed import MIGRATED_AT
from store.checkpoints import load_checkpoint
from store.grid import source_rows
from tests.unit.adapters.pms.conftest import Clock, Driver, Pms, keys, make_source, payloads, table_keys

TABLES = {
    "substation": substations,
    "main_transformer": main_transformers,
    "feeder": feeders,
    "transformer": transformers,
}


def set_transformer(pms: Pms, key: str, **values: object) -> None:
    with pms.writer.begin() as conn:
        conn.execute(transformers.update().where(transformers.c["OBJ_ID"] == key).values(**values))


def published(records: list[RawRecord]) -> Counter[tuple[str, str]]:
    return Counter((record.record_type, record.key) for record in records)


def test_the_initial_sync_reads_every_row_once_across_bursts_larger_than_a_page(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    set_transformer(pms, "PB0000007", GXSJ=None)
    with pms.writer.connect() as conn:
        burst = conn.execute(
            sa.select(sa.func.count()).select_from(transformers).where(transformers.c.GXSJ == MIGRATED_AT)
        ).scalar_one()
    assert burst > 3 * 25, "the seeded migration burst must span several pages"

    records = Driver(make_source(pms, hub, config, clock), hub).drain()

    assert max(published(records).values()) == 1
    for record_type, table in TABLES.items():
        assert set(keys(records, record_type)) == table_keys(pms.writer, table)
    assert payloads(records, "transformer")["PB0000007"]["GXSJ"] is None


def test_payloads_are_plain_values_with_the_gis_row_nested(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    records = Driver(make_source(pms, hub, config, clock), hub).drain()
    with pms.writer.connect() as conn:
        row = conn.execute(sa.select(transformers).where(transformers.c.OBJ_ID == "PB0000001")).one()
        gis = conn.execute(sa.select(coordinates).where(coordinates.c.SBID == "PB0000001")).one()
    payload = payloads(records, "transformer")["PB0000001"]
    assert payload["EDRL"] == float(row.EDRL)
    assert payload["TYRQ"] == row.TYRQ.isoformat()
    assert payload["GXSJ"] == (row.GXSJ.strftime("%Y-%m-%d %H:%M:%S") if row.GXSJ else None)
    assert payload["GIS"] == {
        "SBID": "PB0000001",
        "SBLX": "0302",
        "JD": float(gis.JD),
        "WD": float(gis.WD),
        "GXSJ": gis.GXSJ.strftime("%Y-%m-%d %H:%M:%S") if gis.GXSJ else None,
    }
    assert "GIS" not in payloads(records, "feeder")["XL000001"]
    position = next(r.position for r in records if r.key == "PB0000001")
    assert position == {"table": "T_SB_ZNYC_PDBYQ", "changed_at": payload["GXSJ"], "key": "PB0000001"}


def test_changes_are_published_once_though_the_overlap_window_is_read_again(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    driver = Driver(make_source(pms, hub, config, clock, overlap_s=60), hub)
    driver.drain()
    generator = ChangeGenerator(pms.writer, seed=3, clock=clock.local, max_burst=40)
    records: list[RawRecord] = []
    for _ in range(4):
        generator.apply(30)
        clock.advance(1)
        records += driver.drain()
    records += driver.drain()

    changes = generator.changes
    assert any(change.kind is ChangeKind.BULK and len(change.keys) > 25 for change in changes)
    deleted = {key for change in changes if change.kind is ChangeKind.DELETE for key in change.keys}
    touched = {key for change in changes for key in change.keys}
    expected = Counter({("transformer", key): 1 for key in touched - deleted})
    expected.update({("transformer_deleted", key): 1 for key in deleted})
    assert published(records) == expected


def test_a_row_that_appears_behind_the_position_within_the_window_is_caught(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    driver = Driver(make_source(pms, hub, config, clock, overlap_s=30), hub)
    driver.drain()
    set_transformer(pms, "PB0000002", GXSJ=clock.local())
    assert keys(driver.drain(), "transformer") == ["PB0000002"]

    # A transaction that commits late looks like this to a reader: a row older than rows already read.
    set_transformer(pms, "PB0000003", EDRL=999, GXSJ=clock.local() - timedelta(seconds=5))
    records = driver.drain()

    assert keys(records, "transformer") == ["PB0000003"]
    assert payloads(records, "transformer")["PB0000003"]["EDRL"] == 999


def test_without_an_overlap_such_a_row_is_missed(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    driver = Driver(make_source(pms, hub, config, clock, overlap_s=0), hub)
    driver.drain()
    set_transformer(pms, "PB0000002", GXSJ=clock.local())
    driver.drain()
    set_transformer(pms, "PB0000003", EDRL=999, GXSJ=clock.local() - timedelta(seconds=5))
    assert keys(driver.drain(), "transformer") == []


def test_a_poll_that_is_not_committed_is_read_again_and_then_not_twice(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    driver = Driver(make_source(pms, hub, config, clock), hub)
    driver.drain()
    set_transformer(pms, "PB0000004", EDRL=1250, GXSJ=clock.local())

    lost = driver.poll(commit=False)
    again = driver.poll()
    after = driver.drain()

    assert keys(lost.records, "transformer") == keys(again.records, "transformer") == ["PB0000004"]
    assert keys(after, "transformer") == []


def test_versions_are_recorded_only_with_the_commit_of_their_poll(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    source = make_source(pms, hub, config, clock, page_size=1000)
    registry = RowRegistry(hub, "pms")
    driver = Driver(source, hub)

    lost = driver.poll(commit=False)
    assert registry.versions("transformer", ["PB0000001"]) == {}
    assert set(lost.checkpoint["pending"]["transformer"]) == table_keys(pms.writer, transformers)

    driver.poll()
    assert set(registry.versions("transformer", ["PB0000001", "PB0000002"])) == {"PB0000001", "PB0000002"}


def test_versions_carried_by_a_checkpoint_of_the_release_before_count_as_published(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    source = make_source(pms, hub, config, clock, page_size=1000)
    first = source.poll(None)
    # The release before wrote the carried versions only at the next poll, so none is in source_rows yet.
    again = source.poll(json.loads(json.dumps(first.checkpoint)))

    assert first.records
    assert again.records == []
    assert again.settle is not None
    with hub.begin() as conn:
        again.settle(conn)
    assert "PB0000001" in RowRegistry(hub, "pms").versions("transformer", ["PB0000001"])


def test_a_gis_only_change_publishes_the_transformer_again_with_its_new_location(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    driver = Driver(make_source(pms, hub, config, clock), hub)
    driver.drain()
    generator = ChangeGenerator(pms.writer, seed=5, clock=clock.local)

    (key,) = generator.move().keys
    records = driver.drain()

    assert keys(records, "transformer") == [key]
    with pms.writer.connect() as conn:
        gis = conn.execute(sa.select(coordinates).where(coordinates.c["SBID"] == key)).one()
    assert payloads(records, "transformer")[key]["GIS"]["JD"] == float(gis.JD)


def test_hard_deletes_become_deletion_records_once(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    driver = Driver(make_source(pms, hub, config, clock), hub)
    driver.drain()
    with pms.writer.connect() as conn:
        last_seen = conn.execute(
            sa.select(transformers.c.GXSJ).where(transformers.c.OBJ_ID == "PB0000009")
        ).scalar_one()
    generator = ChangeGenerator(pms.writer, seed=11, clock=clock.local)
    deleted = {key for _ in range(3) for key in generator.delete().keys}
    with pms.writer.begin() as conn:
        conn.execute(transformers.delete().where(transformers.c.OBJ_ID == "PB0000009"))
    deleted.add("PB0000009")

    records = driver.drain()
    later = driver.drain()

    assert set(keys(records, "transformer_deleted")) == deleted
    assert published(records) == Counter({("transformer_deleted", key): 1 for key in deleted})
    assert later == []
    payload = payloads(records, "transformer_deleted")["PB0000009"]
    assert payload == {
        "OBJ_ID": "PB0000009",
        "GXSJ": last_seen.strftime("%Y-%m-%d %H:%M:%S") if last_seen else None,
        DETECTED_AT: clock.local().strftime("%Y-%m-%d %H:%M:%S"),
    }
    assert RowRegistry(hub, "pms").versions("transformer", sorted(deleted)) == {}


def test_reconciliation_waits_for_its_interval(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    driver = Driver(make_source(pms, hub, config, clock, reconcile_interval_s=300), hub)
    driver.drain()
    with pms.writer.begin() as conn:
        conn.execute(transformers.delete().where(transformers.c.OBJ_ID == "PB0000010"))
    clock.advance(299)
    assert driver.drain() == []
    clock.advance(2)
    assert keys(driver.drain(), "transformer_deleted") == ["PB0000010"]


def test_a_decommissioned_transformer_is_a_change_of_status(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    driver = Driver(make_source(pms, hub, config, clock), hub)
    driver.drain()
    (key,) = ChangeGenerator(pms.writer, seed=2, clock=clock.local).decommission().keys
    records = driver.drain()
    assert keys(records, "transformer") == [key]
    assert payloads(records, "transformer")[key]["YXZT"] == "30"


def test_a_rescan_finds_a_change_hidden_behind_the_position_and_nothing_else(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    driver = Driver(make_source(pms, hub, config, clock, rescan_interval_s=600), hub)
    driver.drain()
    # Written with a clock far behind: no watermark or overlap can see it.
    set_transformer(pms, "PB0000005", EDRL=1600, GXSJ=MIGRATED_AT - timedelta(days=1))
    assert driver.drain() == []

    clock.advance(600)
    records = driver.drain()

    assert published(records) == Counter({("transformer", "PB0000005"): 1})
    assert payloads(records, "transformer")["PB0000005"]["EDRL"] == 1600


def test_has_more_while_history_is_left_and_not_for_the_window(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    driver = Driver(make_source(pms, hub, config, clock, reconcile_interval_s=3600), hub)
    assert driver.poll().has_more
    driver.drain()
    generator = ChangeGenerator(pms.writer, seed=4, clock=clock.local)
    generator.bulk(60)
    first = driver.poll()
    assert len(first.records) == 25
    # Rows in the overlap window are read again and again; they never make the hub poll without pause.
    assert not first.has_more


def test_a_fresh_checkpoint_publishes_everything_again(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    driver = Driver(make_source(pms, hub, config, clock), hub)
    first = driver.drain()
    driver.checkpoint = None
    assert published(driver.drain()) == published(first)


def test_a_table_no_route_polls_any_more_is_forgotten(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    driver = Driver(make_source(pms, hub, config, clock), hub)
    driver.drain()
    routes = [route for route in config.routes if route.record_type != "feeder"]
    narrower = PmsSource(routes, state_engine=hub, engine=pms.reader, settings=PmsSettings(), clock=clock)

    batch = Driver(narrower, hub, driver.checkpoint).poll()

    assert "feeder" not in batch.checkpoint["tables"]
    assert RowRegistry(hub, "pms").versions("feeder", ["XL000001"]) == {}
    assert RowRegistry(hub, "pms").versions("transformer", ["PB0000001"]) != {}


def test_a_locked_table_is_source_unavailable_and_polling_resumes_afterwards(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    driver = Driver(make_source(pms, hub, config, clock), hub)
    driver.drain()
    set_transformer(pms, "PB0000006", EDRL=630, GXSJ=clock.local())
    with table_lock(pms.writer, "T_SB_ZNYC_PDBYQ"), pytest.raises(SourceUnavailableError, match="locked"):
        driver.poll()
    assert keys(driver.drain(), "transformer") == ["PB0000006"]


def test_an_unreachable_database_is_source_unavailable(
    hub: Engine, config: HubConfig, clock: Clock, tmp_path: Path
) -> None:
    engine = create_pms_engine(f"sqlite:///{tmp_path / 'missing' / 'pms.db'}")
    source = PmsSource(config.routes, state_engine=hub, engine=engine, clock=clock)
    with pytest.raises(SourceUnavailableError, match="PMS database unavailable"):
        source.poll(None)


def test_a_missing_table_is_a_config_error_at_its_route(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    route = next(r for r in config.routes if (r.source_system, r.record_type) == ("pms", "feeder"))
    assert route.table is not None
    broken = dataclasses.replace(route, table=dataclasses.replace(route.table, table="T_SB_ZWYC_DKX_OLD"))
    routes = [broken if r is route else r for r in config.routes]
    source = PmsSource(routes, state_engine=hub, engine=pms.reader, clock=clock)
    with pytest.raises(ConfigError, match="no table T_SB_ZWYC_DKX_OLD") as caught:
        source.poll(None)
    assert (caught.value.file, caught.value.line) == (route.file, route.table.line)


def test_a_missing_column_and_a_non_time_change_column_are_config_errors(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    route = next(r for r in config.routes if (r.source_system, r.record_type) == ("pms", "feeder"))
    assert route.table is not None
    for table, message in (
        (dataclasses.replace(route.table, key="OBJID"), "has no column OBJID"),
        (dataclasses.replace(route.table, changed_at="XLMC"), "must be a date-time column"),
    ):
        routes = [dataclasses.replace(route, table=table)]
        with pytest.raises(ConfigError, match=message):
            PmsSource(routes, state_engine=hub, engine=pms.reader, clock=clock).poll(None)


def test_without_a_database_url_pms_is_not_configured(hub: Engine, config: HubConfig) -> None:
    with pytest.raises(ConfigError, match="YEKUO_PMS__DB_URL"):
        PmsSource(config.routes, state_engine=hub)
    assert [entry.kind for entry in Settings().declared_sources()] == ["marketing_soap"]


def test_the_settings_build_a_source_with_its_own_engine(
    hub: Engine, config: HubConfig, tmp_path: Path
) -> None:
    settings = Settings(pms=PmsSettings(db_url=f"sqlite:///{tmp_path / 'pms.db'}", page_size=7))
    [entry] = [entry for entry in settings.declared_sources() if entry.kind == "pms_db"]
    source = pms_parts(entry, hub, config.routes).poll
    assert isinstance(source, PmsSource)
    assert source.settings.page_size == 7
    assert str(source.engine.url) == f"sqlite:///{tmp_path / 'pms.db'}"
    source.close()


def test_routes_without_polled_tables_are_a_config_error(hub: Engine, config: HubConfig, pms: Pms) -> None:
    marketing = [route for route in config.routes if route.source_system == "marketing"]
    with pytest.raises(ConfigError, match="no route polls a pms table"):
        PmsSource(marketing, state_engine=hub, engine=pms.reader)


def test_a_paused_poller_writes_no_row_version_over_its_successors(
    pms: Pms, hub: Engine, config: HubConfig, clock: Clock
) -> None:
    source = make_source(pms, hub, config, clock, page_size=1000)
    ingestor = Ingestor(hub, config.router)
    with lease_clock.frozen_at(clock.now) as leases_now:
        first = LeaseKeeper(hub, "hub-1", 15.0, ["poll:pms"])
        second = LeaseKeeper(hub, "hub-2", 15.0, ["poll:pms"])
        first.keep()
        old = first.fence("poll:pms")
        while ingestor.poll_source(source, old):
            pass
        set_transformer(pms, "PB0000004", EDRL=1250, GXSJ=clock.local())
        ingestor.poll_source(source, old)
        with hub.connect() as conn:
            paused_checkpoint = load_checkpoint(conn, "pms")
        set_transformer(pms, "PB0000004", EDRL=1600, GXSJ=clock.local())

        leases_now.advance(timedelta(seconds=16))
        second.keep()
        for _ in range(2):
            ingestor.poll_source(source, second.fence("poll:pms"))
        with hub.connect() as conn:
            successors = conn.execute(sa.select(source_rows).order_by(source_rows.c.row_key)).all()

        with pytest.raises(FencedOutError):
            ingestor.poll_source(_Resuming(source, paused_checkpoint), old)

    with hub.connect() as conn:
        assert conn.execute(sa.select(source_rows).order_by(source_rows.c.row_key)).all() == successors


class _Resuming:
    """The PMS source as seen by a poller that read its checkpoint before its pause."""

    name = "pms"

    def __init__(self, source: PmsSource, checkpoint: dict[str, Any] | None) -> None:
        self._source = source
        self._checkpoint = checkpoint

    def poll(self, _checkpoint: Mapping[str, Any] | None) -> SourceBatch:
        return self._source.poll(self._checkpoint)
