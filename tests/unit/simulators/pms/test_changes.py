"""Live PMS changes: each kind does what PMS users do, bursts share one GXSJ, no row is touched twice."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ground.errors import ConfigError
from simulators.pms.changes import ChangeGenerator, ChangeKind, local_now
from simulators.pms.schema import coordinates, create_pms_schema, transformers
from simulators.pms.seed import seed_database

AT = datetime(2026, 11, 26, 10, 0, 0)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'pms.db'}")
    seed_database(engine, seed=1, substation_count=2, feeder_count=10, transformer_count=200)
    return engine


def row(engine: Engine, key: str) -> sa.Row[tuple[object, ...]] | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(transformers).where(transformers.c["OBJ_ID"] == key)).first()


def gis(engine: Engine, key: str) -> sa.Row[tuple[object, ...]] | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(coordinates).where(coordinates.c["SBID"] == key)).first()


def test_each_kind_of_change(engine: Engine) -> None:
    generator = ChangeGenerator(engine, seed=9, clock=lambda: AT)

    (new,) = generator.insert().keys
    assert new == "PB0000201"
    inserted = row(engine, new)
    assert inserted is not None and (inserted.YXZT, inserted.GXSJ, inserted.SYXZ) == ("10", AT, "01")
    assert gis(engine, new) is not None

    (rated,) = generator.rating().keys
    after = row(engine, rated)
    assert after is not None and after.GXSJ == AT and after.XH.endswith(f"-{int(after.EDRL)}/10")

    (retired,) = generator.decommission().keys
    assert row(engine, retired).YXZT == "30"  # type: ignore[union-attr]

    (gone,) = generator.delete().keys
    assert row(engine, gone) is None and gis(engine, gone) is None

    before = row(engine, "PB0000001")
    (moved,) = generator.move().keys
    moved_gis = gis(engine, moved)
    assert moved_gis is not None and moved_gis.GXSJ == AT
    if moved == "PB0000001":
        assert row(engine, moved) == before

    bulk = generator.bulk(30)
    rows = [row(engine, key) for key in bulk.keys]
    assert len({(r.SSDKX, r.GXSJ) for r in rows if r is not None}) == 1

    touched = [key for change in generator.changes for key in change.keys]
    assert len(touched) == len(set(touched)) == 35
    assert [change.kind for change in generator.changes] == list(ChangeKind)


def test_apply_changes_distinct_rows_with_every_kind_and_bursts(engine: Engine) -> None:
    generator = ChangeGenerator(engine, seed=3, clock=local_now, max_burst=30)
    changes = generator.apply(150)
    keys = [key for change in changes for key in change.keys]
    assert len(keys) == len(set(keys)) == 150
    kinds = Counter(change.kind for change in changes)
    assert set(kinds) == set(ChangeKind)
    assert all(change.at.microsecond == 0 for change in changes)
    assert generator.untouched == 200 - 150 + kinds[ChangeKind.INSERT]


def test_a_generator_runs_out_of_untouched_rows_loudly(engine: Engine) -> None:
    generator = ChangeGenerator(engine, seed=3, clock=lambda: AT)
    with pytest.raises(ConfigError, match="only 200 untouched transformers are left, 201 needed"):
        generator.bulk(201)
    empty = sa.create_engine("sqlite://")
    create_pms_schema(empty)
    with pytest.raises(ConfigError, match="seed it first"):
        ChangeGenerator(empty)
