"""Tests of the marketing simulator's SOAP endpoint: WSDL, operations, schema validation, faults."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import httpx2
import pytest
from lxml import etree

from ground.errors import MalformedInputError
from ground.soap import SOAP_ENV_NS, parse_envelope, parse_xml
from simulators.marketing.app import WRONG_NAMESPACE
from simulators.marketing.contract import NAMESPACE, Contract
from simulators.marketing.faults import UNKNOWN_VOLT_CODE, Fault, FaultPlan, FaultRule
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import CustomerRow, MarketingWorld, status_flow

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


# Write operations


def _new_application(request_id: str, extra: str = "") -> bytes:
    return _request(
        "CreateApplication",
        f"<mkt:requestId>{request_id}</mkt:requestId><mkt:application>{extra}"
        "<mkt:BUSI_TYPE_CODE>101</mkt:BUSI_TYPE_CODE><mkt:APPLY_CAP>8</mkt:APPLY_CAP>"
        "<mkt:CUST_CLASS_CODE>01</mkt:CUST_CLASS_CODE><mkt:ELEC_ADDR>南阳市宛城区新华路1号</mkt:ELEC_ADDR>"
        "<mkt:CHANNEL_CODE>02</mkt:CHANNEL_CODE><mkt:ORG_NO>41402</mkt:ORG_NO>"
        "<mkt:DOCUMENTS><mkt:DOCUMENT><mkt:DOC_TYPE_CODE>01</mkt:DOC_TYPE_CODE><mkt:DOC_NAME>身份证明</mkt:DOC_NAME>"
        "<mkt:RECEIVED_FLAG>1</mkt:RECEIVED_FLAG></mkt:DOCUMENT></mkt:DOCUMENTS></mkt:application>"
        "<mkt:customer><mkt:CONS_NAME>王芳</mkt:CONS_NAME><mkt:ELEC_TYPE_CODE>100</mkt:ELEC_TYPE_CODE>"
        "<mkt:CERT_TYPE_CODE>01</mkt:CERT_TYPE_CODE><mkt:CERT_NO>411302199001011234</mkt:CERT_NO>"
        "<mkt:CONTACTS><mkt:CONTACT><mkt:CONTACT_NAME>王芳</mkt:CONTACT_NAME><mkt:MOBILE>13803770001</mkt:MOBILE>"
        "</mkt:CONTACT></mkt:CONTACTS></mkt:customer>",
    )


@pytest.fixture
def writable() -> Iterator[tuple[SimulatorServer, httpx2.Client]]:
    world = generate_world(seed=22, customers=10, applications=20, start=START)
    with SimulatorServer(world) as server, httpx2.Client(base_url=server.base_url) as http:
        yield server, http


def test_create_application_answers_its_number_and_repeats_are_recognised(
    writable: tuple[SimulatorServer, httpx2.Client],
) -> None:
    server, http = writable
    first = parse_envelope(http.post("/marketing", content=_new_application("r-1")).content)
    Contract().validate(first)
    app_no = first.findtext("mkt:appNo", namespaces=NS)
    assert first.findtext("mkt:created", namespaces=NS) == "true"
    again = parse_envelope(http.post("/marketing", content=_new_application("r-1")).content)
    assert (again.findtext("mkt:appNo", namespaces=NS), again.findtext("mkt:created", namespaces=NS)) == (
        app_no,
        "false",
    )
    row = server.world.application(str(app_no))
    assert row is not None and row["CONS_NO"] == first.findtext("mkt:consNo", namespaces=NS)
    assert server.world.created_applications() == [app_no]


def test_get_application_and_its_refusal(writable: tuple[SimulatorServer, httpx2.Client]) -> None:
    server, http = writable
    row = server.world.all_applications()[3]
    payload = parse_envelope(
        http.post(
            "/marketing", content=_request("GetApplication", f"<mkt:appNo>{row['APP_NO']}</mkt:appNo>")
        ).content
    )
    Contract().validate(payload)
    assert payload.findtext("mkt:application/mkt:UPDATE_TIME", namespaces=NS) == row["UPDATE_TIME"]
    refused = http.post("/marketing", content=_request("GetApplication", "<mkt:appNo>1</mkt:appNo>"))
    assert _fault(refused.content) == ("soap:Client", "application not found: 1")


def test_update_stage_and_feasibility_result_are_written_into_the_world(
    writable: tuple[SimulatorServer, httpx2.Client],
) -> None:
    server, http = writable
    row = server.world.all_applications()[0]
    flow = status_flow(row)
    target = flow[-1]
    body = (
        f"<mkt:requestId>s-1</mkt:requestId><mkt:appNo>{row['APP_NO']}</mkt:appNo>"
        f"<mkt:statusCode>{target}</mkt:statusCode><mkt:changedAt>2026-12-01 09:00:00</mkt:changedAt>"
        "<mkt:remark>PMS 送电</mkt:remark>"
    )
    payload = parse_envelope(
        http.post("/marketing", content=_request("UpdateApplicationStage", body)).content
    )
    Contract().validate(payload)
    assert payload.findtext("mkt:statusCode", namespaces=NS) == target
    assert [write.remark for write in server.world.stage_writes(row["APP_NO"])] == ["PMS 送电"]
    feasibility = (
        f"<mkt:requestId>f-1</mkt:requestId><mkt:appNo>{row['APP_NO']}</mkt:appNo><mkt:verdict>01</mkt:verdict>"
        "<mkt:supplyVoltCode>AC03802</mkt:supplyVoltCode><mkt:assessedAt>2026-12-01 09:00:00</mkt:assessedAt>"
    )
    answer = parse_envelope(
        http.post("/marketing", content=_request("RecordFeasibilityResult", feasibility)).content
    )
    assert answer.findtext("mkt:applied", namespaces=NS) == "true"
    assert [result.verdict_code for result in server.world.feasibility_results(row["APP_NO"])] == ["01"]


# Fault triggers on the wire


def _with_faults(*specs: str) -> SimulatorServer:
    world = generate_world(seed=23, customers=10, applications=12, start=START)
    return SimulatorServer(world, faults=FaultPlan.parse(specs))


@pytest.mark.parametrize(
    ("spec", "status", "fault"),
    [
        (
            "business_fault",
            500,
            ("soap:Client", "CreateApplication: 业务校验不通过 (business rule refused the request)"),
        ),
        ("server_fault", 500, ("soap:Server", "ORA-12541: TNS:no listener")),
    ],
)
def test_refusing_faults_answer_instead_of_the_operation(
    spec: str, status: int, fault: tuple[str, str]
) -> None:
    with _with_faults(spec) as server:
        response = httpx2.post(server.endpoint_url, content=_new_application("r-1"))
    assert response.status_code == status
    assert _fault(response.content) == fault
    assert server.world.created_applications() == []


def test_http_500_is_an_html_page_and_changes_nothing() -> None:
    with _with_faults("http_500") as server:
        response = httpx2.post(server.endpoint_url, content=_new_application("r-1"))
    assert (response.status_code, response.headers["content-type"].split(";")[0]) == (500, "text/html")
    assert server.world.created_applications() == []


def test_timeout_runs_the_operation_and_holds_the_answer() -> None:
    with _with_faults("timeout:delay=2") as server:
        with pytest.raises(httpx2.ReadTimeout):
            httpx2.post(server.endpoint_url, content=_new_application("r-1"), timeout=0.3)
        assert len(server.world.created_applications()) == 1


def test_connection_reset_runs_the_operation_and_cuts_the_answer_off() -> None:
    with _with_faults("connection_reset") as server:
        with pytest.raises(httpx2.RemoteProtocolError):
            httpx2.post(server.endpoint_url, content=_new_application("r-1"))
        assert len(server.world.created_applications()) == 1


def test_latency_answers_correctly_after_the_delay() -> None:
    with _with_faults("latency:delay=0.05") as server:
        response = httpx2.post(server.endpoint_url, content=_new_application("r-1"))
    assert parse_envelope(response.content).findtext("mkt:created", namespaces=NS) == "true"
    assert server.faults.count("CreateApplication", Fault.LATENCY) == 1


@pytest.mark.parametrize(
    ("spec", "refusal"),
    [
        ("malformed_xml", "malformed XML"),
        ("xml_bomb", "entit"),
        ("external_entity", "DTD"),
    ],
)
def test_spoiled_answers_are_refused_by_a_hardened_parser(spec: str, refusal: str) -> None:
    listing = _request("ListChangedApplications", "<mkt:pageSize>5</mkt:pageSize>")
    with _with_faults(spec) as server:
        response = httpx2.post(server.endpoint_url, content=listing)
    assert response.status_code == 200
    with pytest.raises(MalformedInputError, match=refusal):
        parse_envelope(response.content)


def test_wrong_namespace_moves_every_element_of_the_answer() -> None:
    listing = _request("ListChangedApplications", "<mkt:pageSize>5</mkt:pageSize>")
    with _with_faults("wrong_namespace") as server:
        answer = parse_envelope(httpx2.post(server.endpoint_url, content=listing).content)
    assert answer.tag == f"{{{WRONG_NAMESPACE}}}ListChangedApplicationsResponse"
    assert len(answer.findall(f"{{{WRONG_NAMESPACE}}}application")) == 5


def test_record_faults_change_only_their_application() -> None:
    listing = _request("ListChangedApplications", "<mkt:pageSize>12</mkt:pageSize>")
    world = generate_world(seed=23, customers=10, applications=12, start=START)
    rows = world.all_applications()
    missing, unknown, twice = rows[1]["APP_NO"], rows[4]["APP_NO"], rows[7]["APP_NO"]
    plan = FaultPlan(
        [
            FaultRule(Fault.MISSING_FIELDS, app_no=missing),
            FaultRule(Fault.UNKNOWN_CODE, app_no=unknown),
            FaultRule(Fault.DUPLICATE, app_no=twice),
        ]
    )
    with SimulatorServer(world, faults=plan) as server:
        answer = parse_envelope(httpx2.post(server.endpoint_url, content=listing).content)
    numbers = [element.text for element in answer.findall("mkt:application/mkt:APP_NO", NS)]
    assert numbers == [row["APP_NO"] for row in rows[:8]] + [twice] + [row["APP_NO"] for row in rows[8:]]
    by_number = {
        element.findtext("mkt:APP_NO", namespaces=NS): element
        for element in answer.findall("mkt:application", NS)
    }
    assert by_number[missing].find("mkt:CUST_CLASS_CODE", NS) is None
    assert by_number[missing].find("mkt:CHANNEL_CODE", NS) is None
    assert by_number[unknown].findtext("mkt:VOLT_CODE", namespaces=NS) == UNKNOWN_VOLT_CODE
    assert by_number[rows[0]["APP_NO"]].findtext("mkt:VOLT_CODE", namespaces=NS) == rows[0]["VOLT_CODE"]


def test_schema_violations_are_not_counted_as_calls() -> None:
    with _with_faults("server_fault:calls=1") as server:
        bad = httpx2.post(server.endpoint_url, content=_request("GetApplication", ""))
        good = httpx2.post(
            server.endpoint_url, content=_request("GetCustomers", "<mkt:consNo>1</mkt:consNo>")
        )
    assert _fault(bad.content)[0] == "soap:Client"
    assert _fault(good.content) == ("soap:Server", "ORA-12541: TNS:no listener")
