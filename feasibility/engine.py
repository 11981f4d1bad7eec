"""The feasibility rules engine: pure functions from a request, the grid near it and its loads to a verdict.

It runs in two steps so the caller can lock what it needs in between: plan() recommends the voltage and
finds candidate connection points; evaluate() applies the capacity, N-1 and important-customer rules to
them with the loads and reservations the caller read, and ranks the schemes. Every rule adds a RuleCheck
to the trace; missing or stale inputs give insufficient_data, never an assumed value.

The applicant is judged on what it adds (its increment: requested kVA x demand factor). Equipment that was
already beyond a limit before the request is an existing-grid condition for planning, reported apart; only
a limit the request itself crosses needs reinforcement. N-1 applies as the equipment's supply-area class
requires it, and a radial feeder or a one-transformer substation is a planning note, never a 0% limit.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from canonical_model.application import BusinessType, CustomerClass, ImportanceGrade, LoadType
from canonical_model.common import GeoPoint, UrbanRural
from canonical_model.feasibility import (
    Condition,
    ExistingGridCondition,
    FeasibilityAssessment,
    Reinforcement,
    RuleCheck,
    RuleResult,
    SupplyScheme,
    SupplySource,
    Verdict,
)
from canonical_model.planning import CapacityForecastAlert
from feasibility.basis import LV_MAX_KV, area_of, supply_level
from feasibility.config import FREES_CAPACITY, NO_CAPACITY_CHECK, NOT_REQUIRED, REQUIRED, Rules, SourceNeed
from feasibility.spatial import SpatialIndex, haversine_m

TRANSFORMER = "transformer"
FEEDER = "feeder"
SUBSTATION = "substation"
MAIN_TRANSFORMER = "main_transformer"
IN_SERVICE = "in_service"
_VERDICT_ORDER = {
    Verdict.FEASIBLE: 0,
    Verdict.FEASIBLE_WITH_CONDITIONS: 1,
    Verdict.INSUFFICIENT_DATA: 2,
    Verdict.NEEDS_REINFORCEMENT: 3,
    Verdict.NOT_FEASIBLE: 4,
}
INSUFFICIENT = "insufficient_data"
_KIND_NAMES = {TRANSFORMER: "distribution_transformer", FEEDER: "feeder", SUBSTATION: "substation"}


@dataclass(frozen=True)
class Equipment:
    """What the rules need of one piece of grid equipment (kind as in grid_equipment)."""

    kind: str
    equipment_id: str
    name: str | None = None
    status: str | None = IN_SERVICE
    lon: float | None = None
    lat: float | None = None
    substation_id: str | None = None
    feeder_id: str | None = None
    rated_kva: float | None = None
    voltage_kv: float | None = None
    allowed_current_a: float | None = None
    tie_switches: int | None = None
    public: bool = True
    area_class: str | None = None
    route_length_m: float | None = None
    district_id: str | None = None
    bus_section: str | None = None
    spare_bays: int | None = None


class GridArea:
    """Grid equipment with its parent links and spatial indexes per supply level."""

    def __init__(self, equipment: Iterable[Equipment], *, cell_deg: float = 0.01) -> None:
        self.transformers: dict[str, Equipment] = {}
        self.feeders: dict[str, Equipment] = {}
        self.substations: dict[str, Equipment] = {}
        self.main_transformers: dict[str, list[Equipment]] = {}
        # Marketing transformer district (TG_ID) -> PMS transformer id, the 营配贯通 link.
        self.districts: dict[str, str] = {}
        self.lv: SpatialIndex[str] = SpatialIndex(cell_deg)
        self.mv: SpatialIndex[str] = SpatialIndex(cell_deg)
        self.hv: SpatialIndex[str] = SpatialIndex(cell_deg)
        items = list(equipment)
        for item in items:
            if item.kind == TRANSFORMER:
                self.transformers[item.equipment_id] = item
                if item.district_id:
                    self.districts[item.district_id] = item.equipment_id
            elif item.kind == FEEDER:
                self.feeders[item.equipment_id] = item
            elif item.kind == SUBSTATION:
                self.substations[item.equipment_id] = item
            elif item.kind == MAIN_TRANSFORMER and item.substation_id and item.status == IN_SERVICE:
                self.main_transformers.setdefault(item.substation_id, []).append(item)
        for item in items:
            if item.lon is None or item.lat is None or item.status != IN_SERVICE:
                continue
            if item.kind == TRANSFORMER:
                if item.public:
                    self.lv.add(item.lon, item.lat, item.equipment_id)
                # A transformer marks a point along its feeder: where a 10 kV tee-off can be made.
                if item.feeder_id in self.feeders:
                    self.mv.add(item.lon, item.lat, item.feeder_id)
            elif item.kind == FEEDER:
                self.mv.add(item.lon, item.lat, item.equipment_id)
            elif item.kind == SUBSTATION:
                self.hv.add(item.lon, item.lat, item.equipment_id)

    def area_class_of(self, item: Equipment) -> str | None:
        """The supply-area class of an item: its own, else its feeder's, else its substation's."""
        if item.area_class:
            return item.area_class
        feeder = self.feeders.get(item.feeder_id or "") if item.kind == TRANSFORMER else None
        if feeder is not None and feeder.area_class:
            return feeder.area_class
        substation = self.substations.get(self.substation_of(item) or "")
        return substation.area_class if substation is not None else None

    def substation_of(self, item: Equipment) -> str | None:
        """The substation an item is fed from, through its feeder when it names none itself."""
        if item.kind == SUBSTATION:
            return item.equipment_id
        if item.substation_id:
            return item.substation_id
        feeder = self.feeders.get(item.feeder_id or "")
        return feeder.substation_id if feeder else None


@dataclass(frozen=True)
class LoadReading:
    """The load basis of one piece of equipment, or why there is none (missing, stale, incomplete).

    peak_kw: the highest good point of the basis window; power_factor: measured at that peak where the
    curves carry one (None: the configured factor applies); basis: how the window was chosen, for the trace.
    """

    peak_kw: float | None
    data_date: date | None = None
    problem: str | None = None
    power_factor: float | None = None
    basis: str | None = None


@dataclass(frozen=True)
class FeasibilityRequest:
    """What is asked: an application, or a what-if for a place and capacity."""

    requested_capacity_kva: float
    customer_class: CustomerClass
    importance_grade: ImportanceGrade = ImportanceGrade.NONE
    site: GeoPoint | None = None
    urban_rural: UrbanRural | None = None
    application_no: str | None = None
    industry_code: str | None = None
    load_type: LoadType = LoadType.GENERAL
    requested_voltage_kv: float | None = None
    business_type: BusinessType = BusinessType.NEW_CONNECTION
    # The customer's contract capacity before a capacity change (Customer.contract_capacity_kva).
    existing_capacity_kva: float | None = None
    # The customer's transformer district (TG_ID): its PMS transformer, public or dedicated, is the existing
    # supply point of a capacity increase.
    existing_district_id: str | None = None


@dataclass(frozen=True)
class Candidate:
    """A connection point found near the site."""

    equipment: Equipment
    distance_m: float


@dataclass
class Plan:
    """The outcome of plan(): voltage, candidates, and the trace so far."""

    request: FeasibilityRequest
    rules: Rules
    voltage_kv: float | None
    level: str | None
    radius_m: float
    candidates: tuple[Candidate, ...]
    trace: list[RuleCheck] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    final: Verdict | None = None
    # What the request adds before its demand factor: the whole request, or a capacity increase's increase.
    added_kva: float = 0.0
    # A load no feeder near it can carry: substations with the circuits a dedicated line would need.
    dedicated: tuple[Candidate, ...] = ()
    circuits: int = 0

    def load_ids(self, area: GridArea) -> set[str]:
        """Equipment whose recent peak the evaluation needs: candidates, the feeders above transformer
        candidates and the candidates' main transformers."""
        ids = {candidate.equipment.equipment_id for candidate in self.candidates} | self.upstream_feeder_ids()
        for substation in self.substation_ids(area):
            ids.update(item.equipment_id for item in area.main_transformers.get(substation, ()))
        return ids

    def substation_ids(self, area: GridArea) -> set[str]:
        """Source substations of the candidates and of the dedicated lines."""
        found = (area.substation_of(candidate.equipment) for candidate in self.candidates + self.dedicated)
        return {substation for substation in found if substation}

    def upstream_feeder_ids(self) -> set[str]:
        """The feeders that transformer candidates hang off."""
        return {
            c.equipment.feeder_id
            for c in self.candidates
            if c.equipment.kind == TRANSFORMER and c.equipment.feeder_id
        }

    def lock_ids(self, area: GridArea) -> list[str]:
        """Equipment whose reservations the evaluation reads, in a fixed order (no lock-order deadlock)."""
        ids = {c.equipment.equipment_id for c in self.candidates} | self.upstream_feeder_ids()
        return sorted(ids | self.substation_ids(area))


def _area(request: FeasibilityRequest) -> str:
    return area_of(request.urban_rural)


def _recommend_voltage(
    request: FeasibilityRequest, rules: Rules
) -> tuple[float | None, str | None, RuleCheck]:
    kva = request.requested_capacity_kva
    basis = supply_level(
        rules,
        request.customer_class,
        request.importance_grade,
        kva,
        request.urban_rural,
        request.requested_voltage_kv,
    )
    area = basis.area
    inputs: dict[str, Any] = {
        "requested_kva": kva,
        "power_factor": rules.power_factor,
        "requested_kw": round(basis.kw, 3),
        "area": area,
        "customer_class": request.customer_class.value,
        "importance_grade": request.importance_grade.value,
        "requested_voltage_kv": request.requested_voltage_kv,
    }
    threshold: dict[str, Any] = {
        "lv_ceiling_kw": rules.lv_ceiling_kw[area],
        "single_phase_max_kw": rules.single_phase_max_kw,
        "bands": [{"voltage_kv": b.voltage_kv, "max_kva": b.max_kva} for b in rules.bands],
    }
    requested = request.requested_voltage_kv
    asked = ""
    if requested is not None:
        asked = (
            f"; the requested {requested:g} kV is valid for {kva:g} kVA and honoured"
            if basis.requested_valid
            else f"; the requested {requested:g} kV is not a network of province {rules.province} "
            f"({', '.join(f'{kv:g}' for kv in sorted(rules.networks_kv))} kV): not used"
            if requested >= LV_MAX_KV and requested not in rules.networks_kv
            else f"; the requested {requested:g} kV cannot carry {kva:g} kVA on this basis "
            "(low voltage only within the ceiling, else a configured band that holds it): not used"
        )
    if basis.low_voltage:
        residential = request.customer_class is CustomerClass.LV_RESIDENTIAL
        single = residential and basis.kw < rules.single_phase_max_kw
        if basis.requested_valid and requested is not None:
            # 220 V asked by a load above the single-phase limit is not valid either: three-phase.
            single = requested < 0.3 and basis.kw < rules.single_phase_max_kw
        voltage = 0.22 if single else 0.38
        detail = f"{kva:g} kVA x {rules.power_factor:g} = {basis.reason}"
        detail += f" and < {rules.single_phase_max_kw:g} kW: 0.22 kV" if single else ": 0.38 kV"
        return (
            voltage,
            "lv",
            RuleCheck(
                rule="supply_voltage",
                inputs=inputs,
                threshold=threshold,
                result=RuleResult.INFO,
                detail=detail + asked,
            ),
        )
    bands = rules.bands
    if basis.requested_valid and requested is not None:
        bands = tuple(band for band in rules.bands if band.voltage_kv == requested)
    for band in bands:
        if kva <= band.max_kva:
            level = "mv" if band.voltage_kv <= 20 else "hv"
            return (
                band.voltage_kv,
                level,
                RuleCheck(
                    rule="supply_voltage",
                    inputs=inputs,
                    threshold=threshold,
                    result=RuleResult.INFO,
                    detail=f"{basis.reason}; {kva:g} kVA <= {band.max_kva:g} kVA: {band.voltage_kv:g} kV"
                    + asked,
                ),
            )
    largest = rules.bands[-1]
    return (
        None,
        None,
        RuleCheck(
            rule="supply_voltage",
            inputs=inputs,
            threshold=threshold,
            result=RuleResult.FAIL,
            detail=f"{kva:g} kVA exceeds the largest band "
            f"({largest.voltage_kv:g} kV up to {largest.max_kva:g} kVA)" + asked,
        ),
    )


def _radius_steps(rules: Rules, limit: float) -> list[float]:
    steps = sorted({min(radius, limit) for radius in rules.radii_m})
    if limit > steps[-1]:
        steps.append(limit)
    return steps


def _eligible(area: GridArea, level: str, voltage_kv: float, equipment_id: str) -> Equipment | None:
    if level == "lv":
        return area.transformers.get(equipment_id)
    if level == "mv":
        feeder = area.feeders.get(equipment_id)
        if feeder is None or feeder.status != IN_SERVICE:
            return None
        return feeder if feeder.voltage_kv in (None, voltage_kv) else None
    substation = area.substations.get(equipment_id)
    if substation is None or (substation.voltage_kv is not None and substation.voltage_kv < voltage_kv):
        return None
    return substation


def reach(request: FeasibilityRequest, rules: Rules) -> tuple[str | None, float]:
    """The supply level (lv, mv, hv) of a request and its supply radius, how far points are sought."""
    _, level, _ = _recommend_voltage(request, rules)
    return level, rules.supply_radius_m[_area(request)][level] if level is not None else 0.0


def _business_type(request: FeasibilityRequest, rules: Rules) -> Plan | None:
    """A plan that ends at the business type: one that touches no capacity or frees it (FACTS.md 2b)."""
    kind = request.business_type
    effect = rules.capacity_effect(kind)
    if effect == NO_CAPACITY_CHECK:
        check = RuleCheck(
            rule="business_type",
            inputs={"business_type": kind.value},
            threshold={"capacity_effect": effect},
            result=RuleResult.INFO,
            detail=f"{kind.value} changes no capacity: no grid check and no reservation",
        )
        return Plan(request, rules, None, None, 0.0, (), [check], final=Verdict.NO_CAPACITY_CHECK)
    if effect != FREES_CAPACITY:
        return None
    existing, kept = request.existing_capacity_kva, request.requested_capacity_kva
    inputs = {"business_type": kind.value, "existing_capacity_kva": existing, "kept_kva": kept}
    result = Plan(request, rules, None, None, 0.0, ())
    if existing is None:
        detail = (
            f"{kind.value} frees capacity; the customer's existing contract capacity is unknown, so how much"
        )
        result.trace.append(
            RuleCheck(
                rule="capacity_released",
                inputs=inputs,
                threshold={"capacity_effect": effect},
                result=RuleResult.CONDITION,
                detail=detail + " is not stated",
            )
        )
        result.conditions.append(
            Condition(
                code="existing_capacity_unknown",
                detail="the customer's contract capacity is not in the hub: the capacity freed must be "
                "confirmed",
            )
        )
        result.final = Verdict.FEASIBLE_WITH_CONDITIONS
        return result
    freed = max(existing - kept, 0.0)
    result.trace.append(
        RuleCheck(
            rule="capacity_released",
            inputs=inputs,
            threshold={"capacity_effect": effect},
            result=RuleResult.INFO,
            detail=f"{kind.value}: {existing:g} kVA - {kept:g} kVA kept = {freed:g} kVA freed; it never "
            "needs reinforcement and reserves nothing",
        )
    )
    result.final = Verdict.FEASIBLE
    return result


def _increase(request: FeasibilityRequest, result: Plan) -> bool:
    """A capacity increase adds only its increase; False when the existing capacity is unknown."""
    existing = request.existing_capacity_kva
    requested = request.requested_capacity_kva
    if existing is None:
        result.conditions.append(
            Condition(
                code="existing_capacity_unknown",
                detail="capacity increase: the customer's existing contract capacity is not in the hub, so "
                "the increase cannot be told from the total",
            )
        )
        result.trace.append(
            RuleCheck(
                rule="capacity_increase",
                inputs={"requested_kva": requested, "existing_capacity_kva": None},
                result=RuleResult.INSUFFICIENT_DATA,
                detail="existing contract capacity unknown: the increase is not guessed",
            )
        )
        result.final = Verdict.INSUFFICIENT_DATA
        return False
    result.added_kva = max(requested - existing, 0.0)
    result.trace.append(
        RuleCheck(
            rule="capacity_increase",
            inputs={"requested_kva": requested, "existing_capacity_kva": existing},
            result=RuleResult.INFO,
            detail=f"{requested:g} kVA requested - {existing:g} kVA existing contract capacity = "
            f"{result.added_kva:g} kVA added",
        )
    )
    return True


def _existing_point(request: FeasibilityRequest, area: GridArea, level: str) -> Equipment | None:
    """The customer's existing supply point at the level: its transformer, the feeder above it, or the
    substation above that."""
    item = area.transformers.get(area.districts.get(request.existing_district_id or "", ""))
    if item is None or item.status != IN_SERVICE:
        return None
    if level == "lv":
        return item
    if level == "mv":
        return area.feeders.get(item.feeder_id or "")
    return area.substations.get(area.substation_of(item) or "")


def plan(request: FeasibilityRequest, rules: Rules, area: GridArea) -> Plan:
    """Recommend the supply voltage and find candidate connection points with a widening radius."""
    ended = _business_type(request, rules)
    if ended is not None:
        return ended
    voltage, level, check = _recommend_voltage(request, rules)
    result = Plan(request, rules, voltage, level, 0.0, (), [check], added_kva=request.requested_capacity_kva)
    if voltage is None or level is None:
        result.final = Verdict.NOT_FEASIBLE
        return result
    if request.business_type is BusinessType.CAPACITY_INCREASE:
        if not _increase(request, result):
            return result
        point = _existing_point(request, area, level)
        if point is not None:
            distance = 0.0
            if request.site is not None and point.lon is not None and point.lat is not None:
                distance = haversine_m(request.site.lon, request.site.lat, point.lon, point.lat)
            result.candidates = (Candidate(point, round(distance, 1)),)
            result.radius_m = max(distance, 1.0)
            result.trace.append(
                RuleCheck(
                    rule="connection_point_search",
                    inputs={"existing_district_id": request.existing_district_id, "level": level},
                    result=RuleResult.PASS,
                    detail=f"capacity increase at the customer's existing supply point: "
                    f"{_KIND_NAMES[point.kind]} {point.equipment_id} (from transformer "
                    f"district {request.existing_district_id})",
                )
            )
            return result
        result.trace.append(
            RuleCheck(
                rule="existing_supply_point",
                inputs={"existing_district_id": request.existing_district_id, "level": level},
                result=RuleResult.INFO,
                detail="the customer's existing supply point is unknown or not in service at this level: "
                "connection points are searched as for a new connection",
            )
        )
    if request.site is None:
        result.conditions.append(
            Condition(code=INSUFFICIENT, detail="the site location is missing: no connection point search")
        )
        result.trace.append(
            RuleCheck(
                rule="connection_point_search",
                result=RuleResult.INSUFFICIENT_DATA,
                detail="no site location",
            )
        )
        result.final = Verdict.INSUFFICIENT_DATA
        return result
    index = {"lv": area.lv, "mv": area.mv, "hv": area.hv}[level]
    limit = rules.supply_radius_m[_area(request)][level]
    steps = _radius_steps(rules, limit)
    nearest: dict[str, Candidate] = {}
    reached = steps[0]
    for radius in steps:
        reached = radius
        for distance, equipment_id in index.within(request.site.lon, request.site.lat, radius):
            if equipment_id in nearest:
                continue
            item = _eligible(area, level, voltage, equipment_id)
            if item is not None:
                nearest[equipment_id] = Candidate(item, round(distance, 1))
        if len(nearest) >= rules.min_candidates:
            break
    result.radius_m = reached
    result.candidates = tuple(
        sorted(nearest.values(), key=lambda c: (c.distance_m, c.equipment.equipment_id))
    )
    found = len(result.candidates)
    result.trace.append(
        RuleCheck(
            rule="connection_point_search",
            inputs={
                "site": request.site.model_dump(),
                "level": level,
                "radius_reached_m": reached,
                "found": found,
            },
            threshold={"radii_m": steps, "supply_radius_m": limit, "min_candidates": rules.min_candidates},
            result=RuleResult.PASS if found else RuleResult.FAIL,
            detail=f"{found} distinct {_KIND_NAMES[_kind_of(level)]} candidate(s) within {reached:g} m "
            f"(supply radius {limit:g} m)",
        )
    )
    if not found:
        result.conditions.append(
            Condition(code="no_connection_point", detail=f"no in-service connection point within {limit:g} m")
        )
        result.final = Verdict.NOT_FEASIBLE
    elif level == "mv":
        _large_load(result, area, limit)
    return result


def increment_of(request: FeasibilityRequest, rules: Rules, added_kva: float) -> tuple[float, float, str]:
    """(kVA the request adds to the equipment above it, its demand factor, where the factor came from)."""
    residential = request.customer_class is CustomerClass.LV_RESIDENTIAL
    factor, source = rules.demand_factor(residential, request.industry_code, request.load_type)
    return added_kva * factor, factor, source


def feeder_rate_limit(rules: Rules, area: GridArea, item: Equipment) -> tuple[float, str]:
    """(the load rate a feeder may reach, its rule): its planning limit, or its N-1 limit k/(k+1) where its
    area class requires N-1 and it has ties, whichever is lower."""
    ties = item.tie_switches
    if rules.n1_policy(area.area_class_of(item)) == REQUIRED and ties:
        n1 = ties / (ties + 1)
        if n1 < rules.feeder_load_rate:
            return n1, "feeder_n_minus_1"
    return rules.feeder_load_rate, "feeder_load_rate"


def main_transformer_rate_limit(rules: Rules, units: int, policy: str) -> tuple[float, str]:
    """(the load rate a substation of `units` in-service main transformers may reach, its rule): the N-1
    limit overload x (n-1)/n where N-1 applies and a unit can take over, else the load-rate limit."""
    if units >= 2 and policy != NOT_REQUIRED:
        return rules.mt_overload * (units - 1) / units, "main_transformer_n_minus_1"
    return rules.mt_load_rate, "main_transformer_load_rate"


def _feeder_limit_kva(rules: Rules, area: GridArea, item: Equipment, voltage_kv: float) -> float | None:
    """What a feeder may carry at most, even empty: its capacity x its load-rate limit, or its N-1 limit
    where its area class requires N-1 and it has ties."""
    if not item.allowed_current_a:
        return None
    rate, _ = feeder_rate_limit(rules, area, item)
    return math.sqrt(3) * (item.voltage_kv or voltage_kv) * item.allowed_current_a * rate


def _large_load(result: Plan, area: GridArea, limit: float) -> None:
    """A 10/20 kV load beyond what any feeder near it may carry even empty gets dedicated circuits (专线)
    from substations within the supply radius, as many as new circuits at the feeder limit need."""
    request, rules = result.request, result.rules
    voltage = result.voltage_kv or 10.0
    increment, _, _ = increment_of(request, rules, result.added_kva)
    limits = [
        found
        for found in (_feeder_limit_kva(rules, area, c.equipment, voltage) for c in result.candidates)
        if found is not None
    ]
    if not limits or max(limits) >= increment or request.site is None:
        return
    circuit_kva = math.sqrt(3) * voltage * rules.circuit_current_a * rules.feeder_load_rate
    circuits = math.ceil(increment / circuit_kva - 1e-9)
    stations = [
        Candidate(item, round(distance, 1))
        for distance, substation_id in area.hv.within(request.site.lon, request.site.lat, limit)
        if (item := area.substations.get(substation_id)) is not None
        and (item.voltage_kv is None or item.voltage_kv > voltage)
    ]
    result.dedicated = tuple(sorted(stations, key=lambda c: (c.distance_m, c.equipment.equipment_id)))
    result.circuits = circuits
    result.trace.append(
        RuleCheck(
            rule="large_load",
            inputs={
                "increment_kva": round(increment, 1),
                "largest_feeder_limit_kva": round(max(limits), 1),
                "circuit_current_a": rules.circuit_current_a,
                "feeder_load_rate": rules.feeder_load_rate,
                "substations_found": len(stations),
            },
            threshold={"circuit_kva": round(circuit_kva, 1), "circuits": circuits},
            result=RuleResult.INFO,
            detail=f"{increment:.1f} kVA > {max(limits):.1f} kVA, the most a feeder near the site may carry: "
            f"{circuits} dedicated circuit(s) of sqrt(3) x {voltage:g} kV x {rules.circuit_current_a:g} A x "
            f"{rules.feeder_load_rate:g} = {circuit_kva:.1f} kVA from {len(stations)} substation(s) within "
            f"{limit:g} m",
        )
    )


def _kind_of(level: str) -> str:
    return {"lv": TRANSFORMER, "mv": FEEDER, "hv": SUBSTATION}[level]


@dataclass
class _Source:
    """One candidate evaluated with the full requested load."""

    candidate: Candidate
    substation_id: str | None
    checks: list[RuleCheck] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    reinforcement: list[Reinforcement] = field(default_factory=list)
    existing: list[ExistingGridCondition] = field(default_factory=list)
    blocked: bool = False
    area_class: str | None = None
    capacity_kva: float | None = None
    peak_kva: float | None = None
    reserved_kva: float = 0.0
    counted_reserved_kva: float = 0.0
    allowed_rate: float | None = None
    n1_limit: float | None = None
    load_rate_before: float | None = None
    load_rate_after: float | None = None
    # A dedicated line: circuits from a substation's spare bays rather than a tee-off an existing feeder.
    circuits: int = 1
    dedicated: bool = False

    @property
    def headroom_kva(self) -> float | None:
        if self.capacity_kva is None or self.peak_kva is None or self.allowed_rate is None:
            return None
        return self.capacity_kva * self.allowed_rate - self.peak_kva - self.counted_reserved_kva

    @property
    def verdict(self) -> Verdict:
        if self.blocked:
            # Not the applicant's doing, so not its reinforcement: the grid cannot supply it for now
            # (暂不具备供电条件) and the existing-grid condition says why.
            return Verdict.NOT_FEASIBLE
        if self.reinforcement:
            return Verdict.NEEDS_REINFORCEMENT
        if any(condition.code == INSUFFICIENT for condition in self.conditions):
            return Verdict.INSUFFICIENT_DATA
        if self.conditions or self.existing:
            return Verdict.FEASIBLE_WITH_CONDITIONS
        return Verdict.FEASIBLE


@dataclass(frozen=True)
class _FeederLimits:
    """A feeder's figures with the request on it; n1_limit is None when its tie switches are unknown."""

    capacity: float | None
    peak: float | None
    before: float | None
    after: float | None
    allowed_rate: float
    n1_limit: float | None


class _Evaluator:
    def __init__(
        self,
        plan_: Plan,
        area: GridArea,
        loads: Mapping[str, LoadReading],
        reserved: Mapping[str, float],
    ) -> None:
        self.plan = plan_
        self.rules = plan_.rules
        self.area = area
        self.loads = loads
        self.reserved = reserved
        # What the request adds to every piece of equipment above it: its increment.
        self.request_kva, self.demand_factor, self.demand_source = increment_of(
            plan_.request, self.rules, plan_.added_kva
        )

    def demand_check(self) -> RuleCheck:
        """The increment the request is judged on, as a trace entry."""
        request = self.plan.request
        return RuleCheck(
            rule="request_increment",
            inputs={
                "requested_kva": request.requested_capacity_kva,
                "added_kva": self.plan.added_kva,
                "customer_class": request.customer_class.value,
                "industry_code": request.industry_code,
            },
            threshold={"demand_factor": self.demand_factor, "from": self.demand_source},
            result=RuleResult.INFO,
            detail=f"{self.plan.added_kva:g} kVA x demand factor {self.demand_factor:g} "
            f"({self.demand_source}) = {self.request_kva:.1f} kVA added to the equipment",
        )

    def peak_kva(self, equipment_id: str, source: _Source) -> float | None:
        reading = self.loads.get(equipment_id) or LoadReading(None, None, "no load profile")
        if reading.peak_kw is None or reading.problem is not None:
            problem = reading.problem or "no good load point"
            source.conditions.append(
                Condition(
                    code=INSUFFICIENT,
                    detail=f"load of {equipment_id}: {problem} (max age {self.rules.max_age_days} days)",
                    equipment_id=equipment_id,
                )
            )
            return None
        measured = reading.power_factor is not None and 0 < reading.power_factor <= 1
        factor = reading.power_factor if measured and reading.power_factor else self.rules.power_factor
        peak = reading.peak_kw / factor
        source.checks.append(
            RuleCheck(
                rule="load_basis",
                subject=equipment_id,
                inputs={
                    "peak_kw": reading.peak_kw,
                    "peak_date": reading.data_date.isoformat() if reading.data_date else None,
                    "power_factor": factor,
                    "power_factor_from": "measured" if measured else "configured",
                },
                threshold={"window_days": self.rules.window_days, "max_age_days": self.rules.max_age_days},
                result=RuleResult.INFO,
                detail=f"{reading.basis or 'peak'}: {reading.peak_kw:.1f} kW / {factor:g} "
                f"({'measured' if measured else 'configured'} power factor) = {peak:.1f} kVA",
            )
        )
        return peak

    def limit_check(
        self,
        source: _Source,
        rule: str,
        subject: str,
        capacity: float | None,
        peak: float | None,
        reserved: float,
        limit: float,
        kind: str,
        why: str,
        *,
        policy: str = REQUIRED,
    ) -> tuple[float | None, float | None]:
        """Load rates (before, after) the request: (peak + reserved x simultaneity [+ increment]) / capacity.

        After within the limit passes. Before already beyond it is an existing-grid condition (planning's,
        with the increment the request adds). Otherwise the request crosses the limit itself: reinforcement
        where the rule is required, a condition where the area class only recommends it.
        """
        counted = reserved * self.rules.simultaneity
        inputs: dict[str, Any] = {
            "capacity_kva": _r(capacity),
            "peak_kva": _r(peak),
            "reserved_kva": _r(reserved),
            "simultaneity": self.rules.simultaneity,
            "increment_kva": _r(self.request_kva),
        }
        threshold: dict[str, Any] = {"max_load_rate": _r(limit), "why": why, "policy": policy}
        if capacity is None or peak is None:
            missing = "capacity" if capacity is None else "recent peak load"
            source.checks.append(
                RuleCheck(
                    rule=rule,
                    subject=subject,
                    inputs=inputs,
                    threshold=threshold,
                    result=RuleResult.INSUFFICIENT_DATA,
                    detail=f"{missing} of {subject} unknown",
                )
            )
            return None, None
        before = (peak + counted) / capacity
        after = (peak + counted + self.request_kva) / capacity
        arithmetic = (
            f"({peak:.1f} + {reserved:.1f} x {self.rules.simultaneity:g} + {self.request_kva:.1f}) / "
            f"{capacity:.1f} = {after:.4f}"
        )
        if after <= limit + 1e-9:
            result, detail = RuleResult.PASS, f"{arithmetic} <= {limit:.4f}"
        elif before > limit + 1e-9:
            shortfall_before = peak + counted - capacity * limit
            result = RuleResult.EXISTING_DEFICIENCY
            detail = (
                f"before the request ({peak:.1f} + {reserved:.1f} x {self.rules.simultaneity:g}) / "
                f"{capacity:.1f} = {before:.4f} > {limit:.4f}: an existing-grid condition, short by "
                f"{shortfall_before:.1f} kVA; the request adds {self.request_kva:.1f} kVA ({after:.4f} after)"
            )
            self._existing(
                source,
                ExistingGridCondition(
                    equipment_id=subject,
                    kind=kind,
                    rule=rule,
                    max_load_rate=_r(limit),
                    load_rate_before=_r(before),
                    shortfall_before_kva=_r(shortfall_before),
                    increment_kva=_r(self.request_kva),
                    note=f"{kind} {subject} is at {before:.1%} against its {why} of {limit:.1%} before this "
                    f"request, short by {shortfall_before:.1f} kVA: a reinforcement project for grid "
                    "planning, not the applicant's",
                    blocks_connection=before > self.rules.overload_ceiling + 1e-9,
                ),
            )
        else:
            shortfall = peak + counted + self.request_kva - capacity * limit
            detail = f"{arithmetic} > {limit:.4f} (within the limit before the request: {before:.4f})"
            if policy == REQUIRED:
                result = RuleResult.FAIL
                source.reinforcement.append(
                    Reinforcement(equipment_id=subject, kind=kind, reason=rule, shortfall_kva=_r(shortfall))
                )
            else:
                result = RuleResult.CONDITION
                source.conditions.append(
                    Condition(
                        code="n1_recommended",
                        detail=f"{rule} of {subject} is recommended in its area class and would be short "
                        f"by {shortfall:.1f} kVA after the request",
                        equipment_id=subject,
                    )
                )
        source.checks.append(
            RuleCheck(
                rule=rule, subject=subject, inputs=inputs, threshold=threshold, result=result, detail=detail
            )
        )
        return before, after

    def _planning_note(
        self,
        source: _Source,
        rule: str,
        subject: str,
        kind: str,
        inputs: dict[str, Any],
        policy: str,
        load_rate_before: float | None,
        note: str,
    ) -> None:
        """N-1 the grid cannot keep whatever the load (no tie, one unit): a condition and a planning note."""
        source.checks.append(
            RuleCheck(
                rule=rule,
                subject=subject,
                inputs=inputs,
                threshold={"policy": policy, "max_load_rate": None},
                result=RuleResult.CONDITION,
                detail=note,
            )
        )
        self._existing(
            source,
            ExistingGridCondition(
                equipment_id=subject,
                kind=kind,
                rule=rule,
                load_rate_before=load_rate_before,
                increment_kva=_r(self.request_kva),
                note=note,
            ),
        )

    def _existing(self, source: _Source, finding: ExistingGridCondition) -> None:
        source.existing.append(finding)
        source.conditions.append(
            Condition(
                code="existing_grid_condition",
                detail=f"{finding.rule} of {finding.equipment_id}: {finding.note}",
                equipment_id=finding.equipment_id,
            )
        )
        if finding.blocks_connection:
            # Past its rating already: no load can be added here until planning's reinforcement is built.
            source.blocked = True
            source.conditions.append(
                Condition(
                    code="existing_overload",
                    detail=f"{finding.equipment_id} already carries more than "
                    f"{self.rules.overload_ceiling:.0%} of its rating: the connection waits for the grid's "
                    "own reinforcement",
                    equipment_id=finding.equipment_id,
                )
            )

    def source(self, candidate: Candidate) -> _Source:
        item = candidate.equipment
        source = _Source(candidate, self.area.substation_of(item), area_class=self.area.area_class_of(item))
        source.reserved_kva = self.reserved.get(item.equipment_id, 0.0)
        source.counted_reserved_kva = source.reserved_kva * self.rules.simultaneity
        if item.kind == TRANSFORMER:
            self._transformer(source, item)
        elif item.kind == FEEDER:
            self._feeder(source, item)
            self._main_transformers(source)
        else:
            self._main_transformers(source)
        self._supply_radius(source)
        return source

    def dedicated(self, candidate: Candidate) -> _Source:
        """Dedicated circuits from a substation: its spare bays, its main transformers, the line length."""
        item = candidate.equipment
        source = _Source(
            candidate,
            item.equipment_id,
            area_class=self.area.area_class_of(item),
            circuits=self.plan.circuits,
            dedicated=True,
        )
        source.reserved_kva = self.reserved.get(item.equipment_id, 0.0)
        source.counted_reserved_kva = source.reserved_kva * self.rules.simultaneity
        self._spare_bays(source, item)
        self._main_transformers(source)
        self._supply_radius(source)
        return source

    def _spare_bays(self, source: _Source, item: Equipment) -> None:
        needed, spare = source.circuits, item.spare_bays
        inputs = {"spare_bays": spare, "circuits": needed}
        if spare is None:
            result, detail = RuleResult.CONDITION, f"spare bays unknown: {needed} needed"
            source.conditions.append(
                Condition(
                    code="confirm_spare_bays",
                    detail=f"{needed} spare 10 kV bay(s) at substation {item.equipment_id} must be "
                    "confirmed: the grid data does not record them",
                    equipment_id=item.equipment_id,
                )
            )
        elif spare >= needed:
            result, detail = RuleResult.PASS, f"{spare} spare bay(s) >= {needed} circuit(s)"
        else:
            result = RuleResult.FAIL
            detail = f"{spare} spare bay(s) < {needed} circuit(s): {needed - spare} new bay(s) to be built"
            source.reinforcement.append(
                Reinforcement(equipment_id=item.equipment_id, kind="substation", reason="spare_bays")
            )
        source.checks.append(
            RuleCheck(
                rule="spare_bays", subject=item.equipment_id, inputs=inputs, result=result, detail=detail
            )
        )

    def _transformer(self, source: _Source, item: Equipment) -> None:
        source.capacity_kva = item.rated_kva
        source.peak_kva = self.peak_kva(item.equipment_id, source)
        source.allowed_rate = source.n1_limit = self.rules.dt_load_rate
        source.load_rate_before, source.load_rate_after = self.limit_check(
            source,
            "transformer_load_rate",
            item.equipment_id,
            item.rated_kva,
            source.peak_kva,
            source.reserved_kva,
            self.rules.dt_load_rate,
            "distribution_transformer",
            "heavy-load limit",
        )
        # The low-voltage load also flows through the feeder and the substation above the transformer.
        feeder = self.area.feeders.get(item.feeder_id or "")
        if feeder is None:
            source.checks.append(
                RuleCheck(
                    rule="feeder_load_rate",
                    subject=item.feeder_id,
                    result=RuleResult.INSUFFICIENT_DATA,
                    detail=f"feeder of transformer {item.equipment_id} unknown",
                )
            )
            source.conditions.append(
                Condition(
                    code=INSUFFICIENT,
                    detail=f"feeder of transformer {item.equipment_id} unknown",
                    equipment_id=item.equipment_id,
                )
            )
        else:
            self._feeder_limits(source, feeder, self.reserved.get(feeder.equipment_id, 0.0))
        self._main_transformers(source)

    def _feeder(self, source: _Source, item: Equipment) -> None:
        limits = self._feeder_limits(source, item, source.reserved_kva)
        source.capacity_kva, source.peak_kva = limits.capacity, limits.peak
        source.load_rate_before, source.load_rate_after = limits.before, limits.after
        source.allowed_rate = limits.allowed_rate
        if limits.n1_limit is not None:
            source.n1_limit = limits.n1_limit

    def _feeder_limits(self, source: _Source, item: Equipment, reserved: float) -> _FeederLimits:
        """Capacity, load-rate and N-1 checks of a feeder carrying the request, recorded on source."""
        voltage = item.voltage_kv or self.plan.voltage_kv or 10.0
        capacity = math.sqrt(3) * voltage * item.allowed_current_a if item.allowed_current_a else None
        source.checks.append(
            RuleCheck(
                rule="feeder_capacity",
                subject=item.equipment_id,
                inputs={"voltage_kv": voltage, "allowed_current_a": item.allowed_current_a},
                result=RuleResult.INFO if capacity else RuleResult.INSUFFICIENT_DATA,
                detail=f"sqrt(3) x {voltage:g} kV x {item.allowed_current_a:g} A = {capacity:.1f} kVA"
                if capacity
                else "allowed current unknown",
            )
        )
        if capacity is None:
            source.conditions.append(
                Condition(
                    code=INSUFFICIENT,
                    detail=f"allowed current of feeder {item.equipment_id} unknown",
                    equipment_id=item.equipment_id,
                )
            )
        peak = self.peak_kva(item.equipment_id, source)
        before, after = self.limit_check(
            source,
            "feeder_load_rate",
            item.equipment_id,
            capacity,
            peak,
            reserved,
            self.rules.feeder_load_rate,
            "feeder",
            "planning limit",
        )
        plain = _FeederLimits(capacity, peak, before, after, self.rules.feeder_load_rate, None)
        area_class = self.area.area_class_of(item)
        policy = self.rules.n1_policy(area_class)
        shown = area_class or "unknown"
        k = item.tie_switches
        inputs: dict[str, Any] = {"tie_switches": k, "area_class": shown}
        if policy == NOT_REQUIRED:
            source.checks.append(
                RuleCheck(
                    rule="feeder_n_minus_1",
                    subject=item.equipment_id,
                    inputs=inputs,
                    threshold={"policy": policy},
                    result=RuleResult.INFO,
                    detail=f"N-1 is not required in supply-area class {shown}",
                )
            )
            return plain
        if k is None:
            source.checks.append(
                RuleCheck(
                    rule="feeder_n_minus_1",
                    subject=item.equipment_id,
                    inputs=inputs,
                    threshold={"policy": policy},
                    result=RuleResult.INSUFFICIENT_DATA,
                    detail="tie switch count unknown",
                )
            )
            source.conditions.append(
                Condition(
                    # Unknown ties block the answer only where N-1 is required.
                    code=INSUFFICIENT if policy == REQUIRED else "confirm_n1",
                    detail=f"tie switches of feeder {item.equipment_id} unknown",
                    equipment_id=item.equipment_id,
                )
            )
            return plain
        if k == 0:
            note = (
                f"radial feeder {item.equipment_id} has no tie switch: its load cannot be transferred "
                f"when it trips, so N-1 ({policy} in class {shown}) cannot be kept; planning: a tie to a "
                "neighbouring feeder"
            )
            self._planning_note(
                source, "feeder_n_minus_1", item.equipment_id, "feeder", inputs, policy, _r(before), note
            )
            return plain
        n1 = k / (k + 1)
        self.limit_check(
            source,
            "feeder_n_minus_1",
            item.equipment_id,
            capacity,
            peak,
            reserved,
            n1,
            "feeder",
            f"N-1 limit k/(k+1) with k={k} tie switch(es), class {shown}",
            policy=policy,
        )
        return _FeederLimits(capacity, peak, before, after, min(self.rules.feeder_load_rate, n1), n1)

    def _main_transformers(self, source: _Source) -> None:
        substation = source.substation_id
        if substation is None:
            source.checks.append(
                RuleCheck(
                    rule="main_transformer_n_minus_1",
                    result=RuleResult.INSUFFICIENT_DATA,
                    detail=f"source substation of {source.candidate.equipment.equipment_id} unknown",
                )
            )
            source.conditions.append(Condition(code=INSUFFICIENT, detail="source substation unknown"))
            return
        units = self.area.main_transformers.get(substation, [])
        n = len(units)
        station = self.area.substations.get(substation)
        area_class = (station.area_class if station else None) or source.area_class
        policy = self.rules.n1_policy(area_class)
        shown = area_class or "unknown"
        reserved = self.reserved.get(substation, 0.0)
        if not units:
            capacity: float | None = None
            peak: float | None = None
        else:
            capacity = sum(unit.rated_kva or 0.0 for unit in units)
            peaks = [self.peak_kva(unit.equipment_id, source) for unit in units]
            peak = None if any(p is None for p in peaks) else sum(p for p in peaks if p is not None)
        limit, rule = main_transformer_rate_limit(self.rules, n, policy)
        if rule == "main_transformer_n_minus_1":
            why = f"N-1 limit {self.rules.mt_overload:g} x (n-1)/n with n={n} main transformers"
            why += f", class {shown}"
        else:
            why = "load-rate limit"
            if n == 1 and policy != NOT_REQUIRED:
                note = (
                    f"substation {substation} has a single main transformer: its load cannot move to another "
                    f"unit, so N-1 ({policy} in class {shown}) cannot be kept; planning: a second unit or "
                    "transfer through 10 kV ties"
                )
                rate = (
                    (peak + reserved * self.rules.simultaneity) / capacity
                    if peak is not None and capacity
                    else None
                )
                self._planning_note(
                    source,
                    "main_transformer_n_minus_1",
                    substation,
                    "substation",
                    {"main_transformers": n, "area_class": shown},
                    policy,
                    _r(rate),
                    note,
                )
            elif n:
                why = f"load-rate limit (N-1 {policy} in class {shown})"
        if not units and policy != NOT_REQUIRED:
            rule = "main_transformer_n_minus_1"
        before, after = self.limit_check(
            source,
            rule,
            substation,
            capacity,
            peak,
            reserved,
            limit,
            "substation",
            why,
            policy=policy if rule == "main_transformer_n_minus_1" else REQUIRED,
        )
        if source.candidate.equipment.kind == SUBSTATION:
            source.capacity_kva, source.peak_kva, source.reserved_kva = capacity, peak, reserved
            source.counted_reserved_kva = reserved * self.rules.simultaneity
            source.allowed_rate = source.n1_limit = limit
            source.load_rate_before, source.load_rate_after = before, after

    def _supply_radius(self, source: _Source) -> None:
        """The supply radius of the area class: 0.4 kV from the transformer, 10 kV from the substation."""
        site = self.plan.request.site
        level = self.plan.level
        if site is None or level not in ("lv", "mv"):
            return
        item = source.candidate.equipment
        area_class = source.area_class
        limits = self.rules.class_radius_m.get(area_class or "")
        if limits is None:
            source.checks.append(
                RuleCheck(
                    rule="supply_radius",
                    subject=item.equipment_id,
                    inputs={"area_class": area_class},
                    result=RuleResult.INFO,
                    detail="supply-area class unknown: only the search radius applied",
                )
            )
            return
        lengths: list[tuple[str, float, float, str]] = []
        if level == "lv":
            lengths.append(
                ("lv", source.candidate.distance_m, limits["lv"], "straight line from the transformer")
            )
        station = self.area.substations.get(source.substation_id or "")
        if item.kind == TRANSFORMER and item.route_length_m is not None:
            lengths.append(("mv", item.route_length_m, limits["mv"], "along the line from the substation"))
        elif station is not None and station.lon is not None and station.lat is not None:
            point = (item.lon, item.lat) if item.kind == TRANSFORMER else (site.lon, site.lat)
            if point[0] is not None and point[1] is not None:
                length = haversine_m(station.lon, station.lat, point[0], point[1])
                lengths.append(
                    ("mv", length, limits["mv"], "straight line from the substation, no route in the data")
                )
        for voltage, length, limit, how in lengths:
            within = length <= limit
            source.checks.append(
                RuleCheck(
                    rule="supply_radius",
                    subject=item.equipment_id,
                    inputs={
                        "area_class": area_class,
                        "level": voltage,
                        "length_m": round(length, 1),
                        "measured": how,
                    },
                    threshold={"max_m": limit},
                    result=RuleResult.PASS if within else RuleResult.CONDITION,
                    detail=f"{'0.4' if voltage == 'lv' else '10'} kV supply length {length:.0f} m ({how}) "
                    f"{'<=' if within else '>'} {limit:g} m in class {area_class}",
                )
            )
            if not within:
                source.conditions.append(
                    Condition(
                        code="supply_radius_exceeded",
                        detail=f"{length:.0f} m ({how}) is beyond the {limit:g} m supply radius of class "
                        f"{area_class}: the voltage at the site must be checked",
                        equipment_id=item.equipment_id,
                    )
                )

    def criteria(self, source: _Source) -> dict[str, float]:
        headroom = source.headroom_kva
        allowed = (source.capacity_kva or 0.0) * (source.allowed_rate or 0.0)
        after_headroom = headroom - self.request_kva if headroom is not None else None
        rate = source.load_rate_after
        limit = source.n1_limit
        return {
            "distance": _clamp(1 - source.candidate.distance_m / self.plan.radius_m)
            if self.plan.radius_m
            else 0.0,
            "headroom": _clamp(after_headroom / allowed) if after_headroom is not None and allowed else 0.0,
            "load_rate": _clamp(1 - rate) if rate is not None else 0.0,
            "n1_margin": _clamp((limit - rate) / limit) if rate is not None and limit else 0.0,
            # An existing deficiency is not the applicant's, but a healthier connection point is better.
            "reinforcement": 0.0 if source.reinforcement else (0.5 if source.existing else 1.0),
        }


def _clamp(value: float) -> float:
    return round(min(1.0, max(0.0, value)), 4)


def _r(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _supply_source(source: _Source, request_kva: float) -> SupplySource:
    item = source.candidate.equipment
    headroom = source.headroom_kva
    return SupplySource(
        equipment_id=item.equipment_id,
        kind=_KIND_NAMES[item.kind],
        name=item.name,
        substation_id=source.substation_id,
        feeder_id=item.feeder_id if item.kind == TRANSFORMER else None,
        distance_m=source.candidate.distance_m,
        capacity_kva=_r(source.capacity_kva),
        peak_load_kva=_r(source.peak_kva),
        reserved_kva=_r(source.reserved_kva) or 0.0,
        headroom_kva=_r(headroom),
        headroom_after_kva=_r(headroom - request_kva) if headroom is not None else None,
        load_rate_before=_r(source.load_rate_before),
        load_rate_after=_r(source.load_rate_after),
        area_class=source.area_class,
        n1_limit=_r(source.n1_limit),
        bus_section=item.bus_section,
        connection="dedicated_line" if source.dedicated else "existing",
        circuits=source.circuits,
    )


@dataclass
class _Scheme:
    sources: list[_Source]
    conditions: list[Condition] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        worst = max((source.verdict for source in self.sources), key=_VERDICT_ORDER.__getitem__)
        if worst is Verdict.FEASIBLE and self.conditions:
            return Verdict.FEASIBLE_WITH_CONDITIONS
        return worst


def _same_section(other: _Source, chosen: Sequence[_Source]) -> bool:
    """Whether other leaves a substation from a bus section a chosen circuit already uses."""
    section = other.candidate.equipment.bus_section
    return section is not None and any(
        source.substation_id == other.substation_id and source.candidate.equipment.bus_section == section
        for source in chosen
    )


def _combine(sources: Sequence[_Source], need: SourceNeed | None, limit: int) -> list[_Scheme]:
    """Schemes of single sources, or the source sets the customer's class and grade need: circuits that
    share a substation leave it from different bus sections."""
    if need is None:
        return [_Scheme([source]) for source in sources[:limit]]
    schemes: list[_Scheme] = []
    seen: set[frozenset[str]] = set()
    for primary in sources:
        chosen = [primary]
        for other in sources:
            if len(chosen) == need.sources:
                break
            if other in chosen or _same_section(other, chosen):
                continue
            used = {source.substation_id for source in chosen}
            if len(used) < need.substations and other.substation_id in used:
                continue
            chosen.append(other)
        distinct = len({source.substation_id for source in chosen if source.substation_id})
        key = frozenset(source.candidate.equipment.equipment_id for source in chosen)
        if len(chosen) < need.sources or distinct < need.substations or key in seen:
            continue
        seen.add(key)
        scheme = _Scheme(chosen)
        unrecorded = sorted(
            source.candidate.equipment.equipment_id
            for source in chosen
            if source.candidate.equipment.bus_section is None
            and sum(other.substation_id == source.substation_id for other in chosen) > 1
        )
        if unrecorded:
            scheme.conditions.append(
                Condition(
                    code="confirm_bus_sections",
                    detail="circuits share a substation: they must leave from different bus sections, which "
                    f"the grid data does not record for {', '.join(unrecorded)}",
                )
            )
        schemes.append(scheme)
        if len(schemes) == limit:
            break
    return schemes


def forecast_note(alert: CapacityForecastAlert) -> RuleCheck:
    """A planning alert as the trace cites it: information, not a verdict, as today's peak decides."""
    crossing = date.fromisoformat(f"{alert.crossing_month}-01")
    return RuleCheck(
        rule="capacity_forecast",
        subject=alert.equipment_id,
        inputs={
            "crossing_month": alert.crossing_month,
            "forecast_peak_kva": alert.peak_kva,
            "pipeline_share": alert.pipeline_share,
        },
        threshold={"max_load_rate": alert.limit_rate, "limit_kva": alert.limit_kva, "why": alert.limit_rule},
        result=RuleResult.INFO,
        detail=f"{_KIND_NAMES.get(alert.equipment_kind, alert.equipment_kind).replace('_', ' ')} "
        f"{alert.equipment_id} is forecast to exceed {alert.limit_rate:.0%} in "
        f"{calendar.month_name[crossing.month]} {crossing.year} ({alert.peak_kva:.1f} kVA against "
        f"{alert.limit_kva:.1f} kVA, {alert.pipeline_share:.0%} of it from applications not yet energised)",
    )


def evaluate(
    plan_: Plan,
    area: GridArea,
    loads: Mapping[str, LoadReading],
    reserved: Mapping[str, float],
    *,
    assessed_at: datetime,
    forecast_alerts: Sequence[CapacityForecastAlert] = (),
) -> FeasibilityAssessment:
    """Apply the capacity, N-1 and important-customer rules to the plan's candidates and rank schemes.

    loads: recent peak per equipment id (absent = no data); reserved: kVA promised to other open
    applications per equipment id (connection points and substations); forecast_alerts: the planning
    alerts raised on the equipment evaluated, cited in the trace.
    """
    request = plan_.request
    rules = plan_.rules
    trace = list(plan_.trace)
    conditions = list(plan_.conditions)
    ranked: list[SupplyScheme] = []
    verdict = plan_.final
    if verdict is None:
        evaluator = _Evaluator(plan_, area, loads, reserved)
        sources = [evaluator.source(candidate) for candidate in plan_.candidates]
        sources += [evaluator.dedicated(candidate) for candidate in plan_.dedicated]
        trace.append(evaluator.demand_check())
        for source in sources:
            trace.extend(source.checks)
        trace.extend(forecast_note(alert) for alert in forecast_alerts)
        weights = rules.weights
        total_weight = sum(weights.values())

        def source_score(source: _Source) -> float:
            values = evaluator.criteria(source)
            return sum(weights[k] * v for k, v in values.items()) / total_weight if total_weight else 0.0

        sources.sort(key=lambda s: (_VERDICT_ORDER[s.verdict], -source_score(s), s.candidate.distance_m))
        need = rules.source_need(request.customer_class, request.importance_grade)
        schemes = _combine(sources, need, rules.max_schemes)
        if need is not None:
            found = len({source.substation_id for source in sources if source.substation_id})
            trace.append(
                RuleCheck(
                    rule="important_customer_sources",
                    inputs={
                        "customer_class": request.customer_class.value,
                        "importance_grade": request.importance_grade.value,
                        "candidates": len(sources),
                        "substations_found": found,
                    },
                    threshold={"sources": need.sources, "distinct_substations": need.substations},
                    result=RuleResult.PASS if schemes else RuleResult.FAIL,
                    detail=f"{need.basis}: {need.sources} sources from at least {need.substations} "
                    f"substation(s), circuits of one substation on different bus sections; found "
                    f"{len(sources)} candidate(s) at {found} substation(s)",
                )
            )
            if not schemes:
                conditions.append(
                    Condition(
                        code="sources_unavailable",
                        detail=f"{need.sources} sources from {need.substations} substation(s) are needed "
                        f"within {plan_.radius_m:g} m; found {found} substation(s)",
                    )
                )
        scored = []
        for scheme in schemes:
            parts = [evaluator.criteria(source) for source in scheme.sources]
            # A scheme is as good as its weakest source on every criterion (distance: its farthest source).
            values = {key: min(part[key] for part in parts) for key in parts[0]}
            score = sum(weights[k] * v for k, v in values.items()) / total_weight if total_weight else 0.0
            scored.append((scheme, values, round(score, 4)))
        scored.sort(key=lambda t: (_VERDICT_ORDER[t[0].verdict], -t[2]))
        for rank, (scheme, values, score) in enumerate(scored, start=1):
            ranked.append(
                SupplyScheme(
                    rank=rank,
                    score=score,
                    verdict=scheme.verdict,
                    sources=tuple(_supply_source(s, evaluator.request_kva) for s in scheme.sources),
                    criteria=values,
                    reinforcement=tuple(r for s in scheme.sources for r in s.reinforcement),
                    conditions=_unique([c for s in scheme.sources for c in s.conditions] + scheme.conditions),
                    existing_grid=_unique_existing(e for s in scheme.sources for e in s.existing),
                )
            )
        verdict = ranked[0].verdict if ranked else Verdict.NOT_FEASIBLE
        increment, factor = _r(evaluator.request_kva), evaluator.demand_factor
    else:
        increment = factor = None
    best = ranked[0] if ranked else None
    return FeasibilityAssessment(
        application_no=request.application_no,
        province=rules.province,
        assessed_at=assessed_at,
        requested_capacity_kva=request.requested_capacity_kva,
        site_location=request.site,
        verdict=verdict,
        recommended_voltage_kv=plan_.voltage_kv,
        schemes=tuple(ranked),
        reinforcement=best.reinforcement if best else (),
        conditions=_unique(conditions + (list(best.conditions) if best else [])),
        increment_kva=increment,
        demand_factor=factor,
        existing_grid=best.existing_grid if best else (),
        business_type=request.business_type.value,
        existing_capacity_kva=request.existing_capacity_kva,
        trace=tuple(trace),
    )


def _unique(conditions: Iterable[Condition]) -> tuple[Condition, ...]:
    seen: dict[tuple[str, str], Condition] = {}
    for condition in conditions:
        seen.setdefault((condition.code, condition.detail), condition)
    return tuple(seen.values())


def _unique_existing(found: Iterable[ExistingGridCondition]) -> tuple[ExistingGridCondition, ...]:
    seen: dict[tuple[str, str], ExistingGridCondition] = {}
    for item in found:
        seen.setdefault((item.equipment_id, item.rule), item)
    return tuple(seen.values())


def reservation_targets(assessment: FeasibilityAssessment) -> list[SupplySource]:
    """The sources whose capacity an assessment promises: those of the recommended scheme, if it holds."""
    if (
        assessment.verdict not in (Verdict.FEASIBLE, Verdict.FEASIBLE_WITH_CONDITIONS)
        or not assessment.schemes
    ):
        return []
    return list(assessment.schemes[0].sources)


@dataclass(frozen=True)
class EquipmentHeadroom:
    """The engine's figures for one piece of equipment with nothing added to it (for open capacity).

    headroom_kva: capacity x allowed_rate - peak - reserved x simultaneity, None when an input is unknown;
    checks and conditions: the engine's trace of the equipment and of what feeds it.
    """

    capacity_kva: float | None
    peak_kva: float | None
    reserved_kva: float
    counted_reserved_kva: float
    allowed_rate: float | None
    headroom_kva: float | None
    area_class: str | None
    substation_id: str | None
    checks: tuple[RuleCheck, ...]
    conditions: tuple[Condition, ...]


def equipment_headroom(
    rules: Rules,
    area: GridArea,
    item: Equipment,
    loads: Mapping[str, LoadReading],
    reserved: Mapping[str, float],
) -> EquipmentHeadroom:
    """The capacity, load-rate and N-1 rules applied to one piece of equipment as a zero-kVA candidate."""
    request = FeasibilityRequest(requested_capacity_kva=0.0, customer_class=CustomerClass.HV_SINGLE_SOURCE)
    plan_ = Plan(request, rules, item.voltage_kv, None, 0.0, (Candidate(item, 0.0),))
    source = _Evaluator(plan_, area, loads, reserved).source(plan_.candidates[0])
    return EquipmentHeadroom(
        capacity_kva=source.capacity_kva,
        peak_kva=source.peak_kva,
        reserved_kva=source.reserved_kva,
        counted_reserved_kva=source.counted_reserved_kva,
        allowed_rate=source.allowed_rate,
        headroom_kva=source.headroom_kva,
        area_class=source.area_class,
        substation_id=source.substation_id,
        checks=tuple(source.checks),
        conditions=tuple(source.conditions),
    )
