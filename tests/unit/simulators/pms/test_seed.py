"""The seeded PMS grid: reproducible, consistent references, legacy code values and timestamp bursts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ground.errors import ConfigError
from simulators.pms.schema import (
    coordinates,
    feeders,
    main_transformers,
    metadata,
    substations,
    switches,
    transformers,
)
from simulators.pms.seed import MIGRATED_AT, SeedSummary, seed_database


def seeded(
    tmp_path: Path, name: str, substation_count: int, feeder_count: int, transformer_count: int
) -> tuple[Engine, SeedSummary]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / name}")
    summary = seed_database(
        engine,
        seed=42,
        substation_count=substation_count,
        feeder_count=feeder_count,
        transformer_count=transformer_count,
    )
    return engine, summary


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            table.name: [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key))]
            for table in metadata.sorted_tables
        }


def test_the_same_seed_and_sizes_give_the_same_rows(tmp_path: Path) -> None:
    first, _ = seeded(tmp_path, "a.db", substation_count=4, feeder_count=30, transformer_count=500)
    second, _ = seeded(tmp_path, "b.db", substation_count=4, feeder_count=30, transformer_count=500)
    assert dump(first) == dump(second)
    other = sa.create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    seed_database(other, seed=43, substation_count=4, feeder_count=30, transformer_count=500)
    assert dump(other) != dump(first)


def test_a_world_of_realistic_shape(tmp_path: Path) -> None:
    engine, summary = seeded(
        tmp_path, "pms.db", substation_count=20, feeder_count=200, transformer_count=5000
    )
    assert (summary.substations, summary.feeders, summary.transformers) == (20, 200, 5000)
    with engine.connect() as conn:
        subs = {row.OBJ_ID: row for row in conn.execute(sa.select(substations))}
        lines = {row.OBJ_ID: row for row in conn.execute(sa.select(feeders))}
        rows = conn.execute(sa.select(transformers)).all()
        mains = conn.execute(sa.select(main_transformers)).all()
        gis = {row.SBID for row in conn.execute(sa.select(coordinates))}
        switch_count = conn.execute(sa.select(sa.func.count()).select_from(switches)).scalar_one()
    assert {row.DYDJ for row in subs.values()} <= {"25", "32", "33"}
    assert all(
        row.SSDZ in subs and float(row.EDRL) in (6.3, 10, 20, 31.5, 40, 50, 63, 180, 240) for row in mains
    )
    assert all(line.QSDZ in subs and subs[line.QSDZ].DYDJ != "33" for line in lines.values())
    assert all(row.SSDKX in lines and lines[row.SSDKX].QSDZ == row.SSDZ for row in rows)
    assert {row.DYDJ for row in rows} == {"22"}
    ownership = Counter(row.SYXZ for row in rows)
    assert 0.65 < ownership["01"] / 5000 < 0.75
    assert all((row.YXTQBH is not None) == (row.SYXZ == "01") for row in rows)
    assert all(row.YXTQBH is None or (row.YXTQBH.startswith("TG") and len(row.YXTQBH) == 9) for row in rows)
    assert Counter(row.YXZT for row in rows)["20"] > 4600
    assert 4900 < len({row.OBJ_ID for row in rows} & gis) < 5000
    assert set(subs) <= gis
    assert switch_count == summary.switches >= 200
    times = Counter(row.GXSJ for row in rows)
    assert 0.35 < times[MIGRATED_AT] / 5000 < 0.45
    assert 0 < times[None] < 40
    assert max(count for at, count in times.items() if at not in (None, MIGRATED_AT)) >= 20


def test_seeding_refuses_filled_tables_and_bad_sizes(tmp_path: Path) -> None:
    engine, _ = seeded(tmp_path, "pms.db", substation_count=1, feeder_count=2, transformer_count=3)
    with pytest.raises(ConfigError, match="already hold data"):
        seed_database(engine, substation_count=1, feeder_count=2, transformer_count=3)
    with pytest.raises(ConfigError, match="at least one substation"):
        seed_database(sa.create_engine("sqlite://"), substation_count=0)
    with pytest.raises(ConfigError, match="need at least one feeder"):
        seed_database(sa.create_engine("sqlite://"), substation_count=1, feeder_count=0, transformer_count=1)


def test_supply_area_classes_shape_ties_and_main_transformers(tmp_path: Path) -> None:
    engine, _ = seeded(tmp_path, "pms.db", substation_count=60, feeder_count=600, transformer_count=10)
    with engine.connect() as conn:
        subs = {row.OBJ_ID: row for row in conn.execute(sa.select(substations))}
        lines = conn.execute(sa.select(feeders)).all()
        units = Counter(row.SSDZ for row in conn.execute(sa.select(main_transformers)))
    # GDQY codes: 02 A, 03 B, 04 C, 05 D, 06 E; the city's high-voltage stations serve A-C, 35 kV C-E.
    assert {row.GDQY for row in subs.values() if row.DYDJ == "32"} <= {"02", "03", "04"}
    assert {row.GDQY for row in subs.values() if row.DYDJ == "25"} <= {"04", "05", "06"}
    # A feeder serves its substation's class or the next one out.
    order = ["02", "03", "04", "05", "06"]
    assert all(0 <= order.index(f.GDQY) - order.index(subs[f.QSDZ].GDQY) <= 1 for f in lines)
    urban = [f.LLKGS for f in lines if f.GDQY in ("02", "03")]
    rural = [f.LLKGS for f in lines if f.GDQY in ("05", "06")]
    assert urban and min(urban) >= 1  # every urban feeder has a tie
    assert rural and sum(1 for k in rural if k == 0) / len(rural) > 0.5  # most rural ones are radial
    single = [sub for sub, row in subs.items() if row.GDQY in ("05", "06") and units[sub] == 1]
    assert single  # single-transformer rural substations exist
    assert all(units[sub] >= 2 for sub, row in subs.items() if row.GDQY in ("02", "03"))


def test_feeders_leave_from_their_substation_s_bus_sections_in_turn_and_bays_are_spare_at_most(
    tmp_path: Path,
) -> None:
    engine, _ = seeded(tmp_path, "pms.db", substation_count=60, feeder_count=600, transformer_count=10)
    with engine.connect() as conn:
        subs = {row.OBJ_ID: row for row in conn.execute(sa.select(substations))}
        lines = conn.execute(sa.select(feeders).order_by(feeders.c.OBJ_ID)).all()
        units = Counter(row.SSDZ for row in conn.execute(sa.select(main_transformers)))
    # One 10 kV bus section per main transformer: a single-unit substation's feeders all leave from I.
    for sub in subs:
        own = [f.SSMX for f in lines if f.QSDZ in (sub,)]
        expected = {name for n, name in enumerate(("I", "II", "III", "IV")) if n < units[sub]}
        assert set(own) <= expected, (sub, own, units[sub])
        if len(own) >= units[sub]:
            assert set(own) == expected
    bays = [row.BYJGS for row in subs.values()]
    assert all(0 <= count <= 4 for count in bays)
    assert 0 in bays and any(count >= 2 for count in bays)
    # Same seed, same spare bays.
    again, _ = seeded(tmp_path, "pms2.db", substation_count=60, feeder_count=600, transformer_count=10)
    with again.connect() as conn:
        assert conn.execute(sa.select(substations.c.OBJ_ID, substations.c.BYJGS)).all() == [
            (sub, row.BYJGS) for sub, row in subs.items()
        ]
