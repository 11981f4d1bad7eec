"""Grid equipment API: substations, feeders and distribution transformers from PMS, filtered and paged.

Items are the canonical documents, fields without a value left out, in equipment-id order. `next_cursor`
is opaque: pass it back as `cursor` for the next page; it is null on the last page. A bounding box is
`min_lon,min_lat,max_lon,max_lat` (WGS84).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from canonical_model.grid import DistributionTransformer, EquipmentStatus, Feeder, Substation
from workflow.grid import EquipmentFilter, get_equipment, list_equipment

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

Item = TypeVar("Item", bound=BaseModel)


class Page(BaseModel, Generic[Item]):
    """One page of equipment."""

    items: list[Item]
    limit: int = Field(description="the page size asked for")
    next_cursor: str | None = Field(description="cursor of the next page; null on the last page")


def encode_cursor(kind: str, equipment_id: str) -> str:
    """An opaque cursor for the position after a piece of equipment."""
    raw = json.dumps([kind, equipment_id], ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(kind: str, cursor: str) -> str:
    """The equipment id a cursor of this kind stands for; HTTP 400 if this API did not make it."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_kind, equipment_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise HTTPException(400, f"cursor {cursor!r} is not a cursor this API returned") from exc
    if cursor_kind != kind or not isinstance(equipment_id, str):
        raise HTTPException(400, f"cursor {cursor!r} is not a cursor of this listing")
    return equipment_id


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """min_lon,min_lat,max_lon,max_lat as numbers; HTTP 422 naming the problem otherwise."""
    parts = text.split(",")
    try:
        if len(parts) != 4:
            raise ValueError
        min_lon, min_lat, max_lon, max_lat = (float(part) for part in parts)
    except ValueError:
        raise HTTPException(
            422, f"bbox {text!r} must be four numbers: min_lon,min_lat,max_lon,max_lat"
        ) from None
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise HTTPException(
            422, f"bbox {text!r} must have min <= max, longitudes within ±180 and latitudes within ±90"
        )
    return min_lon, min_lat, max_lon, max_lat


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size (at most {MAX_LIMIT})")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
Status = Annotated[EquipmentStatus | None, Query(description="operating status")]
Bbox = Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat (WGS84)")]


def grid_router(engine: Engine) -> APIRouter:
    """The /v1/grid routes over the grid projection in the given database."""
    router = APIRouter(prefix="/v1/grid", tags=["grid"])

    def page(kind: str, where: EquipmentFilter, limit: int, cursor: str | None) -> dict[str, Any]:
        after = decode_cursor(kind, cursor) if cursor else None
        with engine.connect() as conn:
            items, last = list_equipment(conn, kind, where, limit=limit, after=after)
        return {"items": items, "limit": limit, "next_cursor": encode_cursor(kind, last) if last else None}

    def one(kind: str, equipment_id: str, label: str) -> dict[str, Any]:
        with engine.connect() as conn:
            document = get_equipment(conn, kind, equipment_id)
        if document is None:
            raise HTTPException(404, f"{label} {equipment_id} is not known")
        return document

    @router.get(
        "/substations",
        responses={200: {"model": Page[Substation]}},
        summary="Substations, optionally within a bounding box",
    )
    def list_substations(
        bbox: Bbox = None, status: Status = None, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> dict[str, Any]:
        where = EquipmentFilter(status=_value(status), bbox=parse_bbox(bbox) if bbox else None)
        return page("substation", where, limit, cursor)

    @router.get(
        "/feeders",
        responses={200: {"model": Page[Feeder]}},
        summary="Feeders, optionally of one substation",
    )
    def list_feeders(
        substation: Annotated[str | None, Query(description="source substation id")] = None,
        status: Status = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        return page("feeder", EquipmentFilter(substation_id=substation, status=_value(status)), limit, cursor)

    @router.get(
        "/transformers",
        responses={200: {"model": Page[DistributionTransformer]}},
        summary="Distribution transformers by feeder, substation or bounding box",
    )
    def list_transformers(
        feeder: Annotated[str | None, Query(description="feeder id")] = None,
        substation: Annotated[str | None, Query(description="substation id")] = None,
        bbox: Bbox = None,
        status: Status = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        where = EquipmentFilter(
            feeder_id=feeder,
            substation_id=substation,
            status=_value(status),
            bbox=parse_bbox(bbox) if bbox else None,
        )
        return page("transformer", where, limit, cursor)

    def single(path: str, kind: str, model: type[BaseModel], label: str) -> None:
        def read(equipment_id: str) -> dict[str, Any]:
            return one(kind, equipment_id, label)

        router.add_api_route(
            f"/{path}/{{equipment_id}}",
            read,
            methods=["GET"],
            responses={200: {"model": model}},
            summary=f"One {label}",
            name=f"read_{kind}",
        )

    single("substations", "substation", Substation, "substation")
    single("feeders", "feeder", Feeder, "feeder")
    single("transformers", "transformer", DistributionTransformer, "distribution transformer")
    return router


def _value(status: EquipmentStatus | None) -> str | None:
    return status.value if status else None
