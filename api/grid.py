"""Grid equipment API: substations, feeders and distribution transformers from PMS, filtered and paged.

Items are the canonical documents, fields without a value left out, in equipment-id order. `next_cursor`
is opaque: pass it back as `cursor` for the next page; it is null on the last page. A bounding box is
`min_lon,min_lat,max_lon,max_lat` (WGS84).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from api.listing import LIST_PROBLEMS, CursorParam, Page, check_sort, limit_param, page, sort_param
from api.listing import decode_cursor as decode_cursor_of
from api.listing import encode_cursor as encode_cursor_of
from api.problems import problem, problem_responses
from canonical_model.grid import DistributionTransformer, EquipmentStatus, Feeder, Substation
from workflow.grid import EquipmentFilter, get_equipment, list_equipment

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

SORTS = ("equipment_id",)  # the projection pages by equipment id


def encode_cursor(kind: str, equipment_id: str) -> str:
    """An opaque cursor for the position after a piece of equipment."""
    return encode_cursor_of(f"grid/{kind}", [equipment_id])


def decode_cursor(kind: str, cursor: str) -> str:
    """The equipment id a cursor of this kind stands for; 400 invalid-cursor if not made by this listing."""
    (equipment_id,) = decode_cursor_of(f"grid/{kind}", cursor, 1)
    if not isinstance(equipment_id, str):
        raise problem("invalid-cursor", f"cursor {cursor[:80]!r} is not a cursor of this listing")
    return equipment_id


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """min_lon,min_lat,max_lon,max_lat as numbers; 422 invalid-parameter naming the problem otherwise."""
    shown = text[:100]
    parts = text.split(",")
    try:
        if len(parts) != 4:
            raise ValueError
        min_lon, min_lat, max_lon, max_lat = (float(part) for part in parts)
    except ValueError:
        raise problem(
            "invalid-parameter", f"bbox {shown!r} must be four numbers: min_lon,min_lat,max_lon,max_lat"
        ) from None
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise problem(
            "invalid-parameter",
            f"bbox {shown!r} must have min <= max, longitudes within ±180 and latitudes within ±90",
        )
    return min_lon, min_lat, max_lon, max_lat


Limit = Annotated[int, limit_param(DEFAULT_LIMIT, MAX_LIMIT)]
Sort = Annotated[str | None, sort_param(SORTS)]
Status = Annotated[EquipmentStatus | None, Query(description="operating status")]
Bbox = Annotated[str | None, Query(max_length=200, description="min_lon,min_lat,max_lon,max_lat (WGS84)")]


class SubstationPage(Page[Substation]):
    """One page of substations."""


class FeederPage(Page[Feeder]):
    """One page of feeders."""


class TransformerPage(Page[DistributionTransformer]):
    """One page of distribution transformers."""


def grid_router(engine: Engine) -> APIRouter:
    """The /v1/grid routes over the grid projection in the given database."""
    router = APIRouter(prefix="/v1/grid", tags=["grid"])

    def listed(
        kind: str, where: EquipmentFilter, limit: int, cursor: str | None, sort: str | None
    ) -> dict[str, Any]:
        check_sort(sort, SORTS)
        after = decode_cursor(kind, cursor) if cursor else None
        with engine.connect() as conn:
            items, last = list_equipment(conn, kind, where, limit=limit, after=after)
        return page(items, limit, encode_cursor(kind, last) if last else None)

    def one(kind: str, equipment_id: str, label: str) -> dict[str, Any]:
        with engine.connect() as conn:
            document = get_equipment(conn, kind, equipment_id)
        if document is None:
            raise problem("equipment-not-found", f"{label} {equipment_id} is not known")
        return document

    @router.get(
        "/substations",
        responses={200: {"model": SubstationPage}, **LIST_PROBLEMS},
        summary="Substations, optionally within a bounding box",
    )
    def list_substations(
        bbox: Bbox = None,
        status: Status = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: CursorParam = None,
        sort: Sort = None,
    ) -> dict[str, Any]:
        where = EquipmentFilter(status=_value(status), bbox=parse_bbox(bbox) if bbox else None)
        return listed("substation", where, limit, cursor, sort)

    @router.get(
        "/feeders",
        responses={200: {"model": FeederPage}, **LIST_PROBLEMS},
        summary="Feeders, optionally of one substation",
    )
    def list_feeders(
        substation: Annotated[str | None, Query(max_length=64, description="source substation id")] = None,
        status: Status = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: CursorParam = None,
        sort: Sort = None,
    ) -> dict[str, Any]:
        where = EquipmentFilter(substation_id=substation, status=_value(status))
        return listed("feeder", where, limit, cursor, sort)

    @router.get(
        "/transformers",
        responses={200: {"model": TransformerPage}, **LIST_PROBLEMS},
        summary="Distribution transformers by feeder, substation or bounding box",
    )
    def list_transformers(
        feeder: Annotated[str | None, Query(max_length=64, description="feeder id")] = None,
        substation: Annotated[str | None, Query(max_length=64, description="substation id")] = None,
        bbox: Bbox = None,
        status: Status = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: CursorParam = None,
        sort: Sort = None,
    ) -> dict[str, Any]:
        where = EquipmentFilter(
            feeder_id=feeder,
            substation_id=substation,
            status=_value(status),
            bbox=parse_bbox(bbox) if bbox else None,
        )
        return listed("transformer", where, limit, cursor, sort)

    def single(path: str, kind: str, model: type[BaseModel], label: str) -> None:
        def read(equipment_id: str) -> dict[str, Any]:
            return one(kind, equipment_id, label)

        router.add_api_route(
            f"/{path}/{{equipment_id}}",
            read,
            methods=["GET"],
            responses={200: {"model": model}, **problem_responses("equipment-not-found")},
            summary=f"One {label}",
            name=f"read_{kind}",
        )

    single("substations", "substation", Substation, "substation")
    single("feeders", "feeder", Feeder, "feeder")
    single("transformers", "transformer", DistributionTransformer, "distribution transformer")
    return router


def _value(status: EquipmentStatus | None) -> str | None:
    return status.value if status else None
