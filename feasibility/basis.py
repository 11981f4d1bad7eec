"""The one low/high-voltage basis: the supply level a request needs, read by the engine and the workflow.

A request is low voltage when its customer class is a low-voltage one, its importance grade needs no
multi-source supply and its power (requested kVA x the configured power factor) is within the low-voltage
ceiling of its area: 160 kW urban, 100 kW rural (FACTS.md section 2 [V], feasibility/rules.yaml
voltage.lv_ceiling_kw). Otherwise it is high voltage, and a requested voltage is honoured only where it is
valid for the capacity. The workflow chooses the flow of the supply class this gives, so a request the
engine puts on 10 kV never follows a low-voltage flow.
"""

from __future__ import annotations

from dataclasses import dataclass

from canonical_model.application import CustomerClass, ImportanceGrade
from canonical_model.common import UrbanRural
from feasibility.config import Rules

HV_CLASSES = frozenset({CustomerClass.HV_SINGLE_SOURCE, CustomerClass.HV_DUAL_SOURCE})
# Below 1 kV is low voltage (0.22 and 0.38 kV).
LV_MAX_KV = 1.0


@dataclass(frozen=True)
class SupplyLevel:
    """The level a request needs: low voltage or not, why, and whether a requested voltage was honoured."""

    low_voltage: bool
    kw: float
    area: str
    reason: str
    requested_voltage_kv: float | None = None
    requested_valid: bool | None = None


def area_of(urban_rural: UrbanRural | None) -> str:
    """urban or rural; an unknown area counts as rural: the lower ceiling and the wider radius."""
    return urban_rural.value if urban_rural is not None else UrbanRural.RURAL.value


def requested_voltage_valid(rules: Rules, voltage_kv: float, kva: float, lv_possible: bool) -> bool:
    """Whether a requested voltage can carry the capacity: low voltage within the ceiling, or a configured
    band that holds the request."""
    if voltage_kv < LV_MAX_KV:
        return lv_possible
    return any(band.voltage_kv == voltage_kv and kva <= band.max_kva for band in rules.bands)


def supply_level(
    rules: Rules,
    customer_class: CustomerClass,
    importance_grade: ImportanceGrade,
    kva: float,
    urban_rural: UrbanRural | None,
    requested_voltage_kv: float | None = None,
) -> SupplyLevel:
    """The supply level of a request on the configured basis (kW with the power factor, per area)."""
    kw = kva * rules.power_factor
    area = area_of(urban_rural)
    ceiling = rules.lv_ceiling_kw[area]
    if customer_class in HV_CLASSES:
        lv_possible, reason = False, f"customer class {customer_class.value} is supplied at high voltage"
    elif importance_grade.value in rules.grade_sources:
        lv_possible, reason = False, f"importance grade {importance_grade.value} needs high-voltage sources"
    elif kw > ceiling:
        lv_possible, reason = False, f"{kw:.1f} kW > {ceiling:g} kW ({area} low-voltage ceiling)"
    else:
        lv_possible, reason = True, f"{kw:.1f} kW <= {ceiling:g} kW ({area} low-voltage ceiling)"
    if requested_voltage_kv is None:
        return SupplyLevel(lv_possible, kw, area, reason)
    valid = requested_voltage_valid(rules, requested_voltage_kv, kva, lv_possible)
    # A valid request is honoured: a small customer may ask for 10 kV, never a large one for 0.4 kV.
    low = requested_voltage_kv < LV_MAX_KV if valid else lv_possible
    return SupplyLevel(low, kw, area, reason, requested_voltage_kv, valid)


def supply_class(
    rules: Rules,
    customer_class: CustomerClass,
    importance_grade: ImportanceGrade,
    kva: float,
    urban_rural: UrbanRural | None,
    requested_voltage_kv: float | None = None,
) -> CustomerClass:
    """The class whose process the request follows: its own, or the high-voltage class its level needs
    (dual source where its importance grade asks for more than one source)."""
    level = supply_level(rules, customer_class, importance_grade, kva, urban_rural, requested_voltage_kv)
    # A high-voltage class is never moved down: its level is high voltage whatever it asks for.
    if level.low_voltage or customer_class in HV_CLASSES:
        return customer_class
    if importance_grade.value in rules.grade_sources:
        return CustomerClass.HV_DUAL_SOURCE
    return CustomerClass.HV_SINGLE_SOURCE
