"""A further PMS table (pole-mounted switches) is onboarded with one mapping file and one route.

Both are written into a copy of the configuration: no code changes, on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.pms.source import PmsSource
from ground.errors import ConfigError
from ground.settings import PmsSettings
from pipeline.config import load_hub_config
from simulators.pms.changes import local_now
from simulators.pms.schema import coordinates, switches
from simulators.pms.seed import seed_database
from store.database import create_engine, create_schema
from store.grid import grid_equipment
from tests.support.pipeline import pipeline, subject_counts
from tests.support.pms import STATUS, pms_database
from tests.unit.routes.config_copy import copy_config
from yekuo.config import check_config

SWITCH_MAPPING = """\
# PMS2.0 pole-mounted switch (柱上开关) T_SB_ZWYC_ZSKG, with its GIS coordinates.
mapping: pms/switch
source: {system: pms, record: switch}
target: GridEquipment
fields:
  equipment_id: {from: OBJ_ID, required: true}
  kind: {constant: switch}
  name: {from: SBMC, required: true}
  feeder_id: {from: SSDKX}
  status: {from: YXZT, codes: pms/yxzt, required: true}
  commissioned_on: {from: TYRQ}
  location.lon: {from: GIS.JD, number: true}
  location.lat: {from: GIS.WD, number: true}
  updated_at: {from: GXSJ, datetime: "%Y-%m-%d %H:%M:%S"}
  source_refs:
    template: [{system: pms, record_type: switch, key: "{OBJ_ID}"}]
"""

SWITCH_ROUTE = """\
routes:
  - name: pms-switch
    source:
      system: pms
      record: switch
      table: T_SB_ZWYC_ZSKG
      key: OBJ_ID
      changed_at: GXSJ
      join: {as: GIS, table: T_TX_SBZB, key: SBID, changed_at: GXSJ}
    mapping: pms/switch
    event_type: cn.yekuo.grid.switch.changed.v1
    exchange: yekuo.events
    routing_key: "grid.switch.changed"
    subject: "{equipment_id}"
"""


def onboarded_config(root: Path) -> Path:
    """A copy of the shipped configuration, plus the switch mapping and route."""
    copy_config(root)
    (root / "mappings/pms/switch.yaml").write_text(SWITCH_MAPPING, encoding="utf-8")
    (root / "routes/pms_switch.yaml").write_text(SWITCH_ROUTE, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_switches_need_only_a_mapping_and_a_route(backend: str, tmp_path: Path) -> None:
    config_dir = onboarded_config(tmp_path / "config")
    assert [str(error) for error in check_config(config_dir)] == []
    config = load_hub_config(config_dir)
    with pms_database(backend, tmp_path) as pms:
        seed_database(pms.writer, seed=9, substation_count=3, feeder_count=40, transformer_count=200)
        hub = create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
        create_schema(hub)
        source = PmsSource(
            config.routes, state_engine=hub, engine=pms.reader, settings=PmsSettings(page_size=50)
        )
        with pipeline(hub, source, config) as wired:
            wired.sync()
            with pms.writer.begin() as conn:
                conn.execute(
                    switches.update()
                    .where(switches.c.OBJ_ID == "KG0000001")
                    .values(YXZT="30", GXSJ=local_now())
                )
            wired.sync()

        query = sa.select(switches, coordinates.c.JD, coordinates.c.WD).select_from(
            switches.outerjoin(coordinates, coordinates.c.SBID == switches.c.OBJ_ID)
        )
        with pms.writer.connect() as conn:
            expected = {
                row.OBJ_ID: (row.SBMC, row.SSDKX, STATUS[row.YXZT], (float(row.JD), float(row.WD)))
                for row in conn.execute(query)
            }
        with hub.connect() as conn:
            documents = conn.execute(
                sa.select(grid_equipment.c.equipment_id, grid_equipment.c.document).where(
                    grid_equipment.c.kind == "switch"
                )
            ).tuples()
            projected = {
                key: (
                    doc["name"],
                    doc["feeder_id"],
                    doc["status"],
                    (doc["location"]["lon"], doc["location"]["lat"]),
                )
                for key, doc in documents
            }
        assert len(expected) >= 40
        assert projected == expected
        assert expected["KG0000001"][2] == "decommissioned"
        counts = subject_counts(hub, "cn.yekuo.grid.switch.changed.v1")
        assert counts.pop("KG0000001") == 2 and set(counts.values()) == {1}
        hub.dispose()


@pytest.mark.postgres
def test_a_changed_at_column_with_a_time_zone_is_refused_at_its_route(tmp_path: Path) -> None:
    config_dir = onboarded_config(tmp_path / "config")
    config = load_hub_config(config_dir)
    route = next(r for r in config.routes if r.record_type == "switch")
    with pms_database("postgres", tmp_path) as pms:
        seed_database(pms.writer, seed=9, substation_count=1, feeder_count=2, transformer_count=5)
        with pms.writer.begin() as conn:
            conn.exec_driver_sql('ALTER TABLE "T_SB_ZWYC_ZSKG" ALTER COLUMN "GXSJ" TYPE timestamptz')
        hub = create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
        create_schema(hub)
        source = PmsSource([route], state_engine=hub, engine=pms.reader)
        with pytest.raises(ConfigError, match="GXSJ holds times with a zone") as caught:
            source.poll(None)
        assert (caught.value.file, caught.value.line) == ("routes/pms_switch.yaml", 6)
        hub.dispose()
