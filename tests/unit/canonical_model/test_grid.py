"""The grid models: units and links in their fields, and the exported schemas agree with pydantic."""

from __future__ import annotations

import pydantic
import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from canonical_model.grid import DistributionTransformer, EquipmentDeletion, GridEquipment
from canonical_model.registry import build_all

TRANSFORMER = {
    "transformer_id": "PB0000042",
    "name": "人民路12号公变",
    "status": "in_service",
    "rated_capacity_kva": 400.0,
    "transformer_district_id": "TG0012345",
    "location": {"lon": 112.528, "lat": 32.991},
    "commissioned_on": "2015-06-30",
    "updated_at": "2026-11-26T10:00:00+08:00",
}


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"rated_capacity_kva": 0},
        {"status": "scrapped"},
        {"ownership": "shared"},
        {"location": {"lon": 112.5}},
        {"updated_at": "2026-11-26 10:00:00"},
        {"commissioned_on": "30/06/2015"},
        {"rated_kva": 400},
    ],
)
def test_pydantic_and_json_schema_agree_on_distribution_transformers(overrides: dict[str, object]) -> None:
    document = {**TRANSFORMER, **overrides}
    schema = build_all()["distribution_transformer.v1"]
    checker = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    try:
        DistributionTransformer.model_validate(document)
        model_ok = True
    except pydantic.ValidationError:
        model_ok = False
    assert checker.is_valid(document) == model_ok == (overrides == {})


def test_kinds_are_lower_case_words() -> None:
    GridEquipment.model_validate(
        {"equipment_id": "KG1", "kind": "tie_switch", "name": "开关", "status": "in_service"}
    )
    with pytest.raises(pydantic.ValidationError):
        EquipmentDeletion.model_validate(
            {"equipment_id": "KG1", "kind": "Tie Switch", "detected_at": "2026-11-26T10:00:00+08:00"}
        )


def test_the_marketing_link_is_documented_in_the_schema() -> None:
    field = build_all()["distribution_transformer.v1"]["properties"]["transformer_district_id"]
    assert "TG_ID" in field["description"] and "PMS_EQUIP_ID" in field["description"]
