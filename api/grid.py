"""Grid equipment API: substations, feeders and distribution transformers from PMS, filtered and paged,
the capacity still open on them (可开放容量) for customers choosing a site, and the demand factor and daily
profile of each load type with its own (负荷类型) for load forecasts.

Items are the canonical documents, fields without a value left out, in equipment-id order; a substation
also carries its capacity-to-load ratio (容载比). `next_cursor`
is opaque: pass it back as `cursor` for the next page; it is null on the last page. A bounding box is
`min_lon,min_lat,max_lon,max_lat` (WGS84).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.context import Context, Database, FeasibilityRules, configured_feasibility_rules
from api.listing import LIST_PROBLEMS, CursorParam, Page, check_sort, limit_param, page, sort_param
from api.listing import decode_cursor as decode_cursor_of
from api.listing import encode_cursor as encode_cursor_of
from api.problems import problem, problem_responses
from canonical_model.application import LoadType
from canonical_model.grid import DistributionTransformer, EquipmentStatus, Feeder, Substation
from feasibility.config import POINTS_PER_DAY, FeasibilityConfig, Rules
from feasibility.grid_cache import GridCache
from feasibility.open_capacity import (
    KIND_ORDER,
    CapacityToLoad,
    DaytimeMinima,
    EquipmentKind,
    OpenCapacity,
    open_capacity,
    published,
    substation_ratios,
)
from ground import clock
from store.database import Connection, Engine
from workflow.grid import EquipmentFilter, get_equipment, list_equipment

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

SORTS = ("equipment_id",)  # the projection pages by equipment id
OPEN_CAPACITY_SORTS = ("kind,equipment_id",)  # substations, feeders, transformers, each in id order
SHANGHAI = ZoneInfo("Asia/Shanghai")


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
Province = Annotated[
    str | None, Query(max_length=64, description="rule set of limits and thresholds; defaults when left out")
]


def _rules_of(config: FeasibilityConfig, province: str | None) -> Rules:
    if province is not None and province not in config.provinces:
        raise problem(
            "unknown-province",
            f"province {province[:64]!r} has no rule set; known: {sorted(config.provinces)}",
        )
    return config.rules_for(province=province)


def _today() -> Any:
    return clock.now().astimezone(SHANGHAI).date()


class SubstationView(Substation):
    """A substation with its capacity-to-load ratio (容载比) as of the request."""

    capacity_to_load: CapacityToLoad | None = Field(
        default=None, description="null when rules.yaml has no open_capacity section"
    )


class SubstationPage(Page[SubstationView]):
    """One page of substations."""


class OpenCapacityPage(Page[OpenCapacity]):
    """One page of open capacity: substations, then feeders, then transformers, each in id order."""


class LoadTypeProfile(BaseModel):
    """A load type's demand factor and time-of-day profile, as the feasibility rules hold them."""

    load_type: LoadType = Field(description="load type (负荷类型)")
    demand_factor: float = Field(
        gt=0, le=1, description="share of the requested kVA counted on the grid (需要系数)"
    )
    profile: list[float] = Field(
        min_length=POINTS_PER_DAY,
        max_length=POINTS_PER_DAY,
        description="96 points, one per 15 minutes from 00:00 local time, normalised to a peak of 1.0",
    )


class LoadTypeProfiles(BaseModel):
    """The load types of a rule set that have a factor and profile of their own."""

    province: str = Field(description="the rule set the figures are from; 'default' for the defaults")
    interval_minutes: int = Field(default=24 * 60 // POINTS_PER_DAY, description="minutes per point")
    items: list[LoadTypeProfile] = Field(
        description="general load is not listed: its factor is its industry's or the residential one"
    )


class FeederPage(Page[Feeder]):
    """One page of feeders."""


class TransformerPage(Page[DistributionTransformer]):
    """One page of distribution transformers."""


class OpenCapacityReader:
    """Open capacity as GET /v1/grid/open-capacity answers it, for that route and the dashboard's grid page.

    It keeps the grid cache and the parsed daytime minima between calls; config gives the limits and
    thresholds (default: feasibility/rules.yaml of the configuration folder).
    """

    def __init__(self, config: FeasibilityConfig | None = None) -> None:
        self._config = config
        self.grid = GridCache()
        self._minima = DaytimeMinima()

    def read(
        self,
        conn: Connection,
        kinds: Collection[EquipmentKind],
        *,
        bbox: tuple[float, float, float, float] | None,
        voltage_kv: float | None,
        province: str | None,
        after: tuple[int, str] | None,
        limit: int,
    ) -> tuple[list[OpenCapacity], tuple[EquipmentKind, str] | None]:
        """A page of in-service public equipment with its open capacity now, and the key of its last item
        when more follow (None on the last page); 422 unknown-province for a province without rules."""
        feasibility = self._config or configured_feasibility_rules()
        rules = _rules_of(feasibility, province)
        area = self.grid.area(conn)
        items = published(area, kinds, bbox=bbox, voltage_kv=voltage_kv, after=after, limit=limit)
        chosen = items[:limit]
        open_rules = (
            feasibility.open_capacity.rules_for(rules.province) if feasibility.open_capacity else None
        )
        answers = open_capacity(conn, area, chosen, rules, open_rules, _today(), self._minima)
        last = (chosen[-1][0], chosen[-1][1].equipment_id) if len(items) > limit else None
        return answers, last


def open_capacity_cursor(last: tuple[EquipmentKind, str] | None) -> str | None:
    """The opaque cursor of the open-capacity page after the key `last`; None on the last page."""
    return encode_cursor_of(OPEN_CAPACITY, [last[0].value, last[1]]) if last else None


router = APIRouter(prefix="/v1/grid", tags=["grid"])


async def open_capacity_reader(context: Context) -> OpenCapacityReader:
    """The open capacity reader of the app (a dependency)."""
    if context.open_capacity is None:
        raise LookupError("the API context holds no open capacity reader")
    return context.open_capacity


Capacity = Annotated[OpenCapacityReader, Depends(open_capacity_reader)]


def with_ratios(
    conn: Connection,
    documents: list[dict[str, Any]],
    feasibility: FeasibilityConfig,
    grid: GridCache,
    province: str | None,
) -> list[dict[str, Any]]:
    """Substation documents with their capacity-to-load ratio; 422 unknown-province for a province
    without rules."""
    rules = _rules_of(feasibility, province)
    if feasibility.open_capacity is None:
        return documents
    ratios = substation_ratios(
        conn,
        grid.area(conn),
        [str(document["substation_id"]) for document in documents],
        rules,
        feasibility.open_capacity.rules_for(rules.province),
        _today(),
    )
    return [
        {**document, "capacity_to_load": ratios[str(document["substation_id"])].model_dump(mode="json")}
        for document in documents
    ]


def listed(
    engine: Engine, kind: str, where: EquipmentFilter, limit: int, cursor: str | None, sort: str | None
) -> dict[str, Any]:
    """A page of equipment of one kind."""
    check_sort(sort, SORTS)
    after = decode_cursor(kind, cursor) if cursor else None
    with engine.connect() as conn:
        items, last = list_equipment(conn, kind, where, limit=limit, after=after)
    return page(items, limit, encode_cursor(kind, last) if last else None)


def one(engine: Engine, kind: str, equipment_id: str, label: str) -> dict[str, Any]:
    """One piece of equipment; 404 equipment-not-found if it is not known."""
    with engine.connect() as conn:
        document = get_equipment(conn, kind, equipment_id)
    if document is None:
        raise problem("equipment-not-found", f"{label} {equipment_id} is not known")
    return document


@router.get(
    "/substations",
    responses={200: {"model": SubstationPage}, **LIST_PROBLEMS, **problem_responses("unknown-province")},
    summary="Substations, optionally within a bounding box",
)
def list_substations(
    engine: Database,
    capacity: Capacity,
    feasibility: FeasibilityRules,
    bbox: Bbox = None,
    status: Status = None,
    province: Province = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    sort: Sort = None,
) -> dict[str, Any]:
    """Substations with their capacity-to-load ratio: main-transformer rating / load basis (kW)."""
    where = EquipmentFilter(status=_value(status), bbox=parse_bbox(bbox) if bbox else None)
    found = listed(engine, "substation", where, limit, cursor, sort)
    with engine.connect() as conn:
        return {**found, "items": with_ratios(conn, found["items"], feasibility, capacity.grid, province)}


@router.get(
    "/substations/{equipment_id}",
    responses={
        200: {"model": SubstationView},
        **problem_responses("equipment-not-found", "unknown-province"),
    },
    summary="One substation, with its capacity-to-load ratio",
    name="read_substation",
)
def read_substation(
    equipment_id: str,
    engine: Database,
    capacity: Capacity,
    feasibility: FeasibilityRules,
    province: Province = None,
) -> dict[str, Any]:
    """The substation and its capacity-to-load ratio against the planning range of its province."""
    document = one(engine, "substation", equipment_id, "substation")
    with engine.connect() as conn:
        return with_ratios(conn, [document], feasibility, capacity.grid, province)[0]


@router.get(
    "/open-capacity",
    responses={
        200: {"model": OpenCapacityPage},
        **LIST_PROBLEMS,
        **problem_responses("unknown-province"),
    },
    summary="Capacity open for new load and for distributed PV, per substation, feeder and transformer",
)
def list_open_capacity(
    engine: Database,
    capacity: Capacity,
    bbox: Bbox = None,
    voltage_kv: Annotated[float | None, Query(gt=0, le=1000, description="rated voltage, kV")] = None,
    kind: Annotated[EquipmentKind | None, Query(description="one kind of equipment")] = None,
    province: Province = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    sort: Annotated[str | None, sort_param(OPEN_CAPACITY_SORTS)] = None,
) -> dict[str, Any]:
    """In-service public equipment with the capacity still open on it, computed at request time.

    Kept current: each answer reads the grid cache at the database's grid revision, the load basis
    from the load projection and the reservations of open applications as they are now, so any grid,
    load or reservation event already stored shows in the next answer. Figures whose inputs are
    missing, stale or incomplete are `unknown` with the reasons, never estimated.
    """
    check_sort(sort, OPEN_CAPACITY_SORTS)
    after = open_capacity_after(cursor) if cursor else None
    kinds = (kind,) if kind is not None else KIND_ORDER
    with engine.connect() as conn:
        answers, last = capacity.read(
            conn,
            kinds,
            bbox=parse_bbox(bbox) if bbox else None,
            voltage_kv=voltage_kv,
            province=province,
            after=after,
            limit=limit,
        )
    return page([answer.model_dump(mode="json") for answer in answers], limit, open_capacity_cursor(last))


@router.get(
    "/load-types",
    response_model=LoadTypeProfiles,
    responses=problem_responses("unknown-province"),
    summary="Demand factor and 96-point daily profile of each load type, for load forecasts",
)
def list_load_types(feasibility: FeasibilityRules, province: Province = None) -> LoadTypeProfiles:
    """Charging piles and heat pumps: each load type the rules give a factor and profile of its own."""
    rules = _rules_of(feasibility, province)
    return LoadTypeProfiles(
        province=rules.province,
        items=[
            LoadTypeProfile(load_type=kind, demand_factor=own.demand_factor, profile=list(own.profile))
            for kind, own in rules.load_types.items()
        ],
    )


@router.get(
    "/feeders",
    responses={200: {"model": FeederPage}, **LIST_PROBLEMS},
    summary="Feeders, optionally of one substation",
)
def list_feeders(
    engine: Database,
    substation: Annotated[str | None, Query(max_length=64, description="source substation id")] = None,
    status: Status = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    sort: Sort = None,
) -> dict[str, Any]:
    where = EquipmentFilter(substation_id=substation, status=_value(status))
    return listed(engine, "feeder", where, limit, cursor, sort)


@router.get(
    "/transformers",
    responses={200: {"model": TransformerPage}, **LIST_PROBLEMS},
    summary="Distribution transformers by feeder, substation or bounding box",
)
def list_transformers(
    engine: Database,
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
    return listed(engine, "transformer", where, limit, cursor, sort)


@router.get(
    "/feeders/{equipment_id}",
    responses={200: {"model": Feeder}, **problem_responses("equipment-not-found")},
    summary="One feeder",
)
def read_feeder(equipment_id: str, engine: Database) -> dict[str, Any]:
    return one(engine, "feeder", equipment_id, "feeder")


@router.get(
    "/transformers/{equipment_id}",
    responses={200: {"model": DistributionTransformer}, **problem_responses("equipment-not-found")},
    summary="One distribution transformer",
)
def read_transformer(equipment_id: str, engine: Database) -> dict[str, Any]:
    return one(engine, "transformer", equipment_id, "distribution transformer")


OPEN_CAPACITY = "grid/open-capacity"


def open_capacity_after(cursor: str) -> tuple[int, str]:
    """The (kind position, equipment id) an open-capacity cursor stands for; 400 invalid-cursor if not one."""
    kind, equipment_id = decode_cursor_of(OPEN_CAPACITY, cursor, 2)
    if kind not in {k.value for k in KIND_ORDER} or not isinstance(equipment_id, str):
        raise problem("invalid-cursor", f"cursor {cursor[:80]!r} is not a cursor of this listing")
    return KIND_ORDER.index(EquipmentKind(kind)), equipment_id


def _value(status: EquipmentStatus | None) -> str | None:
    return status.value if status else None
