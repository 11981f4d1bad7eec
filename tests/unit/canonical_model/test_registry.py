"""The committed JSON Schemas are exactly what the models export, and they agree with pydantic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from jsonschema import Draft202012Validator

from canonical_model import ConnectionApplication, Customer
from canonical_model.registry import MODELS, SCHEMA_DIR, build_all, export, render


@pytest.mark.parametrize("name", [name for _, name in MODELS.values()])
def test_committed_schema_matches_the_model(name: str) -> None:
    committed = (SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8")
    assert committed == render(build_all()[name]), (
        f"canonical_model/schemas/{name}.json drifted from the model: run `yekuo schemas export`"
    )


def test_no_stale_schema_files_are_committed() -> None:
    expected = {f"{name}.json" for _, name in MODELS.values()}
    assert {path.name for path in SCHEMA_DIR.glob("*.json")} == expected


def test_export_writes_every_schema(tmp_path: Path) -> None:
    written = export(tmp_path)
    assert sorted(path.name for path in written) == sorted(f"{name}.json" for _, name in MODELS.values())


@pytest.mark.parametrize("name", [name for _, name in MODELS.values()])
def test_schemas_are_valid_draft_2020_12(name: str) -> None:
    schema = build_all()[name]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def _application(**overrides: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "application_no": "2611200001234",
        "business_type": "new_connection",
        "customer_no": "4130012345",
        "requested_capacity_kva": 630.0,
        "customer_class": "hv_single_source",
        "channel": "online",
        "submitted_at": datetime(2026, 11, 20, 1, 13, 5, tzinfo=UTC).isoformat(),
        "updated_at": datetime(2026, 11, 20, 1, 13, 5, tzinfo=UTC).isoformat(),
    }
    doc.update(overrides)
    return doc


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"requested_capacity_kva": 0},
        {"requested_capacity_kva": -5},
        {"business_type": "bribe"},
        {"submitted_at": "2026-11-20 09:13:05"},
        {"site_location": {"lon": 200, "lat": 33}},
        {"surplus": 1},
        {"customer_no": ""},
    ],
)
def test_pydantic_and_json_schema_agree_on_applications(overrides: dict[str, object]) -> None:
    document = _application(**overrides)
    schema = build_all()["application.v1"]
    schema_ok = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).is_valid(
        document
    )
    try:
        ConnectionApplication.model_validate(document)
        model_ok = True
    except ValueError:
        model_ok = False
    assert schema_ok == model_ok == (overrides == {})


def test_customer_pii_fields_are_marked_in_the_schema() -> None:
    schema = build_all()["customer.v1"]
    defs = schema["$defs"]
    assert defs["IdentityDocument"]["properties"]["number"]["x-pii"] is True
    assert defs["BankAccount"]["properties"]["account_no"]["x-pii"] is True
    assert defs["Contact"]["properties"]["phone"]["x-pii"] is True
    assert "x-pii" not in schema["properties"]["name"]
    Customer.model_validate({"customer_no": "1", "name": "张三", "category": "residential"})


def test_date_time_format_is_actually_checked() -> None:
    # jsonschema ignores "date-time" unless rfc3339-validator is installed; this guards that dependency.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            "yesterday", {"type": "string", "format": "date-time"}, format_checker=jsonschema.FormatChecker()
        )
