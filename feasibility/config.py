"""Feasibility rules configuration (feasibility/rules.yaml): read with line numbers, merged per province."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from canonical_model.application import BusinessType, CustomerClass, ImportanceGrade, LoadType
from canonical_model.grid import SupplyAreaClass
from mappings.yamlfile import Diagnostics, is_list, is_map, key_line, line_of, plain, read_yaml

FEASIBILITY_FOLDER = "feasibility"
RULES_FILE = "rules.yaml"
DEFAULT_PROVINCE = "default"
AREAS = ("urban", "rural")
LEVELS = ("lv", "mv", "hv")
CRITERIA = ("distance", "headroom", "load_rate", "n1_margin", "reinforcement")
# Supply-area classes (DL/T 5729); "unknown" is the rule for equipment whose class the grid data lacks.
AREA_CLASSES = tuple(area_class.value for area_class in SupplyAreaClass)
UNKNOWN_CLASS = "unknown"
REQUIRED = "required"
RECOMMENDED = "recommended"
NOT_REQUIRED = "not_required"
N1_POLICIES = (REQUIRED, RECOMMENDED, NOT_REQUIRED)
CLASS_LEVELS = ("lv", "mv")
BUSINESS_TYPES = tuple(member.value for member in BusinessType)
CAPACITY_CHECK = "capacity_check"
FREES_CAPACITY = "frees_capacity"
NO_CAPACITY_CHECK = "no_capacity_check"
CAPACITY_EFFECTS = (CAPACITY_CHECK, FREES_CAPACITY, NO_CAPACITY_CHECK)
VALIDITY_LEVELS = ("lv", "hv")


@dataclass(frozen=True)
class VoltageBand:
    """A supply voltage and the largest request it serves."""

    voltage_kv: float
    max_kva: float


@dataclass(frozen=True)
class SourceNeed:
    """The sources a supply needs: how many, from at least how many substations, and why."""

    sources: int
    substations: int
    basis: str


@dataclass(frozen=True)
class Rules:
    """One province's complete rule set."""

    province: str
    power_factor: float
    single_phase_max_kw: float
    lv_ceiling_kw: Mapping[str, float]
    bands: tuple[VoltageBand, ...]
    radii_m: tuple[float, ...]
    min_candidates: int
    max_schemes: int
    supply_radius_m: Mapping[str, Mapping[str, float]]
    max_age_days: int
    min_good_points: int
    window_days: int
    same_season_days: int
    dt_load_rate: float
    feeder_load_rate: float
    mt_overload: float
    mt_load_rate: float
    overload_ceiling: float
    n1_by_class: Mapping[str, str]
    class_radius_m: Mapping[str, Mapping[str, float]]
    demand_residential: float
    demand_industries: Mapping[str, float]
    demand_default: float
    load_types: Mapping[LoadType, LoadTypeRules]
    simultaneity: float
    weights: Mapping[str, float]
    capacity_effects: Mapping[str, str]
    scheme_validity_days: Mapping[str, int]
    energised_load_share: float
    energised_max_days: int
    release_stages: frozenset[str]
    energised_stages: frozenset[str]
    withdrawn_statuses: frozenset[str]
    networks_kv: frozenset[float]
    grade_sources: Mapping[str, tuple[int, int]]
    class_sources: Mapping[str, tuple[int, int]]
    circuit_current_a: float

    def source_need(self, customer_class: CustomerClass, grade: ImportanceGrade) -> SourceNeed | None:
        """What the customer class and the importance grade ask of the supply, the stricter of the two;
        None for a single source."""
        needs = [
            (need, f"{kind} {name}")
            for kind, name, need in (
                ("importance grade", grade.value, self.grade_sources.get(grade.value)),
                ("customer class", customer_class.value, self.class_sources.get(customer_class.value)),
            )
            if need is not None
        ]
        if not needs:
            return None
        sources = max(need[0] for need, _ in needs)
        substations = max(need[1] for need, _ in needs)
        return SourceNeed(sources, substations, " and ".join(why for _, why in needs))

    def capacity_effect(self, business_type: BusinessType) -> str:
        """capacity_check, frees_capacity or no_capacity_check: what the business type does to capacity."""
        return self.capacity_effects[business_type.value]

    def n1_policy(self, area_class: str | None) -> str:
        """required, recommended or not_required: what N-1 means in an area class (unknown: its own rule)."""
        return self.n1_by_class.get(area_class or UNKNOWN_CLASS, self.n1_by_class[UNKNOWN_CLASS])

    def demand_factor(
        self, residential: bool, industry_code: str | None, load_type: LoadType = LoadType.GENERAL
    ) -> tuple[float, str]:
        """The demand factor of a request and where it came from: its load type's own factor, else the
        longest configured GB/T 4754 prefix of its industry, else the residential factor, else the default."""
        own = self.load_types.get(load_type)
        if own is not None:
            return own.demand_factor, f"load type {load_type.value}"
        if industry_code:
            for length in range(len(industry_code), 0, -1):
                factor = self.demand_industries.get(industry_code[:length])
                if factor is not None:
                    return factor, f"industry {industry_code[:length]}"
        if residential:
            return self.demand_residential, "residential"
        return self.demand_default, "default (load type unknown)"

    def max_radius_m(self) -> float:
        """The widest supply radius of any area and level: how far a grid change can affect a site."""
        return max(radius for levels in self.supply_radius_m.values() for radius in levels.values())


@dataclass(frozen=True)
class FeasibilityConfig:
    """The default rules and the provinces that override them, chosen by the application's unit."""

    default: Rules
    provinces: Mapping[str, Rules]
    org_prefixes: Mapping[str, tuple[str, ...]]
    open_capacity: OpenCapacityConfig | None = None

    def rules_for(self, org_no: str | None = None, province: str | None = None) -> Rules:
        """The rules of the named province, else of the province the unit belongs to, else the defaults."""
        if province is not None and province in self.provinces:
            return self.provinces[province]
        if org_no:
            for name, prefixes in self.org_prefixes.items():
                if any(org_no.startswith(prefix) for prefix in prefixes):
                    return self.provinces[name]
        return self.default

    def all_rules(self) -> tuple[Rules, ...]:
        """Every rule set, defaults first."""
        return (self.default, *self.provinces.values())


def _positive(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return f"must be a positive number, not {value!r}"
    return None


def _fraction(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        return f"must be a number in (0, 1], not {value!r}"
    return None


def _count(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return f"must be a whole number of at least 1, not {value!r}"
    return None


def _weight(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return f"must be a number of at least 0, not {value!r}"
    return None


def _policy(value: Any) -> str | None:
    if value not in N1_POLICIES:
        return f"must be one of {list(N1_POLICIES)}, not {value!r}"
    return None


def _factors(value: Any) -> str | None:
    if not isinstance(value, dict) or not value:
        return f"must be a map of GB/T 4754 code prefix to factor, not {value!r}"
    for code, factor in value.items():
        if not isinstance(code, str) or not code[:1].isalpha() or not code[:1].isupper():
            return f"keys must be GB/T 4754 codes (a section letter A-T and digits), not {code!r}"
        if _fraction(factor):
            return f"factor of {code!r} {_fraction(factor)}"
    return None


def _names(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        return f"must be a list of names, not {value!r}"
    return None


def _business_types(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return f"must be a list of business types, not {value!r}"
    unknown = [item for item in value if item not in BUSINESS_TYPES]
    if unknown:
        return f"names unknown business types {unknown}; expected some of {list(BUSINESS_TYPES)}"
    return None


def _radii(value: Any) -> str | None:
    if not isinstance(value, list) or not value or any(_positive(item) for item in value):
        return f"must be a non-empty list of positive numbers, not {value!r}"
    if list(value) != sorted(value):
        return f"must widen: {value!r} is not in increasing order"
    return None


def _networks(value: Any) -> str | None:
    if not isinstance(value, list) or not value or any(_positive(item) for item in value):
        return f"must be a non-empty list of voltages in kV, not {value!r}"
    return None


def _source_needs(names: tuple[str, ...]) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, dict):
            return f"must be a map of name to {{sources, substations}}, not {value!r}"
        for name, need in value.items():
            if name not in names:
                return f"names {name!r}; expected some of {list(names)}"
            if not isinstance(need, dict) or set(need) != {"sources", "substations"}:
                return f"of {name!r} needs exactly sources and substations, not {need!r}"
            if _count(need["sources"]) or _count(need["substations"]):
                return f"of {name!r}: sources and substations must be whole numbers of at least 1"
            if need["substations"] > need["sources"]:
                return f"of {name!r}: {need['substations']} substations for {need['sources']} sources"
        return None

    return check


def _bands(value: Any) -> str | None:
    if not isinstance(value, list) or not value:
        return f"must be a non-empty list of {{voltage_kv, max_kva}}, not {value!r}"
    for band in value:
        if not isinstance(band, dict) or set(band) != {"voltage_kv", "max_kva"}:
            return f"each band needs exactly voltage_kv and max_kva, not {band!r}"
        if _positive(band["voltage_kv"]) or _positive(band["max_kva"]):
            return f"voltage_kv and max_kva must be positive numbers in {band!r}"
    if [band["max_kva"] for band in value] != sorted(band["max_kva"] for band in value):
        return "bands must be in increasing order of max_kva"
    return None


Check = Callable[[Any], str | None]
Spec = Mapping[str, "Check | Spec"]


# --- load_types: the demand factor and time-of-day profile of load types that have their own.

POINTS_PER_DAY = 96  # 15-minute points, as the load curves (E_MP_POWER_CURVE P1..P96)
HOURS_PER_DAY = 24
# The general load type has none: its factor is the industry's or the residential one.
OWN_LOAD_TYPES = tuple(load_type for load_type in LoadType if load_type is not LoadType.GENERAL)


@dataclass(frozen=True)
class LoadTypeRules:
    """A load type's demand factor and its 96-point profile, normalised to a peak of 1.0."""

    demand_factor: float
    profile: tuple[float, ...]


def _profile(value: Any) -> str | None:
    if not isinstance(value, list) or len(value) not in (POINTS_PER_DAY, HOURS_PER_DAY):
        shown = f"{len(value)} values" if isinstance(value, list) else repr(value)
        return f"must list {POINTS_PER_DAY} quarter-hour or {HOURS_PER_DAY} hourly values, not {shown}"
    for index, point in enumerate(value):
        if isinstance(point, bool) or not isinstance(point, int | float) or not 0 <= point <= 1:
            return f"value {index + 1} must be a number in [0, 1], not {point!r}"
    if max(value) != 1:
        return f"must be normalised to a peak of exactly 1.0, not {max(value)!r}"
    return None


LOAD_TYPE_SPEC: Spec = {
    load_type.value: {"demand_factor": _fraction, "profile": _profile} for load_type in OWN_LOAD_TYPES
}


def _load_type_rules(raw: Mapping[str, Any]) -> dict[LoadType, LoadTypeRules]:
    """The checked load_types section; an hourly profile holds for each of its hour's four quarters."""
    rules = {}
    for name, entry in raw.items():
        profile = [float(point) for point in entry["profile"]]
        repeat = POINTS_PER_DAY // len(profile)
        rules[LoadType(name)] = LoadTypeRules(
            float(entry["demand_factor"]), tuple(point for point in profile for _ in range(repeat))
        )
    return rules


SPEC: Spec = {
    "power_factor": _fraction,
    "voltage": {
        "single_phase_max_kw": _positive,
        "lv_ceiling_kw": {area: _positive for area in AREAS},
        "bands": _bands,
        "networks_kv": _networks,
    },
    "search": {
        "radii_m": _radii,
        "min_candidates": _count,
        "max_schemes": _count,
        "supply_radius_m": {area: {level: _positive for level in LEVELS} for area in AREAS},
    },
    "load": {
        "max_age_days": _count,
        "min_good_points": _count,
        "window_days": _count,
        "same_season_days": _count,
    },
    "limits": {
        "distribution_transformer_load_rate": _fraction,
        "feeder_load_rate": _fraction,
        "main_transformer_overload": _positive,
        "main_transformer_load_rate": _fraction,
        "overload_ceiling": _positive,
    },
    "supply_area": {
        "n_minus_1": {name: _policy for name in (*AREA_CLASSES, UNKNOWN_CLASS)},
        "supply_radius_m": {name: {level: _positive for level in CLASS_LEVELS} for name in AREA_CLASSES},
    },
    "demand": {
        "residential": _fraction,
        "industries": _factors,
        "default": _fraction,
        "simultaneity": _fraction,
    },
    "sources": {
        "grades": _source_needs(tuple(g.value for g in ImportanceGrade if g is not ImportanceGrade.NONE)),
        "classes": _source_needs(tuple(c.value for c in CustomerClass)),
    },
    "large_load": {"circuit_current_a": _positive},
    "load_types": LOAD_TYPE_SPEC,
    "weights": {criterion: _weight for criterion in CRITERIA},
    "business_types": {effect: _business_types for effect in CAPACITY_EFFECTS},
    "reservation": {
        "scheme_validity_days": {level: _count for level in VALIDITY_LEVELS},
        "after_energisation": {"load_share": _fraction, "max_days": _count},
    },
    "release_stages": _names,
    "energised_stages": _names,
    "withdrawn_statuses": _names,
}


def _check(node: Any, spec: Spec, file: str, diag: Diagnostics, where: str, *, complete: bool) -> None:
    """Check a YAML map against the spec; complete=False allows leaving keys out (province overrides)."""
    if not is_map(node):
        diag.error(f"{where or 'the file'} must be a map", file)
        return
    for key in node:
        line = key_line(node, key)
        name = f"{where}.{key}" if where else str(key)
        if key not in spec:
            diag.error(f"unknown key {name!r}; expected one of {sorted(spec)}", file, line)
            continue
        expected = spec[key]
        value = node[key]
        if isinstance(expected, Mapping):
            _check(value, expected, file, diag, name, complete=complete)
            continue
        try:
            problem = expected(plain(value))
        except ValueError as exc:
            problem = str(exc)
        if problem is not None:
            diag.error(f"{name} {problem}", file, line)
    if complete:
        for key in spec:
            if key not in node:
                diag.error(f"{where or 'defaults'} lacks {key!r}", file, line_of(node))


def _check_override(node: Any, key: Any, file: str, diag: Diagnostics, province: str) -> None:
    expected = SPEC.get(key)
    line = key_line(node, key)
    if expected is None:
        diag.error(f"unknown key {key!r} in province {province!r}", file, line)
    elif isinstance(expected, Mapping):
        _check(node[key], expected, file, diag, f"{province}.{key}", complete=False)
    else:
        problem = expected(plain(node[key]))
        if problem is not None:
            diag.error(f"{province}.{key} {problem}", file, line)


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _rules(province: str, raw: Mapping[str, Any]) -> Rules:
    voltage, search, load, limits = raw["voltage"], raw["search"], raw["load"], raw["limits"]
    area, demand = raw["supply_area"], raw["demand"]
    networks = frozenset(float(kv) for kv in voltage["networks_kv"])
    return Rules(
        province=province,
        power_factor=float(raw["power_factor"]),
        single_phase_max_kw=float(voltage["single_phase_max_kw"]),
        lv_ceiling_kw={area: float(value) for area, value in voltage["lv_ceiling_kw"].items()},
        # Only the voltages the province has a network at: no 20 kV band where there is no 20 kV network.
        bands=tuple(
            VoltageBand(float(b["voltage_kv"]), float(b["max_kva"]))
            for b in voltage["bands"]
            if float(b["voltage_kv"]) in networks
        ),
        radii_m=tuple(float(radius) for radius in search["radii_m"]),
        min_candidates=int(search["min_candidates"]),
        max_schemes=int(search["max_schemes"]),
        supply_radius_m={
            area: {level: float(value) for level, value in levels.items()}
            for area, levels in search["supply_radius_m"].items()
        },
        max_age_days=int(load["max_age_days"]),
        min_good_points=int(load["min_good_points"]),
        window_days=int(load["window_days"]),
        same_season_days=int(load["same_season_days"]),
        dt_load_rate=float(limits["distribution_transformer_load_rate"]),
        feeder_load_rate=float(limits["feeder_load_rate"]),
        mt_overload=float(limits["main_transformer_overload"]),
        mt_load_rate=float(limits["main_transformer_load_rate"]),
        overload_ceiling=float(limits["overload_ceiling"]),
        n1_by_class={str(name): str(policy) for name, policy in area["n_minus_1"].items()},
        class_radius_m={
            str(name): {level: float(value) for level, value in levels.items()}
            for name, levels in area["supply_radius_m"].items()
        },
        demand_residential=float(demand["residential"]),
        demand_industries={str(code): float(factor) for code, factor in demand["industries"].items()},
        demand_default=float(demand["default"]),
        load_types=_load_type_rules(raw["load_types"]),
        simultaneity=float(demand["simultaneity"]),
        weights={criterion: float(value) for criterion, value in raw["weights"].items()},
        capacity_effects={name: effect for effect, names in raw["business_types"].items() for name in names},
        scheme_validity_days={
            level: int(days) for level, days in raw["reservation"]["scheme_validity_days"].items()
        },
        energised_load_share=float(raw["reservation"]["after_energisation"]["load_share"]),
        energised_max_days=int(raw["reservation"]["after_energisation"]["max_days"]),
        release_stages=frozenset(raw["release_stages"]),
        energised_stages=frozenset(raw["energised_stages"]),
        withdrawn_statuses=frozenset(raw["withdrawn_statuses"]),
        networks_kv=networks,
        grade_sources=_needs(raw["sources"]["grades"]),
        class_sources=_needs(raw["sources"]["classes"]),
        circuit_current_a=float(raw["large_load"]["circuit_current_a"]),
    )


def _needs(raw: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    return {str(name): (int(need["sources"]), int(need["substations"])) for name, need in raw.items()}


def _check_business_types(
    raw: Mapping[str, Any], node: Any, file: str, diag: Diagnostics, where: str
) -> None:
    """Every business type has exactly one capacity effect."""
    seen: dict[str, str] = {}
    for effect, names in raw["business_types"].items():
        for name in names:
            if name in seen:
                diag.error(
                    f"{where}business type {name!r} is both {seen[name]} and {effect}", file, line_of(node)
                )
            seen[name] = effect
    missing = [name for name in BUSINESS_TYPES if name not in seen]
    if missing:
        diag.error(
            f"{where}business_types leave out {missing}: each needs a capacity effect", file, line_of(node)
        )


def _check_networks(raw: Mapping[str, Any], node: Any, file: str, diag: Diagnostics, where: str) -> None:
    """Some voltage band is on a network the province has."""
    voltage = raw["voltage"]
    networks = {float(kv) for kv in voltage["networks_kv"]}
    if not any(float(band["voltage_kv"]) in networks for band in voltage["bands"]):
        diag.error(
            f"{where}no voltage band is on a network of voltage.networks_kv {sorted(networks)}",
            file,
            key_line(node, "networks_kv") if is_map(node) and "networks_kv" in node else line_of(node),
        )


def read_feasibility_config(config_dir: Path, diag: Diagnostics) -> FeasibilityConfig | None:
    """The rules in config_dir/feasibility/rules.yaml, or None after recording every problem in diag."""
    path = config_dir / FEASIBILITY_FOLDER / RULES_FILE
    file = diag.display(path)
    before = len(diag.errors)
    document = read_yaml(path, file, diag)
    if document is None:
        return None
    if not is_map(document):
        diag.error("the file must be a map with defaults and provinces", file, 1)
        return None
    for key in document:
        if key not in ("defaults", "provinces", OPEN_CAPACITY):
            diag.error(
                f"unknown key {key!r}; expected defaults, provinces and {OPEN_CAPACITY}",
                file,
                key_line(document, key),
            )
    if "defaults" not in document:
        diag.error("the file lacks 'defaults'", file, 1)
        return None
    _check(document["defaults"], SPEC, file, diag, "", complete=True)
    provinces_node: Any = document.get("provinces") or {}
    prefixes: dict[str, tuple[str, ...]] = {}
    if provinces_node and not is_map(provinces_node):
        diag.error(
            "provinces must be a map of province id to overrides", file, key_line(document, "provinces")
        )
        provinces_node = {}
    for name in provinces_node:
        node = provinces_node[name]
        line = key_line(provinces_node, name)
        if not is_map(node):
            diag.error(f"province {name!r} must be a map", file, line)
            continue
        org = node.get("org_prefixes")
        if not is_list(org) or not org or not all(isinstance(item, str) and item for item in org):
            diag.error(f"province {name!r} needs org_prefixes: a non-empty list of strings", file, line)
        else:
            prefixes[str(name)] = tuple(str(item) for item in org)
        overrides = {key: node[key] for key in node if key != "org_prefixes"}
        for key in overrides:
            _check_override(node, key, file, diag, str(name))
    open_capacity = read_open_capacity(document, file, diag, set(provinces_node))
    if len(diag.errors) > before:
        return None
    defaults = plain(document["defaults"])
    _check_business_types(defaults, document["defaults"].get("business_types"), file, diag, "")
    _check_networks(defaults, document["defaults"].get("voltage"), file, diag, "")
    for name, node in provinces_node.items():
        if "business_types" in node:
            merged = _merge(defaults, {"business_types": plain(node["business_types"])})
            _check_business_types(merged, node["business_types"], file, diag, f"province {name!r}: ")
        voltage = node.get("voltage")
        if is_map(voltage) and ("networks_kv" in voltage or "bands" in voltage):
            merged = _merge(defaults, {"voltage": plain(node["voltage"])})
            _check_networks(merged, node["voltage"], file, diag, f"province {name!r}: ")
    if len(diag.errors) > before:
        return None
    provinces = {
        str(name): _rules(
            str(name), _merge(defaults, {k: plain(v) for k, v in node.items() if k != "org_prefixes"})
        )
        for name, node in provinces_node.items()
    }
    return FeasibilityConfig(_rules(DEFAULT_PROVINCE, defaults), provinces, prefixes, open_capacity)


def load_feasibility_config(config_dir: Path) -> FeasibilityConfig:
    """The validated rules; raises ConfigError naming file and line when anything is wrong."""
    diag = Diagnostics(config_dir)
    config = read_feasibility_config(config_dir, diag)
    diag.raise_if_any()
    assert config is not None
    return config


# --- open_capacity: the thresholds of published open capacity, PV hosting and the capacity-to-load ratio.

OPEN_CAPACITY = "open_capacity"
GROWTH_CLASSES = ("fast", "moderate", "slow")


@dataclass(frozen=True)
class OpenCapacityRules:
    """One province's open-capacity thresholds (rules.yaml open_capacity), defaults merged in.

    daytime_points: the first and last 15-minute point (1-96) at which PV output counts for minimum load;
    green_max / yellow_max: the reverse load rates (DL/T 2041) up to which equipment is green / yellow.
    """

    province: str
    pv_transformer_share: float
    pv_reverse_share: float
    min_load_days: int
    daytime_points: tuple[int, int]
    green_max: float
    yellow_max: float
    ratio_voltage_kv: tuple[float, float]
    growth: str
    ratio_ranges: Mapping[str, tuple[float, float]]

    @property
    def ratio_range(self) -> tuple[float, float]:
        """The planning range of the capacity-to-load ratio for this province's growth class."""
        return self.ratio_ranges[self.growth]


@dataclass(frozen=True)
class OpenCapacityConfig:
    """Default open-capacity thresholds and the provinces that override them."""

    default: OpenCapacityRules
    provinces: Mapping[str, OpenCapacityRules]

    def rules_for(self, province: str) -> OpenCapacityRules:
        """The thresholds of a province (as named by Rules.province), else the defaults."""
        return self.provinces.get(province, self.default)


def _rate(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        return f"must be a number in [0, 1], not {value!r}"
    return None


def _pair(value: Any, what: str, low: float, high: float, *, whole: bool = False) -> str | None:
    kinds = int if whole else int | float
    if (
        not isinstance(value, list)
        or len(value) != 2
        or any(isinstance(item, bool) or not isinstance(item, kinds) for item in value)
        or not low <= value[0] < value[1] <= high
    ):
        return f"must be [{what}] with {low:g} <= first < second <= {high:g}, not {value!r}"
    return None


def _growth(value: Any) -> str | None:
    if value not in GROWTH_CLASSES:
        return f"must be one of {list(GROWTH_CLASSES)}, not {value!r}"
    return None


OPEN_SPEC: Spec = {
    "pv": {
        "transformer_share": _fraction,
        "reverse_flow_share": _fraction,
        "min_load_days": _count,
        "daytime_points": lambda v: _pair(v, "first, last", 1, 96, whole=True),
        "grades": {"green_max": _rate, "yellow_max": _rate},
    },
    "capacity_to_load": {
        "voltage_kv": lambda v: _pair(v, "lowest, highest", 0, 1000),
        "growth": _growth,
        "ranges": {name: (lambda v: _pair(v, "low, high", 0, 100)) for name in GROWTH_CLASSES},
    },
}


def _open_rules(province: str, raw: Mapping[str, Any]) -> OpenCapacityRules:
    pv, ratio = raw["pv"], raw["capacity_to_load"]
    first, last = pv["daytime_points"]
    return OpenCapacityRules(
        province=province,
        pv_transformer_share=float(pv["transformer_share"]),
        pv_reverse_share=float(pv["reverse_flow_share"]),
        min_load_days=int(pv["min_load_days"]),
        daytime_points=(int(first), int(last)),
        green_max=float(pv["grades"]["green_max"]),
        yellow_max=float(pv["grades"]["yellow_max"]),
        ratio_voltage_kv=(float(ratio["voltage_kv"][0]), float(ratio["voltage_kv"][1])),
        growth=str(ratio["growth"]),
        ratio_ranges={name: (float(pair[0]), float(pair[1])) for name, pair in ratio["ranges"].items()},
    )


def read_open_capacity(
    document: Any, file: str, diag: Diagnostics, provinces: set[Any]
) -> OpenCapacityConfig | None:
    """The open_capacity section of rules.yaml (None when absent or wrong, wrongs recorded in diag).

    It has `defaults` (complete) and `provinces` (overrides, each naming a province of the main rules).
    """
    if OPEN_CAPACITY not in document:
        return None
    section = document[OPEN_CAPACITY]
    line = key_line(document, OPEN_CAPACITY)
    if not is_map(section) or "defaults" not in section:
        diag.error(f"{OPEN_CAPACITY} must be a map with defaults (and provinces)", file, line)
        return None
    before = len(diag.errors)
    for key in section:
        if key not in ("defaults", "provinces"):
            at = key_line(section, key)
            diag.error(f"unknown key {OPEN_CAPACITY}.{key}; expected defaults and provinces", file, at)
    _check(section["defaults"], OPEN_SPEC, file, diag, f"{OPEN_CAPACITY}.defaults", complete=True)
    overrides: Any = section.get("provinces")
    if overrides is None:
        overrides = {}
    elif not is_map(overrides):
        diag.error(f"{OPEN_CAPACITY}.provinces must be a map", file, key_line(section, "provinces"))
        overrides = {}
    for name in overrides:
        where = f"{OPEN_CAPACITY}.provinces.{name}"
        if name not in provinces:
            diag.error(
                f"{where}: no such province in provinces; known: {sorted(map(str, provinces))}",
                file,
                key_line(overrides, name),
            )
        _check(overrides[name], OPEN_SPEC, file, diag, where, complete=False)
    if len(diag.errors) > before:
        return None
    defaults = plain(section["defaults"])
    merged = {str(name): _merge(defaults, plain(node)) for name, node in overrides.items()}
    for name, raw in [(f"{OPEN_CAPACITY}.defaults", defaults), *merged.items()]:
        grades = raw["pv"]["grades"]
        if grades["green_max"] >= grades["yellow_max"]:
            node = section["defaults"] if name.endswith("defaults") else overrides[name]
            diag.error(f"{name}: pv.grades.green_max must be below yellow_max", file, line_of(node))
    if len(diag.errors) > before:
        return None
    return OpenCapacityConfig(
        default=_open_rules(DEFAULT_PROVINCE, defaults),
        provinces={name: _open_rules(name, raw) for name, raw in merged.items()},
    )
