"""Unit conversion factors and the field-name suffix convention."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mappings.units import UnitError, conversion_factor, convert, unit_of_field


@pytest.mark.parametrize(
    ("field", "unit"),
    [
        ("capacity_kva", "kVA"),
        ("load_kw", "kW"),
        ("voltage_kv", "kV"),
        ("rated_mva", "MVA"),
        ("allowed_a", "A"),
    ],
)
def test_the_field_name_suffix_gives_the_unit(field: str, unit: str) -> None:
    assert unit_of_field(field) == unit


@pytest.mark.parametrize("field", ["capacity", "name_x", "kva"])
def test_a_field_without_a_unit_suffix_is_rejected(field: str) -> None:
    with pytest.raises(UnitError, match="does not end in a unit suffix"):
        unit_of_field(field)


@pytest.mark.parametrize(
    ("source", "target", "factor"),
    [
        ("MW", "kW", 1000),
        ("MVA", "kVA", 1000),
        ("kW", "kW", 1),
        ("kV", "kV", 1),
        ("A", "A", 1),
        ("V", "kV", "0.001"),
    ],
)
def test_factors(source: str, target: str, factor: object) -> None:
    assert conversion_factor(source, target) == Decimal(str(factor))


def test_conversions_between_dimensions_or_to_unknown_units_fail() -> None:
    with pytest.raises(UnitError, match=r"cannot convert MW \(active power\) to kVA \(apparent power\)"):
        conversion_factor("MW", "kVA")
    with pytest.raises(UnitError, match="unknown unit 'mw'"):
        conversion_factor("mw", "kW")


def test_convert_is_exact_for_decimal_inputs() -> None:
    assert convert(1.1, Decimal(1000)) == 1100.0
    assert convert(0.38, Decimal("0.001")) == 0.00038
    assert convert(630.0, Decimal(1)) == 630.0
