"""Unit conversion for mapped numbers: source unit from the mapping, target unit from the field name."""

from __future__ import annotations

from decimal import Decimal

# unit -> (dimension, factor to the dimension's base unit)
UNITS: dict[str, tuple[str, Decimal]] = {
    "VA": ("apparent power", Decimal(1)),
    "kVA": ("apparent power", Decimal(1000)),
    "MVA": ("apparent power", Decimal(1000000)),
    "W": ("active power", Decimal(1)),
    "kW": ("active power", Decimal(1000)),
    "MW": ("active power", Decimal(1000000)),
    "V": ("voltage", Decimal(1)),
    "kV": ("voltage", Decimal(1000)),
    "A": ("current", Decimal(1)),
    "kA": ("current", Decimal(1000)),
    "kWh": ("energy", Decimal(1000)),
    "MWh": ("energy", Decimal(1000000)),
}

# Canonical field names end in their unit (`capacity_kva`, `load_kw`); the suffix says the target unit.
SUFFIXES: dict[str, str] = {unit.lower(): unit for unit in UNITS}


class UnitError(ValueError):
    """A conversion that cannot be configured: unknown unit, no unit suffix, or different dimensions."""


def unit_of_field(field_name: str) -> str:
    """The unit a canonical field is expressed in, from its name suffix."""
    _, sep, suffix = field_name.rpartition("_")
    if not sep or suffix not in SUFFIXES:
        known = ", ".join(f"_{s}" for s in SUFFIXES)
        raise UnitError(f"field '{field_name}' does not end in a unit suffix ({known})")
    return SUFFIXES[suffix]


def conversion_factor(source_unit: str, target_unit: str) -> Decimal:
    """The factor that turns a value in source_unit into target_unit."""
    if source_unit not in UNITS:
        raise UnitError(f"unknown unit '{source_unit}'; known units: {', '.join(UNITS)}")
    source_dim, source_factor = UNITS[source_unit]
    target_dim, target_factor = UNITS[target_unit]
    if source_dim != target_dim:
        raise UnitError(f"cannot convert {source_unit} ({source_dim}) to {target_unit} ({target_dim})")
    return source_factor / target_factor


def convert(value: float, factor: Decimal) -> float:
    """value x factor, computed in decimal so that 1.1 MVA is 1100 kVA and not 1100.0000000000002."""
    if factor == 1:
        return value
    return float(Decimal(repr(value)) * factor)
