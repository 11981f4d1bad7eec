"""PMS to the grid projection through the real pipeline on SQLite, PostgreSQL and MariaDB, at full scale.

An initial sync of 50,000 distribution transformers, then 1,000 random changes with equal-timestamp bursts
and deletes.

Each backend holds the simulated PMS; the hub's own store is a SQLite file, so that the time goes to the
legacy database under test.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.pms.source import PmsSource
from canonical_model.events import PROJECTION_UPDATED
from ground.settings import PROJECT_ROOT, PmsSettings
from pipeline.config import load_hub_config
from simulators.pms.changes import ChangeGenerator, ChangeKind
from simulators.pms.schema import feeders, main_transformers, substations
from simulators.pms.seed import seed_database
from store.database import create_engine, create_schema
from store.grid import grid_equipment
from tests.support.pipeline import event_types, last_outbox_id, pipeline, subject_counts
from tests.support.pms import pms_database, projected_transformers, source_transformers

CHANGED = "cn.yekuo.grid.transformer.changed.v1"
DELETED = "cn.yekuo.grid.transformer.deleted.v1"


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_50000_transformers_then_1000_changes_each_arrive_exactly_once(backend: str, tmp_path: Path) -> None:
    with pms_database(backend, tmp_path) as pms:
        seed = seed_database(pms.writer, seed=20261126)
        assert seed.transformers == 50_000
        hub = create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
        create_schema(hub)
        config = load_hub_config(PROJECT_ROOT)
        settings = PmsSettings(page_size=1000, overlap_s=120, reconcile_interval_s=0)
        source = PmsSource(config.routes, state_engine=hub, engine=pms.reader, settings=settings)
        with pipeline(hub, source, config) as wired:
            wired.sync()

            expected = source_transformers(pms.writer)
            assert len(expected) == 50_000
            assert projected_transformers(hub) == expected
            assert set(subject_counts(hub, CHANGED).values()) == {1}
            with pms.writer.connect() as conn, hub.connect() as hub_conn:
                for kind, table in (
                    ("substation", substations),
                    ("feeder", feeders),
                    ("main_transformer", main_transformers),
                ):
                    in_pms = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                    projected = hub_conn.execute(
                        sa.select(sa.func.count())
                        .select_from(grid_equipment)
                        .where(grid_equipment.c.kind == kind)
                    ).scalar_one()
                    assert projected == in_pms, kind

            mark = last_outbox_id(hub)
            generator = ChangeGenerator(pms.writer, seed=7, max_burst=80)
            for _ in range(4):
                generator.apply(250)
                wired.poll_until_settled()
            wired.sync()

            changes = generator.changes
            touched = Counter(key for change in changes for key in change.keys)
            assert sum(touched.values()) == 1000 and max(touched.values()) == 1
            kinds = Counter(change.kind for change in changes)
            assert kinds[ChangeKind.DELETE] >= 5 and kinds[ChangeKind.BULK] >= 5
            assert max(len(change.keys) for change in changes) > 50
            deleted = {key for change in changes if change.kind is ChangeKind.DELETE for key in change.keys}

            expected_changes = Counter({key: 1 for key in touched if key not in deleted})
            assert subject_counts(hub, CHANGED, after_id=mark) == expected_changes
            assert subject_counts(hub, DELETED, after_id=mark) == Counter({key: 1 for key in deleted})
            # Beside the PMS changes, only the grid projection's notices that it stored them.
            assert event_types(hub, after_id=mark) == {CHANGED, DELETED, PROJECTION_UPDATED}
            assert projected_transformers(hub) == source_transformers(pms.writer)
        hub.dispose()
