"""Cross-system consistency rules (workflow/consistency.yaml) and the built-in checks they configure.

Each rule names one of the check kinds below, the rework cause it prevents (category), a message template
and its parameters; workflow/consistency_config.py reads them.

The checks are pure: they judge what an application and its customer record say against what the hub
knows of the grid (PMS) and of other open cases, given through a Knowledge. A check that lacks a fact it
needs (no district named, no coordinates, no grid loaded yet) finds nothing: a finding always shows two
values that disagree, never a guess.

Kinds:
- equipment_unknown: the customer's transformer district (TG_ID) names no PMS transformer, or one that is
  not in service;
- capacity_voltage_mismatch: the dedicated transformer's rated capacity or voltage in PMS differs from the
  customer's contract capacity or supply voltage in marketing;
- site_outside_supply_radius: the site lies farther from the named transformer than the supply radius of
  its voltage and area;
- industry_code_mismatch: the application's declared GB/T 4754 code differs from the customer record's;
- duplicate_application: another open application of the same business type for the same customer, the
  same site (within a distance) or the same normalised address.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from canonical_model.common import GeoPoint
from canonical_model.consistency import ConsistencyFinding, FindingValue
from canonical_model.customer import Customer

# Rework causes a stage visit can carry (stage_visits.exit_cause); a rule prevents one of them.
CATEGORIES = ("information_error", "documents_missing", "design_change", "grid_constraint")
AREAS = ("urban", "rural")
VOLTAGE_CLASSES = ("low_voltage", "high_voltage")
# Highest voltage supplied from a distribution transformer's low-voltage side, kV.
LOW_VOLTAGE_MAX_KV = 1.0
_EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True)
class TransformerFacts:
    """What PMS holds of a distribution transformer (from the grid projection)."""

    equipment_id: str
    status: str | None
    voltage_kv: float | None
    rated_capacity_kva: float | None
    ownership: str | None
    location: GeoPoint | None

    @classmethod
    def of_document(cls, equipment_id: str, document: Mapping[str, Any]) -> TransformerFacts:
        """From a DistributionTransformer document as the grid projection keeps it."""
        location = document.get("location")
        return cls(
            equipment_id=equipment_id,
            status=document.get("status"),
            voltage_kv=document.get("voltage_kv"),
            rated_capacity_kva=document.get("rated_capacity_kva"),
            ownership=document.get("ownership"),
            location=GeoPoint.model_validate(location) if location else None,
        )


class ApplicationSays(Protocol):
    """The fields the checks read, alike in a marketing record and in an online submission."""

    @property
    def customer_no(self) -> str | None: ...
    @property
    def business_type(self) -> StrEnum: ...
    @property
    def customer_class(self) -> StrEnum: ...
    @property
    def site_location(self) -> GeoPoint | None: ...
    @property
    def site_address(self) -> str | None: ...
    @property
    def industry_code(self) -> str | None: ...
    @property
    def requested_voltage_kv(self) -> float | None: ...
    @property
    def urban_rural(self) -> StrEnum | None: ...
    @property
    def org_no(self) -> str | None: ...


@dataclass(frozen=True)
class AppliedFacts:
    """What an application says; system is marketing for a record, submission for a pre-review."""

    system: str
    application_no: str | None
    customer_no: str | None
    business_type: str
    customer_class: str
    site_location: GeoPoint | None = None
    site_address: str | None = None
    industry_code: str | None = None
    requested_voltage_kv: float | None = None
    urban_rural: str | None = None
    org_no: str | None = None

    @classmethod
    def of(cls, application: ApplicationSays, *, system: str, application_no: str | None) -> AppliedFacts:
        """The facts of an application: a marketing record, or an online submission not yet numbered."""
        return cls(
            system=system,
            application_no=application_no,
            customer_no=application.customer_no,
            business_type=application.business_type.value,
            customer_class=application.customer_class.value,
            site_location=application.site_location,
            site_address=application.site_address,
            industry_code=application.industry_code,
            requested_voltage_kv=application.requested_voltage_kv,
            urban_rural=application.urban_rural.value if application.urban_rural else None,
            org_no=application.org_no,
        )


@dataclass(frozen=True)
class CustomerFacts:
    """What the customer record says; system is marketing, or submission for a customer registered with it."""

    system: str
    customer_no: str | None
    industry_code: str | None = None
    transformer_district_id: str | None = None
    contract_capacity_kva: float | None = None
    supply_voltage_kv: float | None = None
    urban_rural: str | None = None

    @classmethod
    def of_customer(cls, customer: Customer) -> CustomerFacts:
        """The facts of a marketing customer record."""
        return cls(
            system="marketing",
            customer_no=customer.customer_no,
            industry_code=customer.industry_code,
            transformer_district_id=customer.transformer_district_id,
            contract_capacity_kva=customer.contract_capacity_kva,
            supply_voltage_kv=customer.supply_voltage_kv,
            urban_rural=customer.urban_rural.value if customer.urban_rural else None,
        )


@dataclass(frozen=True)
class OpenCase:
    """What the duplicate check needs of another open application."""

    application_no: str
    customer_no: str
    business_type: str
    site_location: GeoPoint | None = None
    site_address: str | None = None

    @classmethod
    def of_document(cls, document: Mapping[str, Any]) -> OpenCase:
        """From a stored ConnectionApplication document, without validating all of it again."""
        location = document.get("site_location")
        return cls(
            application_no=document["application_no"],
            customer_no=document["customer_no"],
            business_type=document["business_type"],
            site_location=GeoPoint.model_validate(location) if location else None,
            site_address=document.get("site_address"),
        )


class Knowledge(Protocol):
    """What the hub knows beside the application: the PMS grid and the other open cases."""

    def holds_transformers(self) -> bool:
        """Whether the grid projection holds any distribution transformer yet."""

    def transformer_of_district(self, district_id: str) -> TransformerFacts | None:
        """The live PMS transformer linked to a marketing transformer district, or None."""

    def open_applications(
        self,
        *,
        customer_no: str | None,
        business_type: str,
        site: GeoPoint | None,
        within_m: float,
        address: str | None,
    ) -> Sequence[OpenCase]:
        """Open applications of a business type: of the customer, near the site, or at the same address.

        A superset is fine (the check judges each candidate); the point is never to read every open case.
        """


@dataclass(frozen=True)
class Disagreement:
    """What a check found: the systems, their values, and the facts its message template may name."""

    systems: tuple[str, ...]
    values: tuple[FindingValue, ...]
    facts: Mapping[str, str]


Check = Callable[["Rule", AppliedFacts, CustomerFacts | None, Knowledge], Disagreement | None]
ParamReader = Callable[[Any], Any]


@dataclass(frozen=True)
class Kind:
    """A built-in check kind: its parameters (name -> reader, default) and the fields a message may name."""

    check: Check
    params: Mapping[str, tuple[ParamReader, Any]]
    fields: frozenset[str]


@dataclass(frozen=True)
class Rule:
    """A configured rule."""

    name: str
    kind: str
    category: str
    message: str
    enabled: bool
    params: Mapping[str, Any] = field(default_factory=dict)

    def finding(self, disagreement: Disagreement, application_no: str | None) -> ConsistencyFinding:
        """The finding this rule reports for a disagreement."""
        return ConsistencyFinding(
            application_no=application_no,
            rule=self.name,
            kind=self.kind,
            category=self.category,
            systems=disagreement.systems,
            values=disagreement.values,
            message=self.message.format_map(disagreement.facts),
        )


@dataclass(frozen=True)
class ConsistencyConfig:
    """The configured rules, in file order."""

    rules: tuple[Rule, ...]

    @property
    def enabled(self) -> tuple[Rule, ...]:
        """The rules that run."""
        return tuple(rule for rule in self.rules if rule.enabled)

    def rule(self, name: str) -> Rule | None:
        """The rule with this name, or None."""
        return next((rule for rule in self.rules if rule.name == name), None)

    def check(
        self, applied: AppliedFacts, customer: CustomerFacts | None, knowledge: Knowledge
    ) -> list[ConsistencyFinding]:
        """Every finding of the enabled rules about an application."""
        findings = []
        for rule in self.enabled:
            disagreement = KINDS[rule.kind].check(rule, applied, customer, knowledge)
            if disagreement is not None:
                findings.append(rule.finding(disagreement, applied.application_no))
        return findings


def _show(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _differs(a: float, b: float, tolerance_pct: float) -> bool:
    return abs(a - b) > max(abs(a), abs(b)) * tolerance_pct / 100.0


def distance_m(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle distance between two WGS84 points, metres."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat = lat2 - lat1
    dlon = math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def address_key(address: str | None) -> str | None:
    """A fixed-length key of the normalised address, to find the same address through an index."""
    if not address:
        return None
    return hashlib.sha256(normalised_address(address).encode("utf-8")).hexdigest()


def normalised_address(address: str) -> str:
    """An address compared by its characters alone: full-width forms folded, spaces and punctuation gone."""
    folded = unicodedata.normalize("NFKC", address).casefold()
    return "".join(char for char in folded if char.isalnum())


def _district_value(customer: CustomerFacts) -> FindingValue:
    return FindingValue(
        system=customer.system,
        record="customer",
        field="transformer_district_id",
        value=customer.transformer_district_id,
    )


def _check_equipment_unknown(
    rule: Rule, applied: AppliedFacts, customer: CustomerFacts | None, knowledge: Knowledge
) -> Disagreement | None:
    if customer is None or customer.transformer_district_id is None or not knowledge.holds_transformers():
        return None
    district = customer.transformer_district_id
    transformer = knowledge.transformer_of_district(district)
    if transformer is not None and transformer.status in rule.params["in_service"]:
        return None
    status = transformer.status if transformer is not None else None
    return Disagreement(
        systems=(customer.system, "pms"),
        values=(
            _district_value(customer),
            FindingValue(system="pms", record="transformer", field="status", value=status),
        ),
        facts={
            "district": district,
            "transformer": transformer.equipment_id if transformer is not None else "-",
            "status": status or "unknown",
            "problem": "unknown to PMS" if transformer is None else f"{status} in PMS",
        },
    )


def _check_capacity_voltage(
    rule: Rule, applied: AppliedFacts, customer: CustomerFacts | None, knowledge: Knowledge
) -> Disagreement | None:
    if customer is None or customer.transformer_district_id is None:
        return None
    transformer = knowledge.transformer_of_district(customer.transformer_district_id)
    if transformer is None or transformer.ownership not in rule.params["ownership"]:
        return None
    values: list[FindingValue] = []
    differences: list[str] = []
    pairs = (
        ("contract_capacity_kva", customer.contract_capacity_kva, "rated_capacity_kva",
         transformer.rated_capacity_kva, rule.params["capacity_tolerance_pct"], "kVA"),
        ("supply_voltage_kv", customer.supply_voltage_kv, "voltage_kv",
         transformer.voltage_kv, rule.params["voltage_tolerance_pct"], "kV"),
    )  # fmt: skip
    for mine, ours, theirs_name, theirs, tolerance, unit in pairs:
        if ours is None or theirs is None or not _differs(ours, theirs, tolerance):
            continue
        values.append(FindingValue(system=customer.system, record="customer", field=mine, value=ours))
        values.append(FindingValue(system="pms", record="transformer", field=theirs_name, value=theirs))
        differences.append(f"{mine} {_show(ours)} {unit} vs PMS {_show(theirs)} {unit}")
    if not values:
        return None
    return Disagreement(
        systems=(customer.system, "pms"),
        values=(_district_value(customer), *values),
        facts={
            "district": customer.transformer_district_id,
            "transformer": transformer.equipment_id,
            "differences": "; ".join(differences),
        },
    )


def _voltage_class(applied: AppliedFacts, customer: CustomerFacts | None) -> str:
    voltage = (customer.supply_voltage_kv if customer else None) or applied.requested_voltage_kv
    if voltage is None:
        return "high_voltage" if applied.customer_class.startswith("hv_") else "low_voltage"
    return "low_voltage" if voltage <= LOW_VOLTAGE_MAX_KV else "high_voltage"


def _check_site_radius(
    rule: Rule, applied: AppliedFacts, customer: CustomerFacts | None, knowledge: Knowledge
) -> Disagreement | None:
    if applied.site_location is None or customer is None or customer.transformer_district_id is None:
        return None
    transformer = knowledge.transformer_of_district(customer.transformer_district_id)
    if transformer is None or transformer.location is None:
        return None
    area = applied.urban_rural or (customer.urban_rural if customer else None) or rule.params["default_area"]
    voltage_class = _voltage_class(applied, customer)
    radius = float(rule.params["radius_m"][voltage_class][area])
    distance = distance_m(applied.site_location, transformer.location)
    if distance <= radius:
        return None
    site = applied.site_location
    return Disagreement(
        systems=(applied.system, "pms"),
        values=(
            FindingValue(
                system=applied.system,
                record="application",
                field="site_location",
                value=f"{site.lon:.6f},{site.lat:.6f}",
                personal=True,
            ),
            _district_value(customer),
            FindingValue(
                system="pms",
                record="transformer",
                field="location",
                value=f"{transformer.location.lon:.6f},{transformer.location.lat:.6f}",
            ),
            FindingValue(system="hub", record="check", field="distance_m", value=round(distance)),
            FindingValue(system="hub", record="check", field="radius_m", value=radius),
        ),
        facts={
            "district": customer.transformer_district_id,
            "transformer": transformer.equipment_id,
            "distance_m": f"{distance:.0f}",
            "radius_m": _show(radius),
            "voltage_class": voltage_class,
            "area": area,
        },
    )


def _check_industry_code(
    rule: Rule, applied: AppliedFacts, customer: CustomerFacts | None, knowledge: Knowledge
) -> Disagreement | None:
    if customer is None or applied.industry_code is None or customer.industry_code is None:
        return None
    width = int(rule.params["compare_chars"])
    if applied.industry_code[:width] == customer.industry_code[:width]:
        return None
    return Disagreement(
        systems=tuple(dict.fromkeys((applied.system, customer.system))),
        values=(
            FindingValue(
                system=applied.system,
                record="application",
                field="industry_code",
                value=applied.industry_code,
            ),
            FindingValue(
                system=customer.system, record="customer", field="industry_code", value=customer.industry_code
            ),
        ),
        facts={"application_code": applied.industry_code, "customer_code": customer.industry_code},
    )


def _duplicate_reason(rule: Rule, applied: AppliedFacts, other: OpenCase) -> str | None:
    if rule.params["same_customer"] and applied.customer_no and other.customer_no == applied.customer_no:
        return "same customer"
    here, there = applied.site_location, other.site_location
    if here is not None and there is not None and distance_m(here, there) <= rule.params["distance_m"]:
        return "same site"
    if (
        rule.params["same_address"]
        and applied.site_address
        and other.site_address
        and normalised_address(applied.site_address) == normalised_address(other.site_address)
    ):
        return "same address"
    return None


def _check_duplicate(
    rule: Rule, applied: AppliedFacts, customer: CustomerFacts | None, knowledge: Knowledge
) -> Disagreement | None:
    candidates = knowledge.open_applications(
        customer_no=applied.customer_no if rule.params["same_customer"] else None,
        business_type=applied.business_type,
        site=applied.site_location,
        within_m=rule.params["distance_m"],
        address=applied.site_address if rule.params["same_address"] else None,
    )
    found: list[tuple[str, str]] = []
    for other in sorted(candidates, key=lambda item: item.application_no):
        if other.application_no == applied.application_no:
            continue
        if other.business_type != applied.business_type:
            continue
        reason = _duplicate_reason(rule, applied, other)
        if reason is not None:
            found.append((other.application_no, reason))
    if not found:
        return None
    values = [
        FindingValue(
            system=applied.system, record="application", field="site_address", value=applied.site_address,
            personal=True,
        ),
        *(
            FindingValue(system="marketing", record="application", field="application_no", value=number)
            for number, _ in found
        ),
    ]  # fmt: skip
    return Disagreement(
        systems=tuple(dict.fromkeys((applied.system, "marketing"))),
        values=tuple(values),
        facts={
            "others": ", ".join(number for number, _ in found),
            "reasons": ", ".join(dict.fromkeys(reason for _, reason in found)),
            "business_type": applied.business_type,
        },
    )


def _statuses(value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item for item in value):
        raise ValueError("must be a non-empty list of text")
    return frozenset(value)


def _percent(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ValueError("must be a number from 0 to 100")
    return float(value)


def _metres(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError("must be a positive number of metres")
    return float(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _chars(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise ValueError("must be a whole number from 1 (section letter) to 5 (class)")
    return int(value)


def _area(value: Any) -> str:
    if value not in AREAS:
        raise ValueError(f"must be one of: {', '.join(AREAS)}")
    return str(value)


def _radii(value: Any) -> dict[str, dict[str, float]]:
    shape = f"must map each of {', '.join(VOLTAGE_CLASSES)} to {{{': m, '.join(AREAS)}: m}}"
    if not isinstance(value, Mapping) or set(value) != set(VOLTAGE_CLASSES):
        raise ValueError(shape)
    radii: dict[str, dict[str, float]] = {}
    for voltage_class in VOLTAGE_CLASSES:
        by_area = value[voltage_class]
        if not isinstance(by_area, Mapping) or set(by_area) != set(AREAS):
            raise ValueError(shape)
        radii[voltage_class] = {area: _metres(by_area[area]) for area in AREAS}
    return radii


KINDS: dict[str, Kind] = {
    "equipment_unknown": Kind(
        _check_equipment_unknown,
        {"in_service": (_statuses, frozenset({"in_service"}))},
        frozenset({"district", "transformer", "status", "problem"}),
    ),
    "capacity_voltage_mismatch": Kind(
        _check_capacity_voltage,
        {
            "ownership": (_statuses, frozenset({"dedicated"})),
            "capacity_tolerance_pct": (_percent, 0.0),
            "voltage_tolerance_pct": (_percent, 5.0),
        },
        frozenset({"district", "transformer", "differences"}),
    ),
    "site_outside_supply_radius": Kind(
        _check_site_radius,
        {"radius_m": (_radii, None), "default_area": (_area, "rural")},
        frozenset({"district", "transformer", "distance_m", "radius_m", "voltage_class", "area"}),
    ),
    "industry_code_mismatch": Kind(
        _check_industry_code,
        {"compare_chars": (_chars, 5)},
        frozenset({"application_code", "customer_code"}),
    ),
    "duplicate_application": Kind(
        _check_duplicate,
        {"distance_m": (_metres, 30.0), "same_customer": (_flag, True), "same_address": (_flag, True)},
        frozenset({"others", "reasons", "business_type"}),
    ),
}
