"""Tests of the legacy record layout: a pushed record reads the same as the listed one, groups for zeep."""

from __future__ import annotations

from datetime import datetime

import pytest
from lxml import etree

from adapters.marketing.legacy import (
    APPLICATION_FIELDS,
    CUSTOMER_FIELDS,
    record_from_xml,
    zeep_arguments,
)
from ground.errors import MalformedInputError
from simulators.marketing.contract import NAMESPACE
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from simulators.marketing.service import append_record
from simulators.marketing.world import APPLICATION_FIELDS as WORLD_APPLICATION_FIELDS
from simulators.marketing.world import CUSTOMER_FIELDS as WORLD_CUSTOMER_FIELDS
from tests.unit.adapters.marketing.conftest import quick_client

START = datetime(2026, 11, 2, 8, 30)


def _element(name: str, row: dict[str, object], fields: tuple[str, ...]) -> etree._Element:
    parent = etree.Element("parent")
    append_record(parent, name, row, fields, NAMESPACE)
    return parent[0]


def test_the_layout_is_the_marketing_systems() -> None:
    assert APPLICATION_FIELDS == WORLD_APPLICATION_FIELDS
    assert CUSTOMER_FIELDS == WORLD_CUSTOMER_FIELDS


def test_records_read_from_xml_equal_the_records_zeep_reads() -> None:
    world = generate_world(seed=51, customers=30, applications=60, start=START)
    first = world.all_applications()[0]["APP_NO"]
    world.apply_change(first, {"ELEC_ADDR": None, "LONGITUDE": None, "LATITUDE": None, "DOCUMENTS": []})
    with SimulatorServer(world) as server:
        client = quick_client(server.wsdl_url)
        listed = client.list_changed_applications(None, 100).applications
        customers = client.get_customers([row["CONS_NO"] for row in listed])
    for row in listed:
        assert (
            record_from_xml(_element("application", row, APPLICATION_FIELDS), APPLICATION_FIELDS, NAMESPACE)
            == row
        )
    for row in customers:
        assert record_from_xml(_element("customer", row, CUSTOMER_FIELDS), CUSTOMER_FIELDS, NAMESPACE) == row


@pytest.mark.parametrize(
    ("inner", "message"),
    [
        ("<m:SURPRISE>1</m:SURPRISE>", "unexpected element"),
        ('<x:APP_NO xmlns:x="urn:other">1</x:APP_NO>', "unexpected element"),
        ("<m:APPLY_CAP>lots</m:APPLY_CAP>", "APPLY_CAP is not a number: 'lots'"),
    ],
)
def test_a_record_out_of_layout_is_malformed(inner: str, message: str) -> None:
    element = etree.fromstring(f'<m:application xmlns:m="{NAMESPACE}">{inner}</m:application>')
    with pytest.raises(MalformedInputError, match=message):
        record_from_xml(element, APPLICATION_FIELDS, NAMESPACE)


def test_zeep_arguments_wrap_groups_and_leave_out_absent_values() -> None:
    arguments = {
        "requestId": "r-1",
        "application": {
            "APPLY_CAP": 8.0,
            "VOLT_CODE": None,
            "DOCUMENTS": [{"DOC_NAME": "x", "DOC_TYPE_CODE": None}],
        },
        "customer": {"CONTACTS": [{"MOBILE": "1"}]},
    }
    assert zeep_arguments(arguments) == {
        "requestId": "r-1",
        "application": {"APPLY_CAP": 8.0, "DOCUMENTS": {"DOCUMENT": [{"DOC_NAME": "x"}]}},
        "customer": {"CONTACTS": {"CONTACT": [{"MOBILE": "1"}]}},
    }
