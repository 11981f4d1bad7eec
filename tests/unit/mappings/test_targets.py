"""Introspection of canonical models for mapping validation."""

from __future__ import annotations

import pytest

from canonical_model.application import ConnectionApplication, Document
from canonical_model.common import GeoPoint
from mappings.targets import (
    TargetPathError,
    always_present,
    check_value,
    is_scalar,
    item_model,
    nested_model,
    required_fields,
    resolve,
)

FIELDS = ConnectionApplication.model_fields


def test_resolve_walks_nested_models() -> None:
    assert resolve(ConnectionApplication, ("site_location", "lat")) is GeoPoint.model_fields["lat"]
    assert nested_model(FIELDS["site_location"]) is GeoPoint
    assert item_model(FIELDS["documents"]) is Document
    assert nested_model(FIELDS["documents"]) is None and item_model(FIELDS["site_location"]) is None


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (("nope",), "ConnectionApplication (ConnectionApplication) has no field 'nope'"),
        (("site_location", "x"), "GeoPoint (site_location) has no field 'x'; fields: lon, lat"),
        (("documents", "name"), "'documents' is a list; map its items with 'each'"),
        (("org_no", "x"), "'org_no' is not an object"),
        ((), "empty target field path"),
    ],
)
def test_resolve_errors(path: tuple[str, ...], message: str) -> None:
    with pytest.raises(TargetPathError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(ConnectionApplication, path)


def test_field_kinds() -> None:
    assert is_scalar(FIELDS["customer_class"]) and is_scalar(FIELDS["application_no"])
    assert is_scalar(FIELDS["requested_voltage_kv"])
    assert not is_scalar(FIELDS["site_location"]) and not is_scalar(FIELDS["documents"])
    assert always_present(FIELDS["application_no"]) and always_present(FIELDS["importance_grade"])
    assert not always_present(FIELDS["org_no"])
    assert "channel" in required_fields(ConnectionApplication) and "org_no" not in required_fields(
        ConnectionApplication
    )


def test_check_value_applies_the_field_constraints() -> None:
    assert check_value(FIELDS["requested_voltage_kv"], 10) is None
    assert check_value(FIELDS["requested_voltage_kv"], -1) == "Input should be greater than 0"
    assert check_value(FIELDS["business_type"], "new_connection") is None
    assert "Input should be 'new_connection'" in (check_value(FIELDS["business_type"], "new") or "")
    assert check_value(FIELDS["source_refs"], [{"system": "s"}]) == (
        "0.record_type: Field required; 0.key: Field required"
    )
