"""Tests of the marketing SOAP client: legacy dicts out, every failure mapped onto the yekuo error tree."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from pytest_httpserver import HTTPServer

from adapters.marketing.client import MarketingClient, Watermark
from simulators.marketing.contract import NAMESPACE, WSDL_PATH
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import MarketingWorld
from tests.unit.adapters.marketing.conftest import START, RecordingTransport
from yekuo.errors import ConfigError, MalformedInputError, SourceRejectedError, SourceUnavailableError
from yekuo.soap import FaultCode, build_envelope, build_fault

# The shared record layout of the marketing system, written out here so the test checks the contract itself.
APPLICATION_KEYS = [
    "APP_NO",
    "CONS_NO",
    "BUSI_TYPE_CODE",
    "APPLY_CAP",
    "VOLT_CODE",
    "CUST_CLASS_CODE",
    "IMPORTANCE_CODE",
    "ELEC_ADDR",
    "LONGITUDE",
    "LATITUDE",
    "CHANNEL_CODE",
    "HANDLE_TIME",
    "UPDATE_TIME",
    "STATUS_CODE",
    "ORG_NO",
    "URBAN_RURAL_FLAG",
    "DOCUMENTS",
]
CUSTOMER_KEYS = [
    "CONS_ID",
    "CONS_NO",
    "CONS_NAME",
    "ELEC_ADDR",
    "ELEC_TYPE_CODE",
    "TRADE_CODE",
    "VOLT_CODE",
    "CONTRACT_CAP",
    "STATUS_CODE",
    "ORG_NO",
    "URBAN_RURAL_FLAG",
    "TG_ID",
    "LONGITUDE",
    "LATITUDE",
    "CERT_TYPE_CODE",
    "CERT_NO",
    "BANK_NAME",
    "BANK_ACCT",
    "CONTACTS",
]


def _plain_values(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain_values(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_plain_values(item) for item in value)
    return value is None or (isinstance(value, str | float | bool | int) and not isinstance(value, Decimal))


# Watermark


def test_watermark_round_trips_through_json() -> None:
    watermark = Watermark(changed_at="2026-11-20 09:13:05", key="2611200001234")
    stored = json.dumps(watermark.to_dict())
    assert Watermark.from_dict(json.loads(stored)) == watermark


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"key": "2611200001234"}, "watermark lacks changed_at"),
        ({}, "watermark lacks changed_at, key"),
        ({"changed_at": "2026-11-20T09:13:05", "key": "1"}, "changed_at must be 'YYYY-MM-DD HH:MM:SS'"),
        ({"changed_at": "2026-02-30 09:13:05", "key": "1"}, "changed_at must be 'YYYY-MM-DD HH:MM:SS'"),
        ({"changed_at": "2026-11-20 09:13:05", "key": ""}, "key must be a non-empty string"),
        ({"changed_at": "2026-11-20 09:13:05", "key": 2611200001234}, "key must be a non-empty string"),
    ],
)
def test_watermark_refuses_broken_stored_forms(data: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedInputError, match=message):
        Watermark.from_dict(data)


# Against the simulator


@pytest.fixture
def client(simulator: SimulatorServer, transport: RecordingTransport) -> MarketingClient:
    return MarketingClient(simulator.wsdl_url, transport=transport)


def test_applications_come_back_as_the_legacy_rows(client: MarketingClient, world: MarketingWorld) -> None:
    page = client.list_changed_applications(None, 50)
    assert page.has_more is True
    assert page.applications == world.all_applications()[:50]
    for application in page.applications:
        assert list(application) == APPLICATION_KEYS
        assert _plain_values(application)
        assert isinstance(application["APPLY_CAP"], float)
        assert all(
            list(document) == ["DOC_TYPE_CODE", "DOC_NAME", "RECEIVED_FLAG"]
            for document in application["DOCUMENTS"]
        )


def test_listing_continues_after_the_watermark(client: MarketingClient, world: MarketingWorld) -> None:
    rows = world.all_applications()
    since = Watermark(changed_at=rows[9]["UPDATE_TIME"], key=rows[9]["APP_NO"])
    page = client.list_changed_applications(since, 1000)
    assert [row["APP_NO"] for row in page.applications] == [row["APP_NO"] for row in rows[10:]]
    assert page.has_more is False


def test_customers_come_back_as_the_legacy_rows(
    client: MarketingClient, world: MarketingWorld, transport: RecordingTransport
) -> None:
    numbers = list(dict.fromkeys(row["CONS_NO"] for row in world.all_applications()))
    unknown = [f"41300000{index:02d}" for index in range(30)]
    assert 100 < len(numbers) + len(unknown) <= 200
    customers = client.get_customers([*numbers, *unknown, *numbers])
    assert customers == world.customers(numbers)
    assert transport.actions == ["GetCustomers", "GetCustomers"]
    for customer in customers:
        assert list(customer) == CUSTOMER_KEYS
        assert _plain_values(customer)
        assert all(
            list(contact) == ["CONTACT_NAME", "MOBILE", "CONTACT_TYPE"] for contact in customer["CONTACTS"]
        )


def test_no_numbers_means_no_call(client: MarketingClient, transport: RecordingTransport) -> None:
    assert client.get_customers([]) == []
    assert transport.actions == []


def test_get_customer(client: MarketingClient, world: MarketingWorld) -> None:
    number = world.all_applications()[0]["CONS_NO"]
    assert client.get_customer(number) == world.customer(number)


def test_unknown_customer_is_rejected_with_the_faultstring(client: MarketingClient) -> None:
    with pytest.raises(SourceRejectedError, match="customer not found: 4130000000"):
        client.get_customer("4130000000")


def test_page_size_beyond_the_service_limit_is_rejected(client: MarketingClient) -> None:
    with pytest.raises(SourceRejectedError, match="pageSize"):
        client.list_changed_applications(None, 1001)


def test_absent_fields_are_none_and_empty_groups_empty_lists() -> None:
    world = generate_world(seed=2, customers=5, applications=5, start=START)
    target = world.all_applications()[0]["APP_NO"]
    world.apply_change(target, {"LONGITUDE": None, "LATITUDE": None, "ELEC_ADDR": None, "DOCUMENTS": []})
    with SimulatorServer(world) as server:
        page = MarketingClient(server.wsdl_url).list_changed_applications(None, 10)
    changed = page.applications[-1]
    assert changed["APP_NO"] == target
    assert list(changed) == APPLICATION_KEYS
    assert (changed["LONGITUDE"], changed["LATITUDE"], changed["ELEC_ADDR"], changed["DOCUMENTS"]) == (
        None,
        None,
        None,
        [],
    )


# Against a scripted peer


@pytest.fixture
def scripted(httpserver: HTTPServer) -> MarketingClient:
    return MarketingClient(str(WSDL_PATH), endpoint_url=httpserver.url_for("/marketing"), timeout_s=2)


def _respond(httpserver: HTTPServer, body: bytes | str, status: int, content_type: str = "text/xml") -> None:
    httpserver.expect_request("/marketing", method="POST").respond_with_data(
        body, status=status, content_type=content_type
    )


def _response(inner: str) -> bytes:
    payload = etree.fromstring(
        f'<mkt:ListChangedApplicationsResponse xmlns:mkt="{NAMESPACE}">{inner}'
        "</mkt:ListChangedApplicationsResponse>"
    )
    return build_envelope(payload)


def test_scripted_peer_answers_are_read(httpserver: HTTPServer, scripted: MarketingClient) -> None:
    application = (
        "<mkt:application><mkt:APP_NO>2611200001234</mkt:APP_NO><mkt:APPLY_CAP>630</mkt:APPLY_CAP>"
        "<mkt:UPDATE_TIME>2026-11-20 09:13:05</mkt:UPDATE_TIME></mkt:application>"
    )
    _respond(httpserver, _response(application + "<mkt:hasMore>false</mkt:hasMore>"), 200)
    page = scripted.list_changed_applications(None, 10)
    assert page.has_more is False
    [record] = page.applications
    assert record["APPLY_CAP"] == 630.0
    assert record["CONS_NO"] is None
    assert record["DOCUMENTS"] == []
    assert list(record) == APPLICATION_KEYS


def test_http_500_is_unavailable(httpserver: HTTPServer, scripted: MarketingClient) -> None:
    _respond(httpserver, "<html><body>Internal Server Error</body></html>", 500, "text/html")
    with pytest.raises(SourceUnavailableError, match="HTTP 500"):
        scripted.list_changed_applications(None, 10)


def test_http_503_without_body_is_unavailable(httpserver: HTTPServer, scripted: MarketingClient) -> None:
    _respond(httpserver, b"", 503)
    with pytest.raises(SourceUnavailableError, match="HTTP 503"):
        scripted.list_changed_applications(None, 10)


def test_http_404_is_rejected(httpserver: HTTPServer, scripted: MarketingClient) -> None:
    _respond(httpserver, "<html>Not Found</html>", 404, "text/html")
    with pytest.raises(SourceRejectedError, match="HTTP 404"):
        scripted.list_changed_applications(None, 10)


def test_client_fault_is_rejected_with_its_faultstring(
    httpserver: HTTPServer, scripted: MarketingClient
) -> None:
    _respond(httpserver, build_fault(FaultCode.CLIENT, "申请编号不存在: 2611200001234"), 500)
    with pytest.raises(SourceRejectedError, match="soap:Client: 申请编号不存在: 2611200001234"):
        scripted.list_changed_applications(None, 10)


def test_server_fault_is_unavailable(httpserver: HTTPServer, scripted: MarketingClient) -> None:
    _respond(httpserver, build_fault(FaultCode.SERVER, "ORA-12541: TNS:no listener"), 500)
    with pytest.raises(SourceUnavailableError, match="soap:Server: ORA-12541: TNS:no listener"):
        scripted.list_changed_applications(None, 10)


@pytest.mark.parametrize(
    "body",
    [
        b"this is not XML <<<",
        b"<html><body>maintenance</body></html>",
        b'<!DOCTYPE a [<!ENTITY x "xxxxxxxx">]><a>&x;</a>',
        _response("<mkt:surprise>1</mkt:surprise><mkt:hasMore>false</mkt:hasMore>"),
        _response(
            "<mkt:application><mkt:APP_NO>1</mkt:APP_NO>"
            "<mkt:UPDATE_TIME>2026-11-20 09:13:05</mkt:UPDATE_TIME><mkt:APPLY_CAP>630</mkt:APPLY_CAP>"
            "</mkt:application><mkt:hasMore>false</mkt:hasMore>"
        ),
        _response(
            "<mkt:application><mkt:APP_NO>1</mkt:APP_NO><mkt:APPLY_CAP>lots</mkt:APPLY_CAP>"
            "<mkt:UPDATE_TIME>2026-11-20 09:13:05</mkt:UPDATE_TIME>"
            "</mkt:application><mkt:hasMore>false</mkt:hasMore>"
        ),
    ],
    ids=["garbage", "html", "dtd", "unexpected-element", "misordered", "not-a-number"],
)
def test_malformed_response_is_malformed_input(
    httpserver: HTTPServer, scripted: MarketingClient, body: bytes
) -> None:
    _respond(httpserver, body, 200)
    with pytest.raises(MalformedInputError, match="marketing ListChangedApplications"):
        scripted.list_changed_applications(None, 10)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def test_refused_connection_is_unavailable(closed_port: int) -> None:
    client = MarketingClient(str(WSDL_PATH), endpoint_url=f"http://127.0.0.1:{closed_port}/marketing")
    with pytest.raises(SourceUnavailableError, match="ConnectionError"):
        client.list_changed_applications(None, 10)


def test_timeout_is_unavailable(silent_port: int) -> None:
    client = MarketingClient(
        str(WSDL_PATH), endpoint_url=f"http://127.0.0.1:{silent_port}/marketing", timeout_s=0.2
    )
    with pytest.raises(SourceUnavailableError, match="Timeout"):
        client.list_changed_applications(None, 10)


def test_unreachable_wsdl_is_unavailable(closed_port: int) -> None:
    client = MarketingClient(f"http://127.0.0.1:{closed_port}/marketing?wsdl", timeout_s=1)
    with pytest.raises(SourceUnavailableError, match="loading the marketing WSDL"):
        client.list_changed_applications(None, 10)


def test_wsdl_that_failed_to_load_is_loaded_again_next_time(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/marketing", method="GET").respond_with_data("busy", status=503)
    httpserver.expect_request("/marketing", method="GET").respond_with_data(
        WSDL_PATH.read_bytes(), content_type="text/xml"
    )
    _respond(httpserver, _response("<mkt:hasMore>false</mkt:hasMore>"), 200)
    client = MarketingClient(
        httpserver.url_for("/marketing") + "?wsdl", endpoint_url=httpserver.url_for("/marketing")
    )
    with pytest.raises(SourceUnavailableError, match="HTTP 503"):
        client.list_changed_applications(None, 10)
    assert client.list_changed_applications(None, 10).applications == []


def test_missing_wsdl_file_is_a_config_error(tmp_path: Path) -> None:
    client = MarketingClient(str(tmp_path / "absent.wsdl"))
    with pytest.raises(ConfigError, match=r"absent\.wsdl"):
        client.get_customers(["4130000001"])


def test_garbage_wsdl_is_malformed_input(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/marketing").respond_with_data(
        "<html>login first</html", content_type="text/html"
    )
    client = MarketingClient(httpserver.url_for("/marketing") + "?wsdl")
    with pytest.raises(MalformedInputError, match="loading the marketing WSDL"):
        client.get_customers(["4130000001"])


def test_wsdl_http_error_is_mapped_by_status(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/marketing").respond_with_data("down", status=502)
    client = MarketingClient(httpserver.url_for("/marketing") + "?wsdl")
    with pytest.raises(SourceUnavailableError, match="HTTP 502"):
        client.get_customers(["4130000001"])
