"""Polled tables come from the route table alone; values become plain data; numeric keys work too."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.pms.source import PmsSource
from adapters.pms.tables import plain, polled_tables
from ground.settings import PmsSettings
from pipeline.config import HubConfig
from routes.table import TableSource
from tests.unit.adapters.pms.conftest import Clock, Driver, keys


def test_polled_tables_are_the_routes_with_table_options(config: HubConfig) -> None:
    tables = polled_tables(config.routes, "pms")
    assert [(t.record_type, t.source.table, t.source.deleted) for t in tables] == [
        ("substation", "T_SB_ZNYC_DZ", "substation_deleted"),
        ("main_transformer", "T_SB_ZNYC_ZBYQ", "main_transformer_deleted"),
        ("feeder", "T_SB_ZWYC_DKX", "feeder_deleted"),
        ("transformer", "T_SB_ZNYC_PDBYQ", "transformer_deleted"),
    ]
    assert polled_tables(config.routes, "marketing") == ()
    gis = tables[-1].source.join
    assert gis is not None and (gis.alias, gis.table, gis.key, gis.changed_at) == (
        "GIS",
        "T_TX_SBZB",
        "SBID",
        "GXSJ",
    )
    assert tables[-1].file == "routes/pms.yaml"


def test_values_become_plain_json_data() -> None:
    assert plain(Decimal("31.500")) == 31.5
    assert plain(datetime(2026, 11, 26, 10, 0, 0)) == "2026-11-26 10:00:00"
    assert plain(datetime(2026, 11, 26, 10, 0, 0, 250000)) == "2026-11-26 10:00:00.250000"
    assert plain(date(2026, 11, 26)) == "2026-11-26"
    assert plain(time(8, 30)) == "08:30:00"
    assert plain(b"\x01\xff") == "01ff"
    assert [plain(v) for v in (None, True, 3, 2.5, "x")] == [None, True, 3, 2.5, "x"]


def test_a_table_with_numeric_keys_is_polled_and_reconciled(
    hub: Engine, config: HubConfig, clock: Clock, tmp_path: Path
) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'poles.db'}")
    poles = sa.Table(
        "T_SB_ZWYC_GT",
        sa.MetaData(),
        sa.Column("GTID", sa.Integer, primary_key=True),
        sa.Column("GTMC", sa.String(32)),
        sa.Column("GXSJ", sa.DateTime),
    )
    poles.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            poles.insert(), [{"GTID": n, "GTMC": f"{n}号杆", "GXSJ": clock.local()} for n in (2, 10, 33)]
        )
    template = next(r for r in config.routes if (r.source_system, r.record_type) == ("pms", "feeder"))
    route = dataclasses.replace(
        template,
        record_type="pole",
        table=TableSource("T_SB_ZWYC_GT", "GTID", "GXSJ", None, "pole_deleted", template.line),
    )
    source = PmsSource(
        [route],
        state_engine=hub,
        engine=engine,
        settings=PmsSettings(page_size=2, reconcile_interval_s=0),
        clock=clock,
    )
    driver = Driver(source, hub)

    assert sorted(keys(driver.drain(), "pole"), key=int) == ["2", "10", "33"]
    with engine.begin() as conn:
        conn.execute(poles.delete().where(poles.c.GTID == 10))
    records = driver.drain()
    assert [(r.record_type, r.key, r.payload["GTID"]) for r in records] == [("pole_deleted", "10", "10")]
    engine.dispose()
