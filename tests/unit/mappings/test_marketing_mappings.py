"""The shipped marketing mappings turn records in the legacy layout into the expected canonical documents."""

from __future__ import annotations

import pytest

from canonical_model.application import ConnectionApplication, LoadType
from ground.errors import MappingError, SchemaViolationError
from ground.settings import PROJECT_ROOT
from mappings.codes import load_code_tables
from mappings.engine import Mapping
from mappings.loader import load_mappings
from tests.unit.mappings.samples import application_record, customer_record


@pytest.fixture(scope="module")
def mappings() -> dict[str, Mapping]:
    codes = load_code_tables(PROJECT_ROOT / "mappings" / "codes", root=PROJECT_ROOT)
    return load_mappings(PROJECT_ROOT / "mappings", codes, root=PROJECT_ROOT)


def test_the_shipped_mappings_are_the_two_marketing_ones(mappings: dict[str, Mapping]) -> None:
    assert sorted(m for m in mappings if m.startswith("marketing/")) == [
        "marketing/application",
        "marketing/customer",
    ]
    assert mappings["marketing/application"].schema_name == "application.v1"
    assert mappings["marketing/customer"].schema_name == "customer.v1"


def test_application_record(mappings: dict[str, Mapping]) -> None:
    assert mappings["marketing/application"].apply(application_record()) == {
        "application_no": "2611200001234",
        "business_type": "new_connection",
        "customer_no": "4130012345",
        "requested_capacity_kva": 630.0,
        "requested_voltage_kv": 10.0,
        "customer_class": "hv_single_source",
        "importance_grade": "first",
        "site_location": {"lon": 112.53, "lat": 32.99},
        "site_address": "南阳市卧龙区车站南路18号",
        "channel": "service_hall",
        "submitted_at": "2026-11-20T09:13:05+08:00",
        "updated_at": "2026-11-21T16:40:00+08:00",
        "legacy_status": "01",
        "stage": "acceptance",
        "org_no": "41401",
        "urban_rural": "urban",
        "load_type": "general",
        "documents": [
            {"doc_type": "001", "name": "营业执照", "received": True},
            {"doc_type": "007", "name": "用电设备清单", "received": False},
        ],
        "source_refs": [{"system": "marketing", "record_type": "application", "key": "2611200001234"}],
    }


def test_sparse_application_record(mappings: dict[str, Mapping]) -> None:
    record = application_record(
        APP_NO="2611200009999",
        BUSI_TYPE_CODE="111",
        APPLY_CAP=8.0,
        VOLT_CODE="AC02202",
        CUST_CLASS_CODE="01",
        IMPORTANCE_CODE=None,
        ELEC_ADDR="",
        LONGITUDE=None,
        LATITUDE=None,
        CHANNEL_CODE="03",
        STATUS_CODE=None,
        ORG_NO="  ",
        URBAN_RURAL_FLAG="2",
        DOCUMENTS=[],
    )
    assert mappings["marketing/application"].apply(record) == {
        "application_no": "2611200009999",
        "business_type": "capacity_increase",
        "customer_no": "4130012345",
        "requested_capacity_kva": 8.0,
        "requested_voltage_kv": 0.22,
        "customer_class": "lv_residential",
        "importance_grade": "none",
        "channel": "mobile_app",
        "submitted_at": "2026-11-20T09:13:05+08:00",
        "updated_at": "2026-11-21T16:40:00+08:00",
        "urban_rural": "rural",
        "load_type": "general",
        "documents": [],
        "source_refs": [{"system": "marketing", "record_type": "application", "key": "2611200009999"}],
    }


def test_customer_record(mappings: dict[str, Mapping]) -> None:
    assert mappings["marketing/customer"].apply(customer_record()) == {
        "customer_no": "4130012345",
        "name": "南阳市宛城区李记餐馆",
        "category": "general_commercial",
        "industry_code": "H6210",
        "address": "南阳市宛城区仲景路66号",
        "location": {"lon": 112.55, "lat": 33.0},
        "supply_voltage_kv": 0.38,
        "contract_capacity_kva": 50.0,
        "org_no": "41402",
        "urban_rural": "urban",
        "transformer_district_id": "TG0012345",
        "contacts": [
            {"name": "李明", "phone": "13803770001", "role": "01"},
            {"name": "王芳", "phone": "13903770002"},
        ],
        "identity_document": {"type": "business_licence", "number": "91411302MA3X123456"},
        "bank_account": {"bank": "中国工商银行南阳分行", "account_no": "6222021712000123456"},
        "source_refs": [{"system": "marketing", "record_type": "customer", "key": "4130012345"}],
    }


def test_sparse_customer_record(mappings: dict[str, Mapping]) -> None:
    record = customer_record(
        ELEC_TYPE_CODE="100",
        TRADE_CODE=None,
        VOLT_CODE="AC02202",
        CONTRACT_CAP=None,
        TG_ID=None,
        LONGITUDE=None,
        LATITUDE=None,
        CERT_TYPE_CODE="01",
        CERT_NO="411302199001011234",
        BANK_NAME=None,
        BANK_ACCT=None,
        CONTACTS=[],
    )
    assert mappings["marketing/customer"].apply(record) == {
        "customer_no": "4130012345",
        "name": "南阳市宛城区李记餐馆",
        "category": "residential",
        "address": "南阳市宛城区仲景路66号",
        "supply_voltage_kv": 0.22,
        "org_no": "41402",
        "urban_rural": "urban",
        "contacts": [],
        "identity_document": {"type": "resident_id", "number": "411302199001011234"},
        "source_refs": [{"system": "marketing", "record_type": "customer", "key": "4130012345"}],
    }


def test_legacy_mistakes_become_invalid_record_errors(mappings: dict[str, Mapping]) -> None:
    application = mappings["marketing/application"]
    with pytest.raises(MappingError, match="unknown code in table marketing/volt_code: 'AC99999'"):
        application.apply(application_record(VOLT_CODE="AC99999"))
    with pytest.raises(
        MappingError, match="field 'channel' \\(source CHANNEL_CODE\\): required value is missing"
    ):
        application.apply(application_record(CHANNEL_CODE=None))
    with pytest.raises(MappingError, match=r"field 'documents\[0\]\.received'"):
        application.apply(
            application_record(DOCUMENTS=[{"DOC_TYPE_CODE": "1", "DOC_NAME": "x", "RECEIVED_FLAG": "Y"}])
        )
    with pytest.raises(SchemaViolationError, match="field 'industry_code' \\(source TRADE_CODE\\)"):
        mappings["marketing/customer"].apply(customer_record(TRADE_CODE="6210"))


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        ("01", "information_error"),
        ("02", "documents_missing"),
        ("03", "design_change"),
        ("04", "grid_constraint"),
    ],
)
def test_a_return_reason_becomes_the_rework_cause(
    mappings: dict[str, Mapping], code: str, cause: str
) -> None:
    mapped = mappings["marketing/application"].apply(application_record(RETURN_REASON_CODE=code))
    assert mapped["rework_cause"] == cause


def test_no_return_reason_leaves_the_rework_cause_out(mappings: dict[str, Mapping]) -> None:
    for record in (application_record(), application_record(RETURN_REASON_CODE=None)):
        assert "rework_cause" not in mappings["marketing/application"].apply(record)


@pytest.mark.parametrize(("code", "stage"), [("11", "withdrawn"), ("12", "cancelled")])
def test_withdrawn_and_cancelled_statuses_map_to_the_closing_stages(
    mappings: dict[str, Mapping], code: str, stage: str
) -> None:
    mapped = mappings["marketing/application"].apply(application_record(STATUS_CODE=code))
    assert (mapped["legacy_status"], mapped["stage"]) == (code, stage)


def test_the_application_s_declared_trade_code_becomes_its_industry_code(
    mappings: dict[str, Mapping],
) -> None:
    application = mappings["marketing/application"]
    assert application.apply(application_record(TRADE_CODE="C1711"))["industry_code"] == "C1711"
    assert "industry_code" not in application.apply(application_record())
    with pytest.raises(SchemaViolationError, match="field 'industry_code' \\(source TRADE_CODE\\)"):
        application.apply(application_record(TRADE_CODE="1711"))


def test_a_temporary_supply_s_end_date_becomes_temporary_until(mappings: dict[str, Mapping]) -> None:
    application = mappings["marketing/application"]
    mapped = application.apply(application_record(BUSI_TYPE_CODE="105", TEMP_END_DATE="2027-04-19"))
    assert (mapped["business_type"], mapped["temporary_until"]) == ("temporary_supply", "2027-04-19")
    assert "temporary_until" not in application.apply(application_record())
    with pytest.raises(SchemaViolationError, match="field 'temporary_until' \\(source TEMP_END_DATE\\)"):
        application.apply(application_record(BUSI_TYPE_CODE="105", TEMP_END_DATE="19/04/2027"))


@pytest.mark.parametrize(
    ("code", "business_type"),
    [("115", "suspension"), ("211", "relocation"), ("201", "name_change"), ("217", "tariff_change")],
)
def test_the_business_types_of_the_supply_rules_are_mapped(
    mappings: dict[str, Mapping], code: str, business_type: str
) -> None:
    mapped = mappings["marketing/application"].apply(application_record(BUSI_TYPE_CODE=code))
    assert mapped["business_type"] == business_type


@pytest.mark.parametrize(
    ("code", "load_type"), [("00", "general"), ("01", "ev_charging"), ("02", "heat_pump"), (None, "general")]
)
def test_the_stated_load_type_is_mapped_and_an_empty_one_is_general(
    mappings: dict[str, Mapping], code: str | None, load_type: str
) -> None:
    mapped = mappings["marketing/application"].apply(application_record(LOAD_TYPE=code))
    assert mapped["load_type"] == load_type
    assert ConnectionApplication.model_validate(mapped).load_type == LoadType(load_type)
