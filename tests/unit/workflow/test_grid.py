"""The grid projection: changes, deletions, their order, any onboarded kind, and the listing queries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bus.memory import topic_matches
from canonical_model.envelope import CloudEvent
from canonical_model.events import CAPACITY_FORECAST_EXCEEDED, PROJECTION_UPDATED
from canonical_model.registry import schema_uri
from ground.errors import SchemaViolationError
from ground.settings import PROJECT_ROOT
from pipeline.config import load_hub_config
from pipeline.decoded import DecodedEvent
from store.database import create_engine, create_schema
from store.grid import grid_equipment, grid_state
from store.schema import outbox
from store.transaction_work import transaction_work
from workflow.grid import GRID_EVENT, EquipmentFilter, get_equipment, handle_grid_event, list_equipment
from yekuo.consumers import CONSUMERS


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    hub = create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    create_schema(hub)
    yield hub
    hub.dispose()


def transformer(
    key: str = "PB1", *, updated: str = "2026-11-26T10:00:00+08:00", **changes: Any
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "transformer_id": key,
        "name": f"{key}号公变",
        "feeder_id": "XL1",
        "substation_id": "DZ1",
        "rated_capacity_kva": 400.0,
        "status": "in_service",
        "location": {"lon": 112.5, "lat": 33.0},
        "updated_at": updated,
        "source_refs": [{"system": "pms", "record_type": "transformer", "key": key}],
    }
    document.update(changes)
    return document


def event(
    kind: str, change: str, subject: str, data: dict[str, Any], sequence: int, schema: str
) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=f"/pms/{kind}" if change == "changed" else f"/pms/{kind}_deleted",
        type=f"cn.yekuo.grid.{kind}.{change}.v1",
        subject=subject,
        time=datetime(2026, 11, 26, 2, 0, tzinfo=UTC),
        dataschema=schema_uri(schema),
        correlationid="c",
        sequence=sequence,
        data=data,
    )


def changed(document: dict[str, Any], sequence: int) -> CloudEvent:
    return event(
        "transformer",
        "changed",
        document["transformer_id"],
        document,
        sequence,
        "distribution_transformer.v1",
    )


def deleted(key: str, last_changed_at: str | None, sequence: int = 1) -> CloudEvent:
    data: dict[str, Any] = {
        "equipment_id": key,
        "kind": "transformer",
        "detected_at": "2026-11-26T10:10:00+08:00",
    }
    if last_changed_at:
        data["last_changed_at"] = last_changed_at
    return event("transformer", "deleted", key, data, sequence, "equipment_deletion.v1")


def apply(engine: Engine, *events: CloudEvent) -> None:
    with engine.begin() as conn:
        for item in events:
            handle_grid_event(conn, DecodedEvent(item))


def live(engine: Engine, key: str = "PB1") -> dict[str, Any] | None:
    with engine.connect() as conn:
        return get_equipment(conn, "transformer", key)


def test_a_change_is_projected_with_its_filter_columns(engine: Engine) -> None:
    apply(engine, changed(transformer(), 1))
    assert live(engine) == transformer()
    with engine.connect() as conn:
        row = conn.execute(sa.select(grid_equipment)).one()
    assert (row.kind, row.equipment_id, row.feeder_id, row.substation_id, row.lon, row.lat, row.status) == (
        "transformer",
        "PB1",
        "XL1",
        "DZ1",
        112.5,
        33.0,
        "in_service",
    )


def test_a_newer_change_replaces_and_an_older_one_is_ignored(engine: Engine) -> None:
    apply(engine, changed(transformer(rated_capacity_kva=400.0), 2))
    apply(
        engine,
        changed(transformer(rated_capacity_kva=630.0), 3),
        changed(transformer(rated_capacity_kva=200.0), 1),
    )
    assert live(engine) == transformer(rated_capacity_kva=630.0)


def _from_dispatch(change: CloudEvent) -> CloudEvent:
    return change.model_copy(update={"id": str(uuid.uuid4()), "source": "/dispatch/transformer"})


def test_sequences_are_compared_within_one_source_and_the_system_of_record_wins(engine: Engine) -> None:
    # Dispatch's model file describes equipment PMS does not know yet: it is kept until PMS speaks.
    apply(engine, _from_dispatch(changed(transformer(rated_capacity_kva=315.0), 40)))
    assert live(engine) == transformer(rated_capacity_kva=315.0)
    # PMS's own counter is far behind dispatch's, yet its change applies: sequences of two sources differ.
    apply(engine, changed(transformer(rated_capacity_kva=400.0), 1))
    assert live(engine) == transformer(rated_capacity_kva=400.0)
    # A later dispatch record never overwrites what the system of record said ...
    apply(engine, _from_dispatch(changed(transformer(rated_capacity_kva=200.0), 41)))
    assert live(engine) == transformer(rated_capacity_kva=400.0)
    # ... while PMS's next change still applies, and its older one is still ignored.
    apply(engine, changed(transformer(rated_capacity_kva=630.0), 2), changed(transformer(), 1))
    assert live(engine) == transformer(rated_capacity_kva=630.0)


def test_a_deletion_hides_the_equipment_and_an_older_change_cannot_bring_it_back(engine: Engine) -> None:
    apply(engine, changed(transformer(updated="2026-11-26T10:00:00+08:00"), 1))
    apply(engine, deleted("PB1", "2026-11-26T10:00:00+08:00"))
    assert live(engine) is None
    # A redelivered old change from another copy of the stream: same version, higher sequence.
    apply(engine, changed(transformer(updated="2026-11-26T10:00:00+08:00"), 5))
    assert live(engine) is None
    apply(engine, changed(transformer(updated="2026-11-26T11:00:00+08:00", name="重建公变"), 6))
    assert live(engine) == transformer(updated="2026-11-26T11:00:00+08:00", name="重建公变")


def test_a_deletion_about_an_older_version_is_ignored(engine: Engine) -> None:
    apply(engine, changed(transformer(updated="2026-11-26T11:00:00+08:00"), 2))
    apply(engine, deleted("PB1", "2026-11-26T10:00:00+08:00"))
    assert live(engine) == transformer(updated="2026-11-26T11:00:00+08:00")


def test_a_deletion_before_its_change_leaves_a_mark_that_stops_the_late_change(engine: Engine) -> None:
    apply(engine, deleted("PB1", "2026-11-26T10:00:00+08:00"))
    apply(engine, changed(transformer(updated="2026-11-26T10:00:00+08:00"), 1))
    assert live(engine) is None
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(grid_equipment)).scalar_one() == 1


def test_any_onboarded_kind_is_kept_without_code(engine: Engine) -> None:
    switch = {
        "equipment_id": "KG1",
        "kind": "switch",
        "name": "联络开关1",
        "status": "in_service",
        "feeder_id": "XL1",
        "source_refs": [],
    }
    apply(engine, event("switch", "changed", "KG1", switch, 1, "grid_equipment.v1"))
    with engine.connect() as conn:
        assert get_equipment(conn, "switch", "KG1") == switch
        assert list_equipment(conn, "switch", EquipmentFilter(feeder_id="XL1"), limit=10) == ([switch], None)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"type": "cn.yekuo.grid.transformer.renamed.v1"}, ValueError, "no handler for event type"),
        ({"dataschema": "urn:yekuo:schema:nothing.v1"}, ValueError, "unknown data schema"),
        (
            {"dataschema": "urn:yekuo:schema:feeder.v1"},
            ValueError,
            "names data schema urn:yekuo:schema:feeder.v1, its type urn:yekuo:schema:distribution_tr",
        ),
        ({"data": {"transformer_id": "PB1"}}, SchemaViolationError, "is not a valid DistributionTransformer"),
    ],
)
def test_events_it_cannot_apply_are_errors(
    engine: Engine, change: dict[str, Any], error: type[Exception], message: str
) -> None:
    broken = changed(transformer(), 1).model_copy(update=change)
    with pytest.raises(error, match=message):
        apply(engine, broken)


def test_a_planning_alert_under_grid_is_acknowledged_without_touching_the_projection(engine: Engine) -> None:
    alert = event("transformer", "changed", "PB1", {"equipment_id": "PB1"}, 1, "capacity_forecast_alert.v1")
    apply(engine, alert.model_copy(update={"type": CAPACITY_FORECAST_EXCEEDED}))
    assert live(engine) is None
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one() == 0


def test_listings_filter_and_page_in_id_order(engine: Engine) -> None:
    documents = [
        transformer(
            f"PB{n}", feeder_id="XL1" if n % 2 else "XL2", location={"lon": 112.0 + n / 10, "lat": 33.0}
        )
        for n in range(1, 8)
    ]
    apply(engine, *(changed(doc, 1) for doc in documents), deleted("PB7", "2026-11-26T10:00:00+08:00"))
    with engine.connect() as conn:
        page, last = list_equipment(conn, "transformer", EquipmentFilter(), limit=4)
        rest, end = list_equipment(conn, "transformer", EquipmentFilter(), limit=4, after=last)
        odd, _ = list_equipment(conn, "transformer", EquipmentFilter(feeder_id="XL1"), limit=10)
        boxed, _ = list_equipment(
            conn, "transformer", EquipmentFilter(bbox=(112.15, 32.9, 112.45, 33.1)), limit=10
        )
    assert [d["transformer_id"] for d in page + rest] == [f"PB{n}" for n in range(1, 7)]
    assert (last, end) == ("PB4", None)
    assert [d["transformer_id"] for d in odd] == ["PB1", "PB3", "PB5"]
    assert [d["transformer_id"] for d in boxed] == ["PB2", "PB3", "PB4"]


def test_every_grid_route_publishes_to_a_key_the_grid_consumer_binds() -> None:
    config = load_hub_config(PROJECT_ROOT)
    grid = next(spec for spec in CONSUMERS if spec.name == "grid")
    keys = [route.routing_key.text for route in config.routes if route.source_system == "pms"]
    assert len(keys) == 8 and all("{" not in key for key in keys)
    assert all(any(topic_matches(topic, key) for topic in grid.topics) for key in keys)
    assert all(GRID_EVENT.match(route.event_type) for route in config.routes if route.source_system == "pms")


def test_moved_equipment_is_found_by_a_box_search_at_its_new_place_only(engine: Engine) -> None:
    apply(engine, changed(transformer(location={"lon": 112.5, "lat": 33.0}), 1))
    apply(engine, changed(transformer(location={"lon": 113.65, "lat": 34.75}), 2))

    def found(bbox: tuple[float, float, float, float]) -> list[str]:
        with engine.connect() as conn:
            items, _ = list_equipment(conn, "transformer", EquipmentFilter(bbox=bbox), limit=10)
        return [item["transformer_id"] for item in items]

    assert found((113.6, 34.7, 113.7, 34.8)) == ["PB1"]
    assert found((112.45, 32.95, 112.55, 33.05)) == []


def test_stored_changes_and_deletions_are_announced_and_ignored_ones_are_not(engine: Engine) -> None:
    first, stale = changed(transformer(), 2), changed(transformer(rated_capacity_kva=1.0), 1)
    removal = deleted("PB1", "2026-11-26T10:00:00+08:00", sequence=3)
    apply(engine, first, stale)
    apply(engine, removal)
    with engine.connect() as conn:
        bodies = conn.execute(
            sa.select(outbox.c.body, outbox.c.routing_key)
            .where(outbox.c.event_type == PROJECTION_UPDATED)
            .order_by(outbox.c.id)
        ).all()
    notices = [(CloudEvent.model_validate_json(row.body).data, row.routing_key) for row in bodies]
    assert [(data["source_event_id"], data["deleted"], key) for data, key in notices] == [
        (first.id, False, "projection.grid.transformer"),
        (removal.id, True, "projection.grid.transformer"),
    ]
    assert notices[0][0]["location"] == {"lon": 112.5, "lat": 33.0}


def _revision_and_notices(engine: Engine) -> tuple[int | None, int, set[int]]:
    with engine.connect() as conn:
        state = grid_state(conn)
        notices = conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.event_type == PROJECTION_UPDATED)
        ).scalar_one()
        revisions = set(conn.execute(sa.select(grid_equipment.c.revision)).scalars())
    return (None if state is None else state[1]), notices, revisions


def test_a_batch_in_one_transaction_work_bumps_the_revision_once_and_announces_at_its_end(
    engine: Engine,
) -> None:
    apply(engine, changed(transformer("PB0"), 1))
    assert _revision_and_notices(engine) == (1, 1, {1})
    with engine.connect() as conn, transaction_work(conn) as work:
        for key in ("PB1", "PB2", "PB3"):
            handle_grid_event(conn, DecodedEvent(changed(transformer(key), 1)))
        handle_grid_event(conn, DecodedEvent(deleted("PB0", "2026-11-26T10:00:00+08:00", sequence=2)))
        staged = conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.event_type == PROJECTION_UPDATED)
        ).scalar_one()
        assert staged == 1, "the batch's notices wait for the end of its work"
        work.finish(conn)
        conn.commit()
    # One bump for the four writes; every row written carries it; four notices, staged at the end.
    assert _revision_and_notices(engine) == (2, 5, {2})


def test_work_left_unfinished_is_rolled_back_with_nothing_announced(engine: Engine) -> None:
    with engine.connect() as conn, transaction_work(conn):
        handle_grid_event(conn, DecodedEvent(changed(transformer("PB1"), 1)))
        conn.rollback()
    with engine.begin() as conn:
        handle_grid_event(conn, DecodedEvent(changed(transformer("PB2"), 1)))
    assert _revision_and_notices(engine) == (1, 1, {1})


def _as_published(change: CloudEvent, instance: str = "urn:yekuo:hub:prod-gd") -> CloudEvent:
    return change.published_by(instance).model_copy(update={"id": str(uuid.uuid4())})


def test_absolute_sources_from_the_bus_keep_the_system_of_record_and_the_order_per_source(
    engine: Engine,
) -> None:
    # Events arrive with the instance URI in front of the producer path; staged ones (relative) mix in.
    apply(engine, _as_published(changed(transformer(rated_capacity_kva=400.0), 5)))
    apply(engine, changed(transformer(rated_capacity_kva=200.0), 4))
    assert live(engine) == transformer(rated_capacity_kva=400.0)
    apply(engine, _as_published(_from_dispatch(changed(transformer(rated_capacity_kva=315.0), 90))))
    assert live(engine) == transformer(rated_capacity_kva=400.0)
    apply(engine, _as_published(changed(transformer(rated_capacity_kva=630.0), 6), "urn:yekuo:hub:other"))
    assert live(engine) == transformer(rated_capacity_kva=630.0)
    with engine.connect() as conn:
        assert conn.execute(sa.select(grid_equipment.c.change_source)).scalar_one() == "/pms/transformer"
