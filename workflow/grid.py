"""The grid projection: keeps grid_equipment current from cn.yekuo.grid.<kind>.changed|deleted events.

Every stored change is announced (workflow/projection.py) for the feasibility checks, which must read the
projection only once it holds the change.

Any kind the routes publish under that pattern is kept, so a newly onboarded PMS table needs no code here.
The document is validated against the payload model of its event type, which its dataschema must name.
Ordering is guarded per equipment: a change older than the last applied change of the same source (by
sequence) is ignored, and a deletion marks the row instead of removing it, so that a change the deletion
already superseded (by source time) cannot bring the equipment back, while a later re-insertion does.

Several systems may describe the same equipment: PMS, the system of record, and the dispatch model files
(CIM/E Substation and Feeder blocks) use the same ids. Sequences are counted per source, so they are compared
only within one source. A system of record's change always applies; another system's change applies only to
equipment no system of record has set, so a thinner dispatch record never overwrites what PMS says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical_model.common import GeoPoint
from canonical_model.envelope import CloudEvent
from canonical_model.events import CAPACITY_FORECAST_EXCEEDED, lookup
from canonical_model.projection import Projection, ProjectionUpdate
from canonical_model.registry import MODELS, schema_uri
from pipeline.decoded import DecodedEvent
from store.database import utcnow
from store.grid import bump_grid_revision, cell_of, cells_covering, grid_equipment
from workflow.projection import announce

GRID_EVENT = re.compile(r"^cn\.yekuo\.grid\.(?P<kind>[a-z_]+)\.(?P<change>changed|deleted)\.v[0-9]+$")
_SCHEMAS = frozenset(schema_uri(name) for _, name in MODELS.values())
# Legacy systems whose word on equipment wins over any other's.
RECORD_SYSTEMS = frozenset({"pms"})


def handle_grid_event(conn: Connection, decoded: DecodedEvent) -> None:
    """Apply one grid event to the projection; an unknown event type or schema is an error, not a drop."""
    event = decoded.event
    if event.type == CAPACITY_FORECAST_EXCEEDED:
        return
    match = GRID_EVENT.match(event.type)
    listed = lookup(event.type)
    if match is None or listed is None:
        raise ValueError(f"the grid consumer has no handler for event type {event.type}")
    if event.dataschema not in _SCHEMAS:
        raise ValueError(f"event {event.id} names an unknown data schema {event.dataschema}")
    if event.dataschema != listed.dataschema:
        raise ValueError(
            f"event {event.id} names data schema {event.dataschema}, its type {listed.dataschema}"
        )
    document: dict[str, Any] = decoded.payload.model_dump(mode="json", exclude_none=True)
    kind = match["kind"]
    if match["change"] == "changed":
        _apply_change(conn, kind, event, document)
    else:
        _apply_deletion(conn, kind, event, document)


# Statements built once: the consumer runs them for every grid event, and building is most of their cost.
_table = grid_equipment
_WHERE = (_table.c.kind == sa.bindparam("w_kind"), _table.c.equipment_id == sa.bindparam("w_id"))
_SELECT_ROW = sa.select(
    _table.c.change_sequence,
    _table.c.change_source,
    _table.c.source_updated_at,
    _table.c.deleted_at,
    _table.c.deleted_version_at,
).where(*_WHERE)
_INSERT = _table.insert()
_UPDATE = _table.update().where(*_WHERE)


def _row(conn: Connection, kind: str, equipment_id: str) -> Any:
    return conn.execute(_SELECT_ROW, {"w_kind": kind, "w_id": equipment_id}).first()


def _write(conn: Connection, exists: bool, kind: str, equipment_id: str, values: dict[str, Any]) -> None:
    values = {**values, "revision": bump_grid_revision(conn)}
    if exists:
        conn.execute(_UPDATE, {"w_kind": kind, "w_id": equipment_id, **values})
    else:
        conn.execute(_INSERT, {"kind": kind, "equipment_id": equipment_id, **values})


def _apply_change(conn: Connection, kind: str, event: CloudEvent, document: dict[str, Any]) -> None:
    row = _row(conn, kind, event.subject)
    updated_at = _time(document.get("updated_at"))
    if row is not None:
        if row.change_source == event.producer:
            if row.change_sequence is not None and event.sequence <= row.change_sequence:
                return
        elif _of_record(row.change_source) and not _of_record(event.producer):
            return
        if (
            row.deleted_at is not None
            and row.deleted_version_at is not None
            and updated_at is not None
            and updated_at <= row.deleted_version_at
        ):
            return
    location = document.get("location") or {}
    values = {
        "name": document.get("name"),
        "status": document.get("status"),
        "substation_id": document.get("substation_id"),
        "feeder_id": document.get("feeder_id"),
        "lon": location.get("lon"),
        "lat": location.get("lat"),
        "cell": cell_of(location.get("lon"), location.get("lat")),
        "document": document,
        "source_updated_at": updated_at,
        "change_sequence": event.sequence,
        "change_source": event.producer,
        "deleted_at": None,
        "deleted_version_at": None,
        "last_event_id": event.id,
        "updated_at": utcnow(),
    }
    _write(conn, row is not None, kind, event.subject, values)
    point = GeoPoint.model_validate(location) if location.get("lon") is not None else None
    announce(conn, _update(kind, event, location=point), event)


def _update(
    kind: str, event: CloudEvent, *, location: GeoPoint | None = None, deleted: bool = False
) -> ProjectionUpdate:
    return ProjectionUpdate(
        projection=Projection.GRID,
        equipment_id=event.subject,
        equipment_kind=kind,
        deleted=deleted,
        location=location,
        source_event_id=event.id,
        source_event_type=event.type,
    )


def _apply_deletion(conn: Connection, kind: str, event: CloudEvent, document: dict[str, Any]) -> None:
    row = _row(conn, kind, event.subject)
    last_changed_at = _time(document.get("last_changed_at"))
    if (
        row is not None
        and row.source_updated_at is not None
        and last_changed_at is not None
        and row.source_updated_at > last_changed_at
    ):
        return  # the equipment changed again after the version this deletion is about
    values: dict[str, Any] = {
        "deleted_at": _time(document.get("detected_at")),
        "deleted_version_at": last_changed_at,
        "last_event_id": event.id,
        "updated_at": utcnow(),
    }
    if row is None:
        # Deleted before its change arrived: keep the mark, so the late change is recognised as stale.
        values["document"] = document
    _write(conn, row is not None, kind, event.subject, values)
    announce(conn, _update(kind, event, deleted=True), event)


def _of_record(source: str | None) -> bool:
    # Stored sources are producer paths, "/<system>/<record type>" (CloudEvent.producer).
    return source is not None and source.lstrip("/").partition("/")[0] in RECORD_SYSTEMS


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class EquipmentFilter:
    """What a listing of one kind of equipment is limited to; bbox: (min_lon, min_lat, max_lon, max_lat)."""

    feeder_id: str | None = None
    substation_id: str | None = None
    status: str | None = None
    bbox: tuple[float, float, float, float] | None = None


def list_equipment(
    conn: Connection, kind: str, where: EquipmentFilter, *, limit: int, after: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Live equipment of a kind in id order after an id; returns the page and the last id if more follow."""
    table = grid_equipment
    query = sa.select(table.c.equipment_id, table.c.document).where(
        table.c.kind == kind, table.c.deleted_at.is_(None)
    )
    if where.feeder_id is not None:
        query = query.where(table.c.feeder_id == where.feeder_id)
    if where.substation_id is not None:
        query = query.where(table.c.substation_id == where.substation_id)
    if where.status is not None:
        query = query.where(table.c.status == where.status)
    if where.bbox is not None:
        min_lon, min_lat, max_lon, max_lat = where.bbox
        query = query.where(table.c.lon.between(min_lon, max_lon), table.c.lat.between(min_lat, max_lat))
        cells = cells_covering(min_lon, min_lat, max_lon, max_lat)
        if cells is not None:
            query = query.where(table.c.cell.in_(cells))
    if after is not None:
        query = query.where(table.c.equipment_id > after)
    rows = conn.execute(query.order_by(table.c.equipment_id).limit(limit + 1)).all()
    page = [dict(row.document) for row in rows[:limit]]
    return page, (rows[limit - 1].equipment_id if len(rows) > limit else None)


def get_equipment(conn: Connection, kind: str, equipment_id: str) -> dict[str, Any] | None:
    """The live document of one piece of equipment, or None (unknown or deleted)."""
    table = grid_equipment
    value = conn.execute(
        sa.select(table.c.document).where(
            table.c.kind == kind, table.c.equipment_id == equipment_id, table.c.deleted_at.is_(None)
        )
    ).scalar()
    return dict(value) if value is not None else None
