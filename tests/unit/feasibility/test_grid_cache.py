"""The in-memory grid follows the grid projection: changes, deletions and a projection started afresh."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.engine import Engine

from canonical_model.envelope import CloudEvent
from canonical_model.registry import schema_uri
from feasibility.config import load_feasibility_config
from feasibility.grid_cache import GridCache
from feasibility.service import FeasibilityService
from pipeline.decoded import DecodedEvent
from store.database import create_schema, drop_schema
from workflow.grid import handle_grid_event

from .builders import KINDS, NOW, ROOT, SITE, feeder, request, store_peak, substation, transformer

_SEQUENCE = itertools.count(1)
_SCHEMAS = {
    "transformer": "distribution_transformer.v1",
    "feeder": "feeder.v1",
    "substation": "substation.v1",
}
_IDS = {"transformer": "transformer_id", "feeder": "feeder_id", "substation": "substation_id"}


def _event(kind: str, subject: str, data: dict[str, Any], *, deleted: bool = False) -> CloudEvent:
    change = "deleted" if deleted else "changed"
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=f"/pms/{kind}" + ("_deleted" if deleted else ""),
        type=f"cn.yekuo.grid.{kind}.{change}.v1",
        subject=subject,
        time=datetime(2026, 11, 26, 2, 0, tzinfo=UTC),
        dataschema=schema_uri("equipment_deletion.v1" if deleted else _SCHEMAS[kind]),
        correlationid="c",
        sequence=next(_SEQUENCE),
        data=data,
    )


def project(engine: Engine, *documents: BaseModel) -> None:
    """Write documents through the grid projection, as the grid consumer does."""
    with engine.begin() as conn:
        for document in documents:
            kind = KINDS[type(document)]
            data = document.model_dump(mode="json", exclude_none=True)
            handle_grid_event(conn, DecodedEvent(_event(kind, data[_IDS[kind]], data)))


def delete(engine: Engine, kind: str, equipment_id: str) -> None:
    data = {"equipment_id": equipment_id, "kind": kind, "detected_at": "2026-11-26T10:10:00+08:00"}
    with engine.begin() as conn:
        handle_grid_event(conn, DecodedEvent(_event(kind, equipment_id, data, deleted=True)))


def ratings(cache: GridCache, engine: Engine) -> dict[str, float | None]:
    with engine.connect() as conn:
        area = cache.area(conn)
    return {key: item.rated_kva for key, item in area.transformers.items()}


def test_changes_and_deletions_reach_a_cache_that_already_holds_the_grid(sqlite_engine: Engine) -> None:
    project(sqlite_engine, substation("S1"), feeder("F1", "S1", 100), transformer("T1", "F1", "S1", 50))
    project(sqlite_engine, transformer("T2", "F1", "S1", 80))
    cache = GridCache()
    assert ratings(cache, sqlite_engine) == {"T1": 400, "T2": 400}

    project(
        sqlite_engine, transformer("T1", "F1", "S1", 50, rated_kva=630), transformer("T3", "F1", "S1", 90)
    )
    delete(sqlite_engine, "transformer", "T2")
    assert ratings(cache, sqlite_engine) == {"T1": 630, "T3": 400}
    with sqlite_engine.connect() as conn:
        area = cache.area(conn)
        assert cache.area(conn) is area  # nothing changed: no rebuild
    assert [item for _, item in area.lv.within(SITE.lon, SITE.lat, 200)] == ["T1", "T3"]


def test_a_projection_started_afresh_is_read_whole_again(sqlite_engine: Engine) -> None:
    project(sqlite_engine, substation("S1"), feeder("F1", "S1", 100), transformer("T1", "F1", "S1", 50))
    cache = GridCache()
    assert ratings(cache, sqlite_engine) == {"T1": 400}
    drop_schema(sqlite_engine)
    create_schema(sqlite_engine)
    project(sqlite_engine, substation("S1"), feeder("F1", "S1", 100), transformer("T9", "F1", "S1", 50))
    assert ratings(cache, sqlite_engine) == {"T9": 400}


def test_a_cache_updated_step_by_step_equals_one_read_from_scratch(sqlite_engine: Engine) -> None:
    rng = random.Random(5)
    project(sqlite_engine, substation("S1"), substation("S2", 3000), feeder("F1", "S1", 100))
    project(sqlite_engine, feeder("F2", "S2", 2900))
    cache = GridCache()
    for step in range(30):
        number = rng.randrange(12)
        if rng.random() < 0.25:
            delete(sqlite_engine, "transformer", f"T{number}")
        else:
            feeder_id = rng.choice(("F1", "F2"))
            substation_id = "S1" if feeder_id == "F1" else "S2"
            rated = rng.choice((200, 315, 400, 630))
            located = transformer(
                f"T{number}", feeder_id, substation_id, rng.uniform(0, 3000), rated_kva=rated
            )
            project(sqlite_engine, located)
        if step % 3 == 0:
            ratings(cache, sqlite_engine)
    with sqlite_engine.connect() as conn:
        followed, fresh = cache.area(conn), GridCache().area(conn)
    assert followed.transformers == fresh.transformers
    assert followed.feeders == fresh.feeders
    assert sorted(followed.lv.within(SITE.lon, SITE.lat, 5000)) == sorted(
        fresh.lv.within(SITE.lon, SITE.lat, 5000)
    )
    assert sorted(followed.mv.within(SITE.lon, SITE.lat, 5000)) == sorted(
        fresh.mv.within(SITE.lon, SITE.lat, 5000)
    )


def test_a_service_check_sees_a_re_rating_made_after_its_previous_check(sqlite_engine: Engine) -> None:
    service = FeasibilityService(load_feasibility_config(ROOT), clock=lambda: NOW)
    project(
        sqlite_engine,
        substation("S1"),
        feeder("F1", "S1", 100),
        transformer("T1", "F1", "S1", 50, rated_kva=200),
    )
    with sqlite_engine.begin() as conn:
        # 120 kW / 0.9 = 133.3 kVA: within 0.8 x 200 = 160 kVA before the request, so the request itself
        # crosses it ((133.3 + 100) / 200 = 1.17 > 0.8); re-rated to 630 kVA, 233.3 / 630 = 0.37 passes.
        store_peak(conn, "T1", 120)
        store_peak(conn, "F1", 1000)
    with sqlite_engine.connect() as conn:
        before = service.preview(conn, request(100))
    project(sqlite_engine, transformer("T1", "F1", "S1", 50, rated_kva=630))
    with sqlite_engine.connect() as conn:
        after = service.preview(conn, request(100))
    assert (before.verdict, after.verdict) == ("needs_reinforcement", "feasible")
