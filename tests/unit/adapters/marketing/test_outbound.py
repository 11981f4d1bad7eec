"""Tests of writing canonical values as marketing codes: the code tables in reverse, submissions, times."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.marketing.outbound import (
    NoLegacyCodeError,
    ReverseCodes,
    default_codes,
    legacy_time,
    submission_arguments,
)
from ground.errors import ConfigError
from mappings.codes import load_code_tables

REQUEST: dict[str, Any] = {
    "business_type": "capacity_increase",
    "requested_capacity_kva": 630.0,
    "requested_voltage_kv": 10.0,
    "customer_class": "hv_single_source",
    "importance_grade": "second",
    "site_address": "南阳市宛城区工业路9号",
    "site_location": {"lon": 112.55, "lat": 33.01},
    "channel": "online",
    "org_no": "41402",
    "urban_rural": "urban",
    "documents": [{"doc_type": "03", "name": "营业执照", "received": True}],
    "customer_no": "4130012345",
}


@pytest.fixture(scope="module")
def codes() -> ReverseCodes:
    return default_codes()


@pytest.mark.parametrize(
    ("table", "value", "code"),
    [
        ("marketing/volt_code", 10, "AC00101"),
        ("marketing/volt_code", 0.38, "AC03802"),
        ("marketing/status_code", "energisation", "09"),
        ("marketing/flag", True, "1"),
        ("marketing/flag", False, "0"),
        ("marketing/cert_type_code", "business_licence", "02"),
        ("marketing/elec_type_code", "agricultural", "400"),
    ],
)
def test_codes_are_found_by_canonical_value(
    codes: ReverseCodes, table: str, value: object, code: str
) -> None:
    assert codes.code(table, value, field="f") == code


def test_a_value_without_a_code_names_field_value_and_table(codes: ReverseCodes) -> None:
    with pytest.raises(
        NoLegacyCodeError, match=r"field 'requested_voltage_kv': no code in table marketing/volt_code for 20"
    ):
        codes.code("marketing/volt_code", 20, field="requested_voltage_kv")
    with pytest.raises(ConfigError, match="code table marketing/nothing is not loaded"):
        codes.code("marketing/nothing", "x", field="f")


def test_a_table_that_cannot_be_read_back_is_a_config_error(tmp_path: Path) -> None:
    folder = tmp_path / "codes" / "marketing"
    folder.mkdir(parents=True)
    (folder / "dup.yaml").write_text(
        'table: marketing/dup\ndescription: two codes, one value\ncodes:\n  "1": true\n  "Y": true\n',
        encoding="utf-8",
    )
    tables = load_code_tables(tmp_path / "codes", root=tmp_path)
    with pytest.raises(ConfigError, match=r"dup\.yaml:5: marketing/dup: codes '1' and 'Y' both mean True"):
        ReverseCodes(tables)


def test_an_existing_customers_application(codes: ReverseCodes) -> None:
    assert submission_arguments(REQUEST, codes) == {
        "application": {
            "CONS_NO": "4130012345",
            "BUSI_TYPE_CODE": "111",
            "APPLY_CAP": 630.0,
            "CUST_CLASS_CODE": "03",
            "IMPORTANCE_CODE": "03",
            "ELEC_ADDR": "南阳市宛城区工业路9号",
            "LONGITUDE": 112.55,
            "LATITUDE": 33.01,
            "CHANNEL_CODE": "02",
            "ORG_NO": "41402",
            "DOCUMENTS": [{"DOC_TYPE_CODE": "03", "DOC_NAME": "营业执照", "RECEIVED_FLAG": "1"}],
            "VOLT_CODE": "AC00101",
            "URBAN_RURAL_FLAG": "1",
        }
    }


def test_a_charging_pile_is_forwarded_with_its_load_type_code(codes: ReverseCodes) -> None:
    pile = {**REQUEST, "customer_class": "lv_residential", "load_type": "ev_charging"}
    assert submission_arguments(pile, codes)["application"]["LOAD_TYPE"] == "01"
    assert (
        submission_arguments({**REQUEST, "load_type": "general"}, codes)["application"]["LOAD_TYPE"] == "00"
    )


def test_a_new_customers_application(codes: ReverseCodes) -> None:
    request = {key: value for key, value in REQUEST.items() if key not in ("customer_no", "site_location")}
    request["customer"] = {
        "name": "南阳宛东纺织有限公司",
        "category": "large_industry",
        "industry_code": "C1711",
        "identity_document": {"type": "business_licence", "number": "91411302MA3X123456"},
        "contacts": [{"name": "李明", "phone": "13803770001", "role": "01"}],
    }
    arguments = submission_arguments(request, codes)
    assert "CONS_NO" not in arguments["application"] and "LONGITUDE" not in arguments["application"]
    assert arguments["customer"] == {
        "CONS_NAME": "南阳宛东纺织有限公司",
        "ELEC_TYPE_CODE": "300",
        "TRADE_CODE": "C1711",
        "CERT_TYPE_CODE": "02",
        "CERT_NO": "91411302MA3X123456",
        "CONTACTS": [{"CONTACT_NAME": "李明", "MOBILE": "13803770001", "CONTACT_TYPE": "01"}],
    }


def test_times_are_written_in_shanghai_local_time() -> None:
    assert legacy_time(datetime(2026, 12, 1, 1, 30, tzinfo=UTC)) == "2026-12-01 09:30:00"
    with pytest.raises(ConfigError, match="naive time"):
        legacy_time(datetime(2026, 12, 1, 1, 30))
