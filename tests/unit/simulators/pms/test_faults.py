"""The PMS fault triggers: a late commit stays invisible until it commits; a lock blocks readers."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ground.errors import ConfigError
from simulators.pms.faults import bulk_rerating, late_commit, table_lock
from simulators.pms.schema import transformers
from simulators.pms.seed import seed_database

AT = datetime(2026, 11, 26, 10, 0, 0)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'pms.db'}", connect_args={"timeout": 0.2})
    seed_database(engine, seed=1, substation_count=1, feeder_count=2, transformer_count=5)
    return engine


def rating(engine: Engine, key: str) -> float:
    with engine.connect() as conn:
        return float(
            conn.execute(sa.select(transformers.c.EDRL).where(transformers.c["OBJ_ID"] == key)).scalar_one()
        )


def test_a_late_commit_is_invisible_until_the_block_ends(engine: Engine) -> None:
    before = rating(engine, "PB0000001")
    with late_commit(engine, "PB0000001", rated_kva=1600, clock=lambda: AT) as at:
        assert at == AT
        assert rating(engine, "PB0000001") == before
    assert rating(engine, "PB0000001") == 1600
    with pytest.raises(ConfigError, match="no distribution transformer 'PB9'"), late_commit(engine, "PB9"):
        pass


def test_a_table_lock_blocks_readers_until_released(engine: Engine) -> None:
    with table_lock(engine, "T_SB_ZNYC_PDBYQ"), pytest.raises(sa.exc.OperationalError, match="locked"):
        rating(engine, "PB0000001")
    assert rating(engine, "PB0000001") > 0


def test_a_bulk_rerating_changes_every_named_transformer_with_one_timestamp(engine: Engine) -> None:
    untouched = rating(engine, "PB0000005")
    at = bulk_rerating(engine, ["PB0000001", "PB0000002", "PB0000003"], 30, clock=lambda: AT)
    assert at == AT
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                transformers.c.OBJ_ID, transformers.c.EDRL, transformers.c.XH, transformers.c.GXSJ
            ).where(transformers.c.OBJ_ID.in_(["PB0000001", "PB0000002", "PB0000003"]))
        ).all()
    assert {(float(row.EDRL), row.GXSJ) for row in rows} == {(30.0, AT)}
    assert all(row.XH.endswith("-30/10") for row in rows)
    assert rating(engine, "PB0000005") == untouched


def test_a_bulk_rerating_of_missing_transformers_changes_nothing(engine: Engine) -> None:
    before = rating(engine, "PB0000001")
    with pytest.raises(ConfigError, match="only 1 of 2 transformers"):
        bulk_rerating(engine, ["PB0000001", "PB9"], 30, clock=lambda: AT)
    assert rating(engine, "PB0000001") == before
    with pytest.raises(ConfigError, match="at least one transformer"):
        bulk_rerating(engine, [], 30)
