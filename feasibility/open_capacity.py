"""Published open capacity (可开放容量) per feeder, distribution transformer and substation.

Three figures per piece of equipment, all read at the moment of asking:
- load: what the feasibility engine's own limits allow (equipment_headroom: load rate, N-1 by supply-area
  class), less the load basis and the reservations held x simultaneity, never below 0, with the limit
  that binds named, and the least such figure along the chain transformer - feeder - substation (what a
  new load at the point can really take). Missing, stale or incomplete inputs give `unknown` and the
  engine's reason;
- PV hosting (分布式光伏可开放容量, DL/T 2041): a transformer area takes PV up to a share of the
  transformer's rating; a feeder or substation up to its minimum daytime load + a share of its rating (the
  reverse-flow rule). The grid data carries no connected PV, so it counts 0 and says so. Graded green,
  yellow or red on the reverse load rate (PV - minimum load) / rating;
- for substations, the capacity-to-load ratio (容载比): main-transformer rating / load basis, against the
  planning range of the province's growth class.
"""

from __future__ import annotations

import bisect
import weakref
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from canonical_model.common import GeoPoint
from canonical_model.feasibility import RuleResult
from feasibility.config import OpenCapacityRules, Rules
from feasibility.engine import (
    IN_SERVICE,
    INSUFFICIENT,
    SUBSTATION,
    TRANSFORMER,
    Equipment,
    GridArea,
    LoadReading,
    equipment_headroom,
)
from feasibility.inputs import TOTAL_PHASE, read_loads, read_reserved
from ground import clock
from store.loads import load_profiles

# The engine's rules that cap a load rate; the smallest cap among them is the one that binds.
LIMIT_RULES = frozenset(
    {
        "transformer_load_rate",
        "feeder_load_rate",
        "feeder_n_minus_1",
        "main_transformer_load_rate",
        "main_transformer_n_minus_1",
    }
)
# Engine conditions worth passing on with a figure: planning notes on the equipment itself.
_NOTE_CODES = frozenset({"existing_grid_condition", "confirm_n1", "n1_recommended", "existing_overload"})
NO_PV_DATA = "the grid data carries no connected PV: counted as 0 kW"


class EquipmentKind(StrEnum):
    """The equipment open capacity is published for, named as in the /v1/grid paths."""

    SUBSTATION = "substation"
    FEEDER = "feeder"
    TRANSFORMER = "transformer"


KIND_ORDER = tuple(EquipmentKind)


class Availability(StrEnum):
    """Whether a figure could be computed from the data."""

    KNOWN = "known"
    UNKNOWN = "unknown"
    NOT_APPLICABLE = "not_applicable"


class Grade(StrEnum):
    """PV hosting grade (DL/T 2041 practice)."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


class RatioPosition(StrEnum):
    """Where a capacity-to-load ratio stands against its planning range."""

    BELOW = "below"
    WITHIN = "within"
    ABOVE = "above"


class BindingLimit(BaseModel):
    """The engine's limit that leaves the least room on the equipment."""

    rule: str = Field(description="engine rule, e.g. feeder_n_minus_1", examples=["feeder_n_minus_1"])
    max_load_rate: float = Field(description="the largest load rate the rule allows", examples=[0.5])
    why: str = Field(description="how the limit was set", examples=["N-1 limit k/(k+1) with k=1"])
    policy: str = Field(
        description="required, recommended or not_required (area class)", examples=["required"]
    )


class LoadCapacity(BaseModel):
    """Capacity open for new load (可开放容量) on one piece of equipment."""

    status: Availability = Field(description="known, or unknown with the reasons")
    open_kva: float | None = Field(description="capacity still open for new load, kVA, never negative")
    capacity_kva: float | None = Field(
        description="rating: transformer / feeder sqrt(3)UI / main transformers"
    )
    load_basis_kva: float | None = Field(description="highest good load of the basis window, kVA")
    reserved_kva: float = Field(description="kVA held by open applications on the equipment")
    counted_reserved_kva: float = Field(description="reserved_kva x the configured simultaneity")
    load_rate: float | None = Field(description="(load basis + counted reservations) / capacity")
    binding_limit: BindingLimit | None = Field(description="the limit that binds")
    reasons: list[str] = Field(default_factory=list, description="why the figure is unknown")
    notes: list[str] = Field(default_factory=list, description="planning notes on the equipment")
    open_kva_through_chain: float | None = Field(
        default=None,
        description="what new load here can take counting the feeder and substation above: the least "
        "open_kva along the chain; null when any of them is unknown",
    )
    chain_limited_by: str | None = Field(
        default=None, description="the equipment that sets open_kva_through_chain"
    )


class PvHosting(BaseModel):
    """Distributed PV still connectable (分布式光伏可开放容量) on one piece of equipment."""

    status: Availability = Field(description="known, or unknown with the reasons")
    rule: str = Field(description="transformer_area_share or reverse_flow", examples=["reverse_flow"])
    ceiling_kw: float | None = Field(description="PV the rule allows in all, kW")
    connected_kw: float = Field(description="PV already connected, kW")
    connected_note: str | None = Field(description="where connected_kw comes from when not from data")
    min_load_kw: float | None = Field(description="lowest good daytime load of the window, kW")
    open_kw: float | None = Field(description="PV still connectable, kW, never negative")
    reverse_load_rate: float | None = Field(description="(PV - minimum load) / rating (DL/T 2041)")
    grade: Grade | None = Field(description="green / yellow / red; null when unknown")
    reasons: list[str] = Field(default_factory=list, description="why figures (open_kw, grade) are unknown")


class CapacityToLoad(BaseModel):
    """A substation's capacity-to-load ratio (容载比) against the planning range."""

    status: Availability = Field(description="known; unknown with reasons; not_applicable outside 35-110 kV")
    main_transformer_kva: float | None = Field(description="total rating of its in-service main transformers")
    load_basis_kw: float | None = Field(description="sum of the main transformers' load bases, kW")
    ratio: float | None = Field(description="main_transformer_kva / load_basis_kw")
    growth: str = Field(description="the province's load-growth class", examples=["moderate"])
    range_low: float = Field(description="planning range, low end", examples=[1.6])
    range_high: float = Field(description="planning range, high end", examples=[1.9])
    position: RatioPosition | None = Field(description="below, within or above the range")
    reasons: list[str] = Field(default_factory=list, description="why the ratio is unknown")


class OpenCapacity(BaseModel):
    """Open capacity of one piece of equipment, as of the request."""

    kind: EquipmentKind
    equipment_id: str
    name: str | None = None
    voltage_kv: float | None = None
    location: GeoPoint | None = Field(default=None, description="own location, else its substation's")
    substation_id: str | None = None
    feeder_id: str | None = None
    area_class: str | None = Field(
        default=None, description="supply-area class A+ ... E, as the engine reads it"
    )
    province: str = Field(description="rule set applied", examples=["default"])
    load: LoadCapacity
    pv: PvHosting | None = Field(description="null when rules.yaml has no open_capacity section")
    capacity_to_load: CapacityToLoad | None = Field(default=None, description="substations only")


@dataclass(frozen=True)
class MinLoad:
    """The lowest good daytime load of the window, or why there is none."""

    kw: float | None
    problem: str | None = None


def _point(area: GridArea, item: Equipment) -> tuple[float, float] | None:
    if item.lon is not None and item.lat is not None:
        return item.lon, item.lat
    station = area.substations.get(area.substation_of(item) or "")
    if station is not None and station.lon is not None and station.lat is not None:
        return station.lon, station.lat
    return None


def location_of(area: GridArea, item: Equipment) -> GeoPoint | None:
    """Where to show the equipment: its own position, else its substation's (feeders often have none)."""
    point = _point(area, item)
    return GeoPoint(lon=point[0], lat=point[1]) if point is not None else None


# Ids of each kind in order, per grid revision (a GridArea is rebuilt on every revision).
_ORDER: weakref.WeakKeyDictionary[GridArea, dict[EquipmentKind, list[str]]] = weakref.WeakKeyDictionary()


def _ordered(area: GridArea) -> dict[EquipmentKind, list[str]]:
    found = _ORDER.get(area)
    if found is None:
        found = {kind: sorted(_table(area, kind)) for kind in KIND_ORDER}
        _ORDER[area] = found
    return found


def _table(area: GridArea, kind: EquipmentKind) -> Mapping[str, Equipment]:
    if kind is EquipmentKind.SUBSTATION:
        return area.substations
    return area.feeders if kind is EquipmentKind.FEEDER else area.transformers


def published(
    area: GridArea,
    kinds: Collection[EquipmentKind],
    *,
    bbox: tuple[float, float, float, float] | None = None,
    voltage_kv: float | None = None,
    after: tuple[int, str] | None = None,
    limit: int | None = None,
) -> list[tuple[EquipmentKind, Equipment]]:
    """In-service public equipment of the kinds, filtered, in (kind, id) order after the key `after`:
    at most limit + 1 items, so the caller knows whether more follow."""
    found: list[tuple[EquipmentKind, Equipment]] = []
    order = _ordered(area)
    for position, kind in enumerate(KIND_ORDER):
        if kind not in kinds or (after is not None and position < after[0]):
            continue
        ids = order[kind]
        start = bisect.bisect_right(ids, after[1]) if after is not None and position == after[0] else 0
        table = _table(area, kind)
        for equipment_id in ids[start:]:
            item = table[equipment_id]
            if item.status != IN_SERVICE or not item.public:
                continue
            if voltage_kv is not None and item.voltage_kv != voltage_kv:
                continue
            if bbox is not None:
                point = _point(area, item)
                if point is None or not (bbox[0] <= point[0] <= bbox[2] and bbox[1] <= point[1] <= bbox[3]):
                    continue
            found.append((kind, item))
            if limit is not None and len(found) > limit:
                return found
    return found


def _own_ids(area: GridArea, item: Equipment) -> set[str]:
    """The equipment whose data is the item's own: a substation's is its main transformers'."""
    if item.kind == SUBSTATION:
        return {item.equipment_id} | {
            unit.equipment_id for unit in area.main_transformers.get(item.equipment_id, ())
        }
    return {item.equipment_id}


def load_capacity(
    rules: Rules,
    area: GridArea,
    item: Equipment,
    loads: Mapping[str, LoadReading],
    reserved: Mapping[str, float],
) -> LoadCapacity:
    """The engine's limits on the equipment with nothing added: open kVA and the limit that binds."""
    figures = equipment_headroom(rules, area, item, loads, reserved)
    own = _own_ids(area, item)
    reasons = [
        condition.detail
        for condition in figures.conditions
        if condition.code == INSUFFICIENT and condition.equipment_id in own
    ]
    notes = [c.detail for c in figures.conditions if c.code in _NOTE_CODES and c.equipment_id in own]
    limits = [
        check
        for check in figures.checks
        if check.subject in own
        and check.rule in LIMIT_RULES
        and check.threshold.get("max_load_rate") is not None
        and check.result is not RuleResult.INSUFFICIENT_DATA
    ]
    binding = min(limits, key=lambda check: float(check.threshold["max_load_rate"]), default=None)
    capacity, peak, headroom = figures.capacity_kva, figures.peak_kva, figures.headroom_kva
    if headroom is None and not reasons:
        # No condition says why (a substation without units): the engine's check does.
        reasons += [
            check.detail
            for check in figures.checks
            if check.subject in own
            and check.result is RuleResult.INSUFFICIENT_DATA
            and check.rule in LIMIT_RULES
        ]
    known = headroom is not None and not reasons
    return LoadCapacity(
        status=Availability.KNOWN if known else Availability.UNKNOWN,
        open_kva=round(max(0.0, headroom), 1) if known and headroom is not None else None,
        capacity_kva=_r(capacity),
        load_basis_kva=_r(peak),
        reserved_kva=round(figures.reserved_kva, 3),
        counted_reserved_kva=round(figures.counted_reserved_kva, 3),
        load_rate=round((peak + figures.counted_reserved_kva) / capacity, 4)
        if peak is not None and capacity
        else None,
        binding_limit=BindingLimit(
            rule=binding.rule,
            max_load_rate=float(binding.threshold["max_load_rate"]),
            why=str(binding.threshold.get("why", "")),
            policy=str(binding.threshold.get("policy", "")),
        )
        if binding is not None
        else None,
        reasons=list(dict.fromkeys(reasons)) or ([] if known else ["load figures unknown"]),
        notes=list(dict.fromkeys(notes)),
    )


def pv_hosting(
    rules: OpenCapacityRules,
    area: GridArea,
    item: Equipment,
    capacity_kva: float | None,
    min_loads: Mapping[str, MinLoad],
) -> PvHosting:
    """PV still connectable on the equipment and its grade; capacity_kva is the engine's rating of it."""
    reasons: list[str] = []
    minimum = _min_load(area, item, min_loads, reasons)
    connected = 0.0
    if item.kind == TRANSFORMER:
        rule, share = "transformer_area_share", rules.pv_transformer_share
        ceiling = share * capacity_kva if capacity_kva else None
    else:
        rule, share = "reverse_flow", rules.pv_reverse_share
        ceiling = minimum + share * capacity_kva if capacity_kva and minimum is not None else None
    if not capacity_kva:
        reasons.append(f"rating of {item.equipment_id} unknown")
    reverse = (connected - minimum) / capacity_kva if capacity_kva and minimum is not None else None
    open_kw = max(0.0, ceiling - connected) if ceiling is not None else None
    grade: Grade | None = None
    if open_kw is not None and reverse is not None:
        if open_kw <= 0 or reverse > rules.yellow_max:
            grade = Grade.RED
        elif reverse > rules.green_max:
            grade = Grade.YELLOW
        else:
            grade = Grade.GREEN
    return PvHosting(
        status=Availability.KNOWN if open_kw is not None else Availability.UNKNOWN,
        rule=rule,
        ceiling_kw=_r(ceiling),
        connected_kw=connected,
        connected_note=NO_PV_DATA,
        min_load_kw=_r(minimum),
        open_kw=_r(open_kw),
        reverse_load_rate=round(reverse, 4) if reverse is not None else None,
        grade=grade,
        reasons=list(dict.fromkeys(reasons)),
    )


def _min_load(
    area: GridArea, item: Equipment, min_loads: Mapping[str, MinLoad], reasons: list[str]
) -> float | None:
    # A substation's minimum: the sum of its units' minima, at most the minimum of their sum (safe side).
    if item.kind == SUBSTATION:
        ids = [unit.equipment_id for unit in area.main_transformers.get(item.equipment_id, ())]
        if not ids:
            reasons.append(f"substation {item.equipment_id} has no main transformer in the grid data")
            return None
    else:
        ids = [item.equipment_id]
    total = 0.0
    for equipment_id in ids:
        found = min_loads.get(equipment_id) or MinLoad(None, "no load profile")
        if found.kw is None:
            reasons.append(f"minimum load of {equipment_id}: {found.problem}")
            return None
        total += found.kw
    return total


def capacity_to_load(
    rules: OpenCapacityRules, area: GridArea, substation_id: str, loads: Mapping[str, LoadReading]
) -> CapacityToLoad:
    """Main-transformer rating / the sum of the units' load bases (kW), against the planning range.

    The sum of each unit's own highest day is at least their coincident peak, so the ratio errs low.
    """
    low, high = rules.ratio_range
    base: dict[str, Any] = {"growth": rules.growth, "range_low": low, "range_high": high}
    station = area.substations.get(substation_id)
    voltage = station.voltage_kv if station is not None else None
    lowest, highest = rules.ratio_voltage_kv
    if voltage is not None and not lowest <= voltage <= highest:
        return CapacityToLoad(
            status=Availability.NOT_APPLICABLE,
            main_transformer_kva=None,
            load_basis_kw=None,
            ratio=None,
            position=None,
            reasons=[f"{voltage:g} kV: the planning ranges are for {lowest:g}-{highest:g} kV substations"],
            **base,
        )
    units = area.main_transformers.get(substation_id, [])
    reasons: list[str] = []
    if voltage is None:
        reasons.append(f"voltage of substation {substation_id} unknown")
    if not units:
        reasons.append(f"substation {substation_id} has no in-service main transformer in the grid data")
    rating = sum(unit.rated_kva or 0.0 for unit in units) if units else None
    if units and any(not unit.rated_kva for unit in units):
        reasons.append("a main transformer's rating is unknown")
    load: float | None = 0.0
    for unit in units:
        reading = loads.get(unit.equipment_id) or LoadReading(None, None, "no load profile")
        if reading.peak_kw is None or reading.problem is not None:
            reasons.append(f"load of {unit.equipment_id}: {reading.problem or 'no good load point'}")
            load = None
        elif load is not None:
            load += reading.peak_kw
    if not units:
        load = None
    if load is not None and load <= 0:
        reasons.append("the load basis is 0 kW: no ratio")
    if reasons or rating is None or not load:
        return CapacityToLoad(
            status=Availability.UNKNOWN,
            main_transformer_kva=_r(rating),
            load_basis_kw=_r(load),
            ratio=None,
            position=None,
            reasons=reasons,
            **base,
        )
    ratio = rating / load
    position = (
        RatioPosition.BELOW if ratio < low else RatioPosition.ABOVE if ratio > high else RatioPosition.WITHIN
    )
    return CapacityToLoad(
        status=Availability.KNOWN,
        main_transformer_kva=_r(rating),
        load_basis_kw=_r(load),
        ratio=round(ratio, 3),
        position=position,
        **base,
    )


class DaytimeMinima:
    """Minimum daytime load per equipment, each day's curve parsed once.

    A day's minimum is kept under the id of the event that wrote its profile: a corrected profile comes
    with a new event id and is read again, so the answer is never older than the load projection.
    """

    def __init__(self, max_days: int = 500_000) -> None:
        self._days: dict[tuple[str, str, tuple[int, int]], float | None] = {}
        self._max_days = max_days

    def read(
        self,
        conn: Connection,
        equipment_ids: Collection[str],
        rules: OpenCapacityRules,
        min_good_points: int,
        today: date,
    ) -> dict[str, MinLoad]:
        """The lowest good point of the PV hours over the complete days of the last rules.min_load_days."""
        if not equipment_ids:
            return {}
        since = today - timedelta(days=rules.min_load_days)
        table = load_profiles
        window = rules.daytime_points
        days = conn.execute(
            sa.select(table.c.equipment_id, table.c.event_id).where(
                table.c.equipment_id.in_(sorted(equipment_ids)),
                table.c.phase == TOTAL_PHASE,
                table.c.data_date > since,
                table.c.data_date <= today,
                table.c.good_points >= min_good_points,
            )
        ).all()
        unread = [row for row in days if (row.equipment_id, row.event_id, window) not in self._days]
        if unread:
            self._parse(conn, unread, window)
        lowest: dict[str, float] = {}
        for row in days:
            day = self._days.get((row.equipment_id, row.event_id, window))
            if day is not None:
                lowest[row.equipment_id] = min(day, lowest.get(row.equipment_id, day))
        first, last = window
        problem = (
            f"no complete day with good points {first}-{last} since {since.isoformat()} "
            f"(need {min_good_points} good points of 96)"
        )
        return {
            key: MinLoad(lowest[key]) if key in lowest else MinLoad(None, problem) for key in equipment_ids
        }

    def _parse(self, conn: Connection, unread: Sequence[Any], window: tuple[int, int]) -> None:
        if len(self._days) + len(unread) > self._max_days:
            self._days.clear()
        table = load_profiles
        first, last = window
        for chunk in range(0, len(unread), 500):
            part = unread[chunk : chunk + 500]
            rows = conn.execute(
                sa.select(table.c.equipment_id, table.c.event_id, table.c.document).where(
                    table.c.equipment_id.in_(sorted({row.equipment_id for row in part})),
                    table.c.event_id.in_([row.event_id for row in part]),
                )
            )
            for row in rows:
                points: Sequence[Mapping[str, Any]] = (row.document or {}).get("points") or ()
                values = [
                    float(point["load_kw"])
                    for point in points[first - 1 : last]
                    if point.get("load_kw") is not None and not point.get("quality")
                ]
                self._days[(row.equipment_id, row.event_id, window)] = min(values) if values else None


def _load_ids(area: GridArea, items: Iterable[Equipment]) -> set[str]:
    ids: set[str] = set()
    for item in items:
        ids |= _own_ids(area, item)
    return ids


def _upstream(area: GridArea, item: Equipment) -> list[Equipment | None]:
    """The feeder (for a transformer) and the substation above an item; None where the grid lacks one."""
    chain: list[Equipment | None] = []
    if item.kind == TRANSFORMER:
        chain.append(area.feeders.get(item.feeder_id or ""))
    if item.kind != SUBSTATION:
        chain.append(area.substations.get(area.substation_of(item) or ""))
    return chain


def _through_chain(
    item: Equipment, chain: list[Equipment | None], found: Mapping[str, LoadCapacity]
) -> LoadCapacity:
    """The item's figures with what the equipment above it leaves: the least open figure along the chain."""
    own = found[item.equipment_id]
    least, limited_by = own.open_kva, item.equipment_id
    for above in chain:
        figure = found[above.equipment_id].open_kva if above is not None else None
        if above is None or figure is None or least is None:
            return own
        if figure < least:
            least, limited_by = figure, above.equipment_id
    return own.model_copy(update={"open_kva_through_chain": least, "chain_limited_by": limited_by})


def open_capacity(
    conn: Connection,
    area: GridArea,
    items: Sequence[tuple[EquipmentKind, Equipment]],
    rules: Rules,
    open_rules: OpenCapacityRules | None,
    today: date,
    minima: DaytimeMinima | None = None,
) -> list[OpenCapacity]:
    """Open capacity of the items, and of the feeders and substations above them, from the loads and
    reservations conn sees now; minima keeps parsed daytime minima between calls."""
    chains = {item.equipment_id: _upstream(area, item) for _, item in items}
    everything = {item.equipment_id: item for _, item in items}
    everything.update((above.equipment_id, above) for chain in chains.values() for above in chain if above)
    ids = _load_ids(area, everything.values())
    loads = read_loads(conn, ids, rules, today)
    # Reservations past their expiry no longer hold capacity.
    reserved = read_reserved(conn, list(everything), exclude=None, now=clock.now())
    listed = _load_ids(area, (item for _, item in items))
    reader = minima or DaytimeMinima()
    min_loads = reader.read(conn, listed, open_rules, rules.min_good_points, today) if open_rules else {}
    found = {key: load_capacity(rules, area, item, loads, reserved) for key, item in everything.items()}
    answers = []
    for kind, item in items:
        load = _through_chain(item, chains[item.equipment_id], found)
        answers.append(
            OpenCapacity(
                kind=kind,
                equipment_id=item.equipment_id,
                name=item.name,
                voltage_kv=item.voltage_kv,
                location=location_of(area, item),
                substation_id=area.substation_of(item) if item.kind != SUBSTATION else None,
                feeder_id=item.feeder_id,
                area_class=area.area_class_of(item),
                province=rules.province,
                load=load,
                pv=pv_hosting(open_rules, area, item, load.capacity_kva, min_loads) if open_rules else None,
                capacity_to_load=capacity_to_load(open_rules, area, item.equipment_id, loads)
                if open_rules and item.kind == SUBSTATION
                else None,
            )
        )
    return answers


def substation_ratios(
    conn: Connection,
    area: GridArea,
    substation_ids: Sequence[str],
    rules: Rules,
    open_rules: OpenCapacityRules,
    today: date,
) -> dict[str, CapacityToLoad]:
    """The capacity-to-load ratio of each substation, from the load bases conn sees now."""
    units = {key: [u.equipment_id for u in area.main_transformers.get(key, ())] for key in substation_ids}
    loads = read_loads(conn, {unit for found in units.values() for unit in found}, rules, today)
    return {key: capacity_to_load(open_rules, area, key, loads) for key in substation_ids}


def _r(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None
