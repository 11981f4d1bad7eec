"""Every coded field of the marketing mappings: an unknown code is an invalid record naming field and value,
never a silent null; TRADE_CODE is checked against the GB/T 4754 code pattern; every table reads back."""

from __future__ import annotations

import pytest

from adapters.marketing.outbound import ReverseCodes
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


@pytest.mark.parametrize(
    ("source", "field", "table"),
    [
        ("BUSI_TYPE_CODE", "business_type", "busi_type_code"),
        ("VOLT_CODE", "requested_voltage_kv", "volt_code"),
        ("CUST_CLASS_CODE", "customer_class", "cust_class_code"),
        ("IMPORTANCE_CODE", "importance_grade", "importance_code"),
        ("CHANNEL_CODE", "channel", "channel_code"),
        ("STATUS_CODE", "stage", "status_code"),
        ("RETURN_REASON_CODE", "rework_cause", "return_reason_code"),
        ("URBAN_RURAL_FLAG", "urban_rural", "urban_rural_flag"),
        ("LOAD_TYPE", "load_type", "load_type_code"),
    ],
)
def test_an_unknown_application_code_names_field_source_and_value(
    mappings: dict[str, Mapping], source: str, field: str, table: str
) -> None:
    with pytest.raises(MappingError) as raised:
        mappings["marketing/application"].apply(application_record(**{source: "ZZ9"}))
    error = raised.value
    assert (error.field, error.source_path, error.value) == (field, source, "ZZ9")
    assert f"unknown code in table marketing/{table}: 'ZZ9'" in str(error)
    assert str(error).startswith("mappings/marketing/application.yaml:")


@pytest.mark.parametrize(
    ("source", "field", "table"),
    [
        ("ELEC_TYPE_CODE", "category", "elec_type_code"),
        ("VOLT_CODE", "supply_voltage_kv", "volt_code"),
        ("URBAN_RURAL_FLAG", "urban_rural", "urban_rural_flag"),
        ("CERT_TYPE_CODE", "identity_document.type", "cert_type_code"),
    ],
)
def test_an_unknown_customer_code_names_field_source_and_value(
    mappings: dict[str, Mapping], source: str, field: str, table: str
) -> None:
    with pytest.raises(MappingError) as raised:
        mappings["marketing/customer"].apply(customer_record(**{source: "ZZ9"}))
    assert (raised.value.field, raised.value.source_path, raised.value.value) == (field, source, "ZZ9")
    assert f"unknown code in table marketing/{table}" in str(raised.value)


def test_a_document_flag_that_is_no_code_names_the_list_item(mappings: dict[str, Mapping]) -> None:
    documents = [{"DOC_TYPE_CODE": "01", "DOC_NAME": "身份证明", "RECEIVED_FLAG": "Y"}]
    with pytest.raises(MappingError) as raised:
        mappings["marketing/application"].apply(application_record(DOCUMENTS=documents))
    assert (raised.value.field, raised.value.value) == ("documents[0].received", "Y")


@pytest.mark.parametrize("trade_code", ["C1711", "A01", "H6210", "Q8411", "T9700"])
def test_trade_codes_of_gb_t_4754_pass(mappings: dict[str, Mapping], trade_code: str) -> None:
    mapped = mappings["marketing/customer"].apply(customer_record(TRADE_CODE=trade_code))
    assert mapped["industry_code"] == trade_code


@pytest.mark.parametrize("trade_code", ["6210", "Z1234", "C1", "C12345", "c1711"])
def test_a_trade_code_outside_gb_t_4754_names_field_source_and_value(
    mappings: dict[str, Mapping], trade_code: str
) -> None:
    with pytest.raises(SchemaViolationError) as raised:
        mappings["marketing/customer"].apply(customer_record(TRADE_CODE=trade_code))
    message = str(raised.value)
    assert "field 'industry_code' (source TRADE_CODE)" in message
    assert repr(trade_code) in message


def test_every_marketing_code_table_reads_back_one_to_one() -> None:
    codes = load_code_tables(PROJECT_ROOT / "mappings" / "codes", root=PROJECT_ROOT)
    reverse = ReverseCodes(codes)
    for table in codes:
        if table.name.startswith("marketing/"):
            for code, value in table.codes.items():
                assert reverse.code(table.name, value, field="f") == code
