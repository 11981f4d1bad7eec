"""The simulator measures the PMS simulator's own feeders and transformers, by their PMS ids and names."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from ground.errors import ConfigError
from simulators.dispatch.equipment import (
    EquipmentKind,
    LoadClass,
    classify_transformer,
    feeder_rated_kw,
    pms_equipment,
    read_main_transformers,
    read_pms_equipment,
    split,
)
from simulators.pms.schema import feeders, main_transformers, transformers
from simulators.pms.seed import seed_database


@pytest.fixture(scope="module")
def pms() -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    seed_database(engine, seed=77, substation_count=5, feeder_count=20, transformer_count=200)
    return engine


def test_the_equipment_is_a_sample_of_the_pms_grid(pms: sa.Engine) -> None:
    equipment = read_pms_equipment(pms, feeder_count=5, transformer_count=12, seed=3)
    lines, units = split(equipment)
    assert len(lines) == 5 and len(units) == 12
    with pms.connect() as conn:
        feeder_names = dict(conn.execute(sa.select(feeders.c.OBJ_ID, feeders.c.XLMC)).tuples().all())
        rows = conn.execute(sa.select(transformers.c.OBJ_ID, transformers.c.EDRL, transformers.c.YXZT)).all()
    ratings = {row.OBJ_ID: float(row.EDRL) for row in rows if row.YXZT == "20"}
    assert all(item.name == feeder_names[item.equipment_id] for item in lines)
    assert all(item.kind is EquipmentKind.TRANSFORMER for item in units)
    assert all(item.rated_kw == pytest.approx(ratings[item.equipment_id] * 0.9, abs=0.1) for item in units)
    assert equipment == read_pms_equipment(pms, feeder_count=5, transformer_count=12, seed=3)


def test_the_in_memory_grid_has_the_ids_and_names_of_the_pms_simulator(pms: sa.Engine) -> None:
    expected = read_pms_equipment(pms, feeder_count=4, transformer_count=6, seed=9)
    got = pms_equipment(
        pms_seed=77,
        substation_count=5,
        pms_feeder_count=20,
        pms_transformer_count=200,
        feeder_count=4,
        transformer_count=6,
        seed=9,
    )
    assert got == expected


def test_transformers_are_classed_by_ownership_and_trade() -> None:
    assert classify_transformer("建设路12号公变", "01") is LoadClass.RESIDENTIAL
    assert classify_transformer("南阳卧龙纺织有限公司专变", "02") is LoadClass.INDUSTRIAL
    assert classify_transformer("南阳宛城物流有限公司专变", "02") is LoadClass.COMMERCIAL
    assert classify_transformer("无使用性质", None) is LoadClass.RESIDENTIAL


def test_a_feeder_carries_root_three_u_i_cos_phi() -> None:
    assert feeder_rated_kw(485) == pytest.approx(math.sqrt(3) * 10 * 485 * 0.9)


def test_an_empty_pms_database_is_an_error() -> None:
    engine = sa.create_engine("sqlite://")
    seed_database(engine, seed=1, substation_count=1, feeder_count=0, transformer_count=0)
    with pytest.raises(ConfigError, match="no feeders or in-service transformers"):
        read_pms_equipment(engine, feeder_count=1, transformer_count=1, seed=1)


def test_main_transformers_are_measured_by_dispatch_automation_at_their_rating(pms: sa.Engine) -> None:
    mains = read_main_transformers(pms, seed=3)
    with pms.connect() as conn:
        ratings = dict(
            conn.execute(sa.select(main_transformers.c.OBJ_ID, main_transformers.c.EDRL)).tuples().all()
        )
    assert {item.equipment_id for item in mains} == set(ratings)
    assert all(item.rated_kw == pytest.approx(float(ratings[item.equipment_id]) * 900) for item in mains)
    measured_by_dispatch, metered = split(
        [*mains, *read_pms_equipment(pms, feeder_count=2, transformer_count=3, seed=3)]
    )
    assert {item.kind for item in measured_by_dispatch} == {
        EquipmentKind.MAIN_TRANSFORMER,
        EquipmentKind.FEEDER,
    }
    assert {item.kind for item in metered} == {EquipmentKind.TRANSFORMER}
