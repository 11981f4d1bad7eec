"""The marketing push endpoint as a SOAP client sees it: suds-community reads the served WSDL, pushes a
complete record, and gets SOAP Faults (WebFault) for a refused credential and for an incomplete record."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from suds import WebFault
from suds.client import Client

from api.marketing_push import PUSH_PATH
from ground.webserver import BackgroundServer
from simulators.marketing.seed import generate_world
from simulators.marketing.world import ApplicationRow, MarketingWorld
from store.submissions import pushes_after
from tests.support.app import hub_app
from tests.support.auth import INTEGRATOR_API_KEY, TEST_AUTH

START = datetime(2026, 11, 2, 8, 30)


@pytest.fixture(scope="module")
def world() -> MarketingWorld:
    return generate_world(seed=83, customers=6, applications=6, start=START)


@pytest.fixture
def hub(sqlite_engine: Engine) -> Iterator[BackgroundServer]:
    with BackgroundServer(hub_app(sqlite_engine, auth=TEST_AUTH)) as server:
        yield server


def _client(hub: BackgroundServer, api_key: str | None) -> Client:
    headers = {"X-API-Key": api_key} if api_key is not None else {}
    # cache=None: each test reads the WSDL its own hub serves, not one cached from another port.
    return Client(f"{hub.base_url}{PUSH_PATH}?wsdl", headers=headers, cache=None, timeout=30)


def _records(world: MarketingWorld, row: ApplicationRow) -> tuple[dict[str, Any], dict[str, Any]]:
    application = {key: value for key, value in row.items() if value is not None}
    application["DOCUMENTS"] = {"DOCUMENT": row["DOCUMENTS"]}
    customer = world.customer(row["CONS_NO"])
    assert customer is not None
    customer_record = {key: value for key, value in customer.items() if value is not None}
    customer_record["CONTACTS"] = {"CONTACT": customer["CONTACTS"]}
    return application, customer_record


def test_a_complete_record_is_accepted_and_stored(
    hub: BackgroundServer, world: MarketingWorld, sqlite_engine: Engine
) -> None:
    row = world.all_applications()[0]
    application, customer = _records(world, row)
    answer = _client(hub, INTEGRATOR_API_KEY).service.ApplicationChanged(
        notificationId="n-1", application=application, customer=customer
    )
    assert (answer.accepted, answer.duplicate) == (True, False)
    with sqlite_engine.connect() as conn:
        [stored] = pushes_after(conn, 0, 10)
    assert (stored.seq, stored.app_no) == (answer.sequence, row["APP_NO"])


@pytest.mark.parametrize(
    ("api_key", "faultstring"),
    [
        (None, "authentication failed: missing credentials"),
        ("a-key-the-hub-never-issued-0042", "authentication failed: invalid API key"),
    ],
    ids=["missing", "unknown"],
)
def test_a_refused_credential_is_a_client_fault(
    hub: BackgroundServer, world: MarketingWorld, sqlite_engine: Engine, api_key: str | None, faultstring: str
) -> None:
    application, customer = _records(world, world.all_applications()[1])
    with pytest.raises(WebFault) as raised:
        _client(hub, api_key).service.ApplicationChanged(application=application, customer=customer)
    assert (raised.value.fault.faultcode, raised.value.fault.faultstring) == ("soap:Client", faultstring)
    with sqlite_engine.connect() as conn:
        assert pushes_after(conn, 0, 10) == []


def test_a_record_without_a_required_field_is_a_client_fault_and_a_complete_one_still_goes_through(
    hub: BackgroundServer, world: MarketingWorld, sqlite_engine: Engine
) -> None:
    client = _client(hub, INTEGRATOR_API_KEY)
    incomplete = {"APP_NO": "2611000000001", "UPDATE_TIME": "2026-11-20 09:13:05"}
    with pytest.raises(WebFault) as raised:
        client.service.ApplicationChanged(application=incomplete)
    fault = raised.value.fault
    assert fault.faultcode == "soap:Client"
    assert fault.faultstring.startswith("application 2611000000001 lacks fields the hub requires: ")
    assert "application/BUSI_TYPE_CODE" in fault.faultstring
    assert "nothing was stored" in fault.faultstring

    complete = world.all_applications()[2]
    application, customer = _records(world, complete)
    answer = client.service.ApplicationChanged(application=application, customer=customer)
    assert answer.accepted is True
    with sqlite_engine.connect() as conn:
        assert [push.app_no for push in pushes_after(conn, 0, 10)] == [complete["APP_NO"]]
