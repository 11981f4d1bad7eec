"""Tests of the marketing simulator's SOAP endpoint: WSDL, operations, schema validation and faults."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import httpx2
import pytest
from lxml import etree

from simulators.marketing.contract import NAMESPACE, Contract
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import CustomerRow, MarketingWorld
from yekuo.soap import SOAP_ENV_NS, parse_envelope, parse_xml

START = datetime(2026, 11, 2, 8, 30)
NS = {"mkt": NAMESPACE, "soap": SOAP_ENV_NS}
WSDL_NS = {"wsdl": "http://schemas.xmlsoap.org/wsdl/", "soap": "http://schemas.xmlsoap.org/wsdl/soap/"}


@pytest.fixture(scope="module")
def world() -> MarketingWorld:
    return generate_world(seed=21, customers=40, applications=120, start=START)


@pytest.fixture(scope="module")
def client(world: MarketingWorld) -> Iterator[httpx2.Client]:
    with SimulatorServer(world) as server, httpx2.Client(base_url=server.base_url) as http:
        yield http


def _request(operation: str, body: str) -> bytes:
    return (
        f'<soap:Envelope xmlns:soap="{SOAP_ENV_NS}" xmlns:mkt="{NAMESPACE}"><soap:Body>'
        f"<mkt:{operation}>{body}</mkt:{operation}></soap:Body></soap:Envelope>"
    ).encode()


def _fault(response_body: bytes) -> tuple[str, str]:
    fault = parse_envelope(response_body)
    assert fault.tag == f"{{{SOAP_ENV_NS}}}Fault"
    return str(fault.findtext("faultcode")), str(fault.findtext("faultstring"))


def test_wsdl_names_the_address_it_was_fetched_from(client: httpx2.Client) -> None:
    response = client.get("/marketing?wsdl", headers={"Host": "sim.example:8123"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    wsdl = parse_xml(response.content, max_depth=16)
    addresses = wsdl.findall(".//wsdl:service/wsdl:port/soap:address", WSDL_NS)
    assert [address.get("location") for address in addresses] == ["http://sim.example:8123/marketing"]


def test_wsdl_query_is_case_insensitive(client: httpx2.Client) -> None:
    response = client.get("/marketing?WSDL")
    assert response.status_code == 200
    assert b"ListChangedApplications" in response.content


def test_plain_get_points_at_the_wsdl(client: httpx2.Client) -> None:
    response = client.get("/marketing")
    assert response.status_code == 404
    assert "?wsdl" in response.text


def test_list_changed_applications_answers_a_schema_valid_page(
    client: httpx2.Client, world: MarketingWorld
) -> None:
    response = client.post(
        "/marketing", content=_request("ListChangedApplications", "<mkt:pageSize>5</mkt:pageSize>")
    )
    assert response.status_code == 200
    payload = parse_envelope(response.content)
    Contract().validate(payload)
    numbers = [element.text for element in payload.findall("mkt:application/mkt:APP_NO", NS)]
    assert numbers == [row["APP_NO"] for row in world.all_applications()[:5]]
    assert payload.findtext("mkt:hasMore", namespaces=NS) == "true"
    documents = payload.findall("mkt:application[1]/mkt:DOCUMENTS/mkt:DOCUMENT", NS)
    assert len(documents) == len(world.all_applications()[0]["DOCUMENTS"])


def test_list_changed_applications_continues_after_the_watermark(
    client: httpx2.Client, world: MarketingWorld
) -> None:
    rows = world.all_applications()
    since = rows[9]
    body = (
        f"<mkt:sinceTime>{since['UPDATE_TIME']}</mkt:sinceTime><mkt:sinceKey>{since['APP_NO']}</mkt:sinceKey>"
        "<mkt:pageSize>1000</mkt:pageSize>"
    )
    payload = parse_envelope(
        client.post("/marketing", content=_request("ListChangedApplications", body)).content
    )
    numbers = [element.text for element in payload.findall("mkt:application/mkt:APP_NO", NS)]
    assert numbers == [row["APP_NO"] for row in rows[10:]]
    assert payload.findtext("mkt:hasMore", namespaces=NS) == "false"


def test_get_customer_answers_the_customer(client: httpx2.Client, world: MarketingWorld) -> None:
    cons_no = world.all_applications()[0]["CONS_NO"]
    response = client.post(
        "/marketing", content=_request("GetCustomer", f"<mkt:consNo>{cons_no}</mkt:consNo>")
    )
    assert response.status_code == 200
    payload = parse_envelope(response.content)
    Contract().validate(payload)
    customer = world.customer(cons_no)
    assert customer is not None
    assert payload.findtext("mkt:customer/mkt:CONS_NAME", namespaces=NS) == customer["CONS_NAME"]
    assert payload.findtext("mkt:customer/mkt:CERT_NO", namespaces=NS) == customer["CERT_NO"]


def test_get_customer_unknown_is_a_client_fault(client: httpx2.Client) -> None:
    response = client.post(
        "/marketing", content=_request("GetCustomer", "<mkt:consNo>4130000000</mkt:consNo>")
    )
    assert response.status_code == 500
    assert _fault(response.content) == ("soap:Client", "customer not found: 4130000000")


def test_get_customers_answers_the_known_ones(client: httpx2.Client, world: MarketingWorld) -> None:
    numbers = sorted({row["CONS_NO"] for row in world.all_applications()})[:3]
    body = "".join(f"<mkt:consNo>{number}</mkt:consNo>" for number in [*numbers, "4130000000"])
    payload = parse_envelope(client.post("/marketing", content=_request("GetCustomers", body)).content)
    Contract().validate(payload)
    assert [element.text for element in payload.findall("mkt:customer/mkt:CONS_NO", NS)] == numbers


@pytest.mark.parametrize(
    ("operation", "body", "problem"),
    [
        ("ListChangedApplications", "<mkt:pageSize>0</mkt:pageSize>", "pageSize"),
        ("ListChangedApplications", "<mkt:pageSize>1001</mkt:pageSize>", "pageSize"),
        ("ListChangedApplications", "", "pageSize"),
        (
            "ListChangedApplications",
            "<mkt:sinceTime>2026-11-02</mkt:sinceTime><mkt:pageSize>5</mkt:pageSize>",
            "sinceTime",
        ),
        ("GetCustomers", "<mkt:consNo>1</mkt:consNo>" * 101, "consNo"),
        ("GetCustomer", "<mkt:customerNo>1</mkt:customerNo>", "customerNo"),
    ],
)
def test_schema_violation_is_a_client_fault_naming_the_element(
    client: httpx2.Client, operation: str, body: str, problem: str
) -> None:
    response = client.post("/marketing", content=_request(operation, body))
    assert response.status_code == 500
    code, message = _fault(response.content)
    assert code == "soap:Client"
    assert message.startswith(f"{operation} does not satisfy the schema: ")
    assert problem in message


def test_key_without_time_is_a_client_fault(client: httpx2.Client) -> None:
    body = "<mkt:sinceKey>2611200001234</mkt:sinceKey><mkt:pageSize>5</mkt:pageSize>"
    response = client.post("/marketing", content=_request("ListChangedApplications", body))
    assert _fault(response.content) == ("soap:Client", "sinceKey given without sinceTime")


def test_unknown_operation_is_a_client_fault(client: httpx2.Client) -> None:
    response = client.post("/marketing", content=_request("DeleteEverything", ""))
    assert _fault(response.content) == ("soap:Client", f"unknown operation {{{NAMESPACE}}}DeleteEverything")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'<!DOCTYPE a [<!ENTITY x "x">]><a>&x;</a>', "XML document declares a DTD/entities"),
        (b"<soap:Envelope", "malformed XML at line 1: "),
        (b"<Envelope/>", "not a SOAP 1.1 envelope"),
        (b"<a>" + b" " * 300_000 + b"</a>", "XML body exceeds 262144 bytes"),
    ],
)
def test_hostile_or_broken_requests_are_client_faults(
    client: httpx2.Client, content: bytes, message: str
) -> None:
    response = client.post("/marketing", content=content)
    assert response.status_code == 500
    code, text = _fault(response.content)
    assert code == "soap:Client"
    assert text.startswith(message)


def test_oversized_body_is_refused_while_streaming(world: MarketingWorld) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"<a>"
        for _ in range(100):
            yield b" " * 1024
        yield b"</a>"

    with SimulatorServer(world, max_request_bytes=10_000) as server:
        response = httpx2.post(server.endpoint_url, content=chunks())
    assert _fault(response.content) == ("soap:Client", "XML body exceeds 10000 bytes")


class _BrokenWorld(MarketingWorld):
    def customer(self, cons_no: str) -> CustomerRow | None:
        raise RuntimeError("disk on fire")


def test_an_internal_failure_is_a_server_fault_without_internals() -> None:
    with SimulatorServer(_BrokenWorld([], [])) as server:
        response = httpx2.post(
            server.endpoint_url, content=_request("GetCustomer", "<mkt:consNo>1</mkt:consNo>")
        )
    assert response.status_code == 500
    code, message = _fault(response.content)
    assert code == "soap:Server"
    assert "disk on fire" not in message


def test_responses_are_utf8_soap(client: httpx2.Client, world: MarketingWorld) -> None:
    response = client.post(
        "/marketing", content=_request("ListChangedApplications", "<mkt:pageSize>1</mkt:pageSize>")
    )
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert etree.fromstring(response.content).tag == f"{{{SOAP_ENV_NS}}}Envelope"
    address = world.all_applications()[0]["ELEC_ADDR"]
    assert address is not None
    assert address in response.content.decode("utf-8")
