"""Tests of the marketing SOAP client: legacy dicts out, every failure mapped onto the yekuo error tree."""

from __future__ import annotations

import json
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from pytest_httpserver import HTTPServer

from adapters.marketing.breaker import CircuitBreaker, CircuitOpenError
from adapters.marketing.client import CallPolicy, MarketingClient, Watermark
from ground.errors import ConfigError, MalformedInputError, SourceRejectedError, SourceUnavailableError
from ground.soap import FaultCode, build_envelope, build_fault
from simulators.marketing.contract import NAMESPACE, WSDL_PATH
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import MarketingWorld, status_flow
from tests.unit.adapters.marketing.conftest import NO_WAIT, START, RecordingTransport, quick_client

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
    "RETURN_REASON_CODE",
    "ORG_NO",
    "URBAN_RURAL_FLAG",
    "TRADE_CODE",
    "TEMP_END_DATE",
    "LOAD_TYPE",
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
    return quick_client(str(WSDL_PATH), endpoint_url=httpserver.url_for("/marketing"), timeout_s=2)


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
    client = quick_client(str(WSDL_PATH), endpoint_url=f"http://127.0.0.1:{closed_port}/marketing")
    with pytest.raises(SourceUnavailableError, match="ConnectionError"):
        client.list_changed_applications(None, 10)


def test_timeout_is_unavailable(silent_port: int) -> None:
    client = quick_client(
        str(WSDL_PATH), endpoint_url=f"http://127.0.0.1:{silent_port}/marketing", timeout_s=0.2
    )
    with pytest.raises(SourceUnavailableError, match="Timeout"):
        client.list_changed_applications(None, 10)


def test_unreachable_wsdl_is_unavailable(closed_port: int) -> None:
    client = quick_client(f"http://127.0.0.1:{closed_port}/marketing?wsdl", timeout_s=1)
    with pytest.raises(SourceUnavailableError, match="loading the marketing WSDL"):
        client.list_changed_applications(None, 10)


def test_wsdl_that_failed_to_load_is_loaded_again_next_time(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/marketing", method="GET").respond_with_data("busy", status=503)
    httpserver.expect_request("/marketing", method="GET").respond_with_data(
        WSDL_PATH.read_bytes(), content_type="text/xml"
    )
    _respond(httpserver, _response("<mkt:hasMore>false</mkt:hasMore>"), 200)
    client = MarketingClient(
        httpserver.url_for("/marketing") + "?wsdl",
        endpoint_url=httpserver.url_for("/marketing"),
        policy=CallPolicy(attempts=1),
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
    client = quick_client(httpserver.url_for("/marketing") + "?wsdl")
    with pytest.raises(SourceUnavailableError, match="HTTP 502"):
        client.get_customers(["4130000001"])


# Retries, the circuit breaker and hardened answers


def _listing() -> bytes:
    return _response("<mkt:hasMore>false</mkt:hasMore>")


def test_transient_failures_are_retried_then_delivered(
    httpserver: HTTPServer, scripted: MarketingClient
) -> None:
    httpserver.expect_oneshot_request("/marketing").respond_with_data(
        build_fault(FaultCode.SERVER, "ORA-12541"), status=500, content_type="text/xml"
    )
    httpserver.expect_oneshot_request("/marketing").respond_with_data("<html>down</html>", status=503)
    _respond(httpserver, _listing(), 200)
    assert scripted.list_changed_applications(None, 10).has_more is False
    assert len(httpserver.log) == 3
    assert scripted.breaker.status().consecutive_failures == 0


def test_retries_are_bounded(httpserver: HTTPServer, scripted: MarketingClient) -> None:
    _respond(httpserver, "<html>down</html>", 503, "text/html")
    with pytest.raises(SourceUnavailableError, match="HTTP 503"):
        scripted.list_changed_applications(None, 10)
    assert len(httpserver.log) == NO_WAIT.attempts


def test_waits_between_tries_grow_with_jitter(httpserver: HTTPServer) -> None:
    _respond(httpserver, "<html>down</html>", 503, "text/html")
    waits: list[float] = []
    policy = CallPolicy(attempts=4, initial_backoff_s=0.5, max_backoff_s=1.5, jitter_s=0.25)
    client = quick_client(
        str(WSDL_PATH), endpoint_url=httpserver.url_for("/marketing"), policy=policy, sleep=waits.append
    )
    with pytest.raises(SourceUnavailableError):
        client.list_changed_applications(None, 10)
    assert len(waits) == 3
    for wait, base in zip(waits, (0.5, 1.0, 1.5), strict=True):
        assert base <= wait <= base + 0.25


@pytest.mark.parametrize(
    "answer",
    [build_fault(FaultCode.CLIENT, "申请编号不存在"), b"<html>Not Found</html>"],
    ids=["business-fault", "http-404"],
)
def test_refusals_are_not_retried(httpserver: HTTPServer, scripted: MarketingClient, answer: bytes) -> None:
    status = 500 if answer.startswith(b"<?xml") else 404
    _respond(httpserver, answer, status)
    with pytest.raises(SourceRejectedError):
        scripted.list_changed_applications(None, 10)
    assert len(httpserver.log) == 1


def test_malformed_answers_are_not_retried_by_thequick_client(
    httpserver: HTTPServer, scripted: MarketingClient
) -> None:
    _respond(httpserver, b"<soap:Envelope", 200)
    with pytest.raises(MalformedInputError):
        scripted.list_changed_applications(None, 10)
    assert len(httpserver.log) == 1


def test_repeated_failures_open_the_circuit_and_stop_the_calls(httpserver: HTTPServer) -> None:
    _respond(httpserver, "<html>down</html>", 502, "text/html")
    breaker = CircuitBreaker("marketing", failure_threshold=4, reset_timeout_s=60)
    client = quick_client(str(WSDL_PATH), endpoint_url=httpserver.url_for("/marketing"), breaker=breaker)
    for _ in range(2):
        with pytest.raises(SourceUnavailableError, match="HTTP 502"):
            client.list_changed_applications(None, 10)
    assert len(httpserver.log) == 4
    with pytest.raises(CircuitOpenError, match="circuit open after 4 failures"):
        client.get_customers(["4130000001"])
    assert len(httpserver.log) == 4
    assert breaker.status().available is False


def test_a_business_fault_keeps_the_circuit_closed(httpserver: HTTPServer) -> None:
    _respond(httpserver, build_fault(FaultCode.CLIENT, "customer not found"), 500)
    breaker = CircuitBreaker("marketing", failure_threshold=1)
    client = quick_client(str(WSDL_PATH), endpoint_url=httpserver.url_for("/marketing"), breaker=breaker)
    for _ in range(3):
        with pytest.raises(SourceRejectedError):
            client.get_customer("4130000001")
    assert breaker.status().available is True


class _ResettingPeer(socketserver.ThreadingTCPServer):
    """Answers a SOAP call with a TCP reset the first `resets` times, then with a good listing."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, resets: int, answer: bytes) -> None:
        self.resets = resets
        self.answer = answer
        self.connections = 0
        super().__init__(("127.0.0.1", 0), _ResettingHandler)


class _ResettingHandler(socketserver.StreamRequestHandler):
    server: _ResettingPeer

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.request.recv(65536)
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        body = head.split(b"\r\n\r\n", 1)[1]
        while len(body) < length:
            body += self.request.recv(65536)
        self.server.connections += 1
        if self.server.connections <= self.server.resets:
            # Linger 0: closing sends a TCP RST instead of a FIN.
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        answer = self.server.answer
        self.request.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nConnection: close\r\n"
            + f"Content-Length: {len(answer)}\r\n\r\n".encode()
            + answer
        )


def test_a_connection_reset_by_the_peer_is_retried(httpserver: HTTPServer) -> None:
    peer = _ResettingPeer(resets=2, answer=_listing())
    thread = threading.Thread(target=peer.serve_forever, daemon=True)
    thread.start()
    try:
        port = peer.server_address[1]
        client = quick_client(str(WSDL_PATH), endpoint_url=f"http://127.0.0.1:{port}/marketing")
        assert client.list_changed_applications(None, 10).applications == []
        assert peer.connections == 3
    finally:
        peer.shutdown()
        peer.server_close()


def test_an_answer_nested_too_deep_is_malformed(httpserver: HTTPServer, scripted: MarketingClient) -> None:
    deep = "<mkt:x>" * 40 + "</mkt:x>" * 40
    _respond(httpserver, _response(f"{deep}<mkt:hasMore>false</mkt:hasMore>"), 200)
    with pytest.raises(
        MalformedInputError, match="marketing ListChangedApplications: XML nesting deeper than 24"
    ):
        scripted.list_changed_applications(None, 10)


def test_an_oversized_answer_is_malformed(httpserver: HTTPServer) -> None:
    padding = (
        "<mkt:application><mkt:APP_NO>1</mkt:APP_NO><mkt:UPDATE_TIME>2026-11-20 09:13:05</mkt:UPDATE_TIME>"
    )
    body = _response((padding + "</mkt:application>") * 2000 + "<mkt:hasMore>false</mkt:hasMore>")
    _respond(httpserver, body, 200)
    client = quick_client(
        str(WSDL_PATH), endpoint_url=httpserver.url_for("/marketing"), max_response_bytes=64 * 1024
    )
    with pytest.raises(MalformedInputError, match="over 65536"):
        client.list_changed_applications(None, 10)


# Reading one application, and writing


@pytest.fixture
def writable() -> Iterator[tuple[MarketingClient, MarketingWorld]]:
    world = generate_world(seed=32, customers=10, applications=20, start=START)
    with SimulatorServer(world) as server:
        yield quick_client(server.wsdl_url), world


NEW_APPLICATION = {
    "BUSI_TYPE_CODE": "101",
    "APPLY_CAP": 12.0,
    "CUST_CLASS_CODE": "01",
    "ELEC_ADDR": "南阳市卧龙区人民路8号",
    "CHANNEL_CODE": "02",
    "ORG_NO": "41401",
    "DOCUMENTS": [{"DOC_TYPE_CODE": "01", "DOC_NAME": "身份证明", "RECEIVED_FLAG": "1"}],
}
NEW_CUSTOMER = {
    "CONS_NAME": "张伟",
    "ELEC_TYPE_CODE": "100",
    "CERT_TYPE_CODE": "01",
    "CERT_NO": "411303199001011234",
    "CONTACTS": [{"CONTACT_NAME": "张伟", "MOBILE": "13803770001"}],
}


def test_get_application(writable: tuple[MarketingClient, MarketingWorld]) -> None:
    client, world = writable
    row = world.all_applications()[5]
    assert client.get_application(row["APP_NO"]) == row
    with pytest.raises(SourceRejectedError, match="application not found: 1"):
        client.get_application("1")


def test_create_application_once_per_request_id(writable: tuple[MarketingClient, MarketingWorld]) -> None:
    client, world = writable
    created = client.create_application("req-1", NEW_APPLICATION, NEW_CUSTOMER)
    assert created.created is True
    again = client.create_application("req-1", NEW_APPLICATION, NEW_CUSTOMER)
    assert (again.app_no, again.cons_no, again.created) == (created.app_no, created.cons_no, False)
    row = world.application(created.app_no)
    assert row is not None and row["DOCUMENTS"] == NEW_APPLICATION["DOCUMENTS"]
    customer = world.customer(created.cons_no)
    assert customer is not None and customer["CONTACTS"][0]["MOBILE"] == "13803770001"


def test_a_refused_creation_names_the_reason(writable: tuple[MarketingClient, MarketingWorld]) -> None:
    client, _ = writable
    with pytest.raises(SourceRejectedError, match="CERT_TYPE_CODE '77' is not a valid code"):
        client.create_application("req-2", NEW_APPLICATION, {**NEW_CUSTOMER, "CERT_TYPE_CODE": "77"})


def test_stage_update_and_feasibility_result(writable: tuple[MarketingClient, MarketingWorld]) -> None:
    client, world = writable
    row = world.all_applications()[0]
    target = status_flow(row)[-1]
    assert client.update_application_stage("s-1", row["APP_NO"], target, "2026-12-01 09:00:00", remark="送电")
    assert not client.update_application_stage("s-1", row["APP_NO"], target, "2026-12-01 09:00:00")
    moved = world.application(row["APP_NO"])
    assert moved is not None and moved["STATUS_CODE"] == target
    assert client.record_feasibility_result(
        "f-1", row["APP_NO"], "01", "2026-12-01 09:00:00", supply_volt_code="AC02202"
    )
    assert world.feasibility_results(row["APP_NO"])[0].supply_volt_code == "AC02202"


def test_a_write_needs_a_request_id(writable: tuple[MarketingClient, MarketingWorld]) -> None:
    client, _ = writable
    with pytest.raises(ConfigError, match="a write needs a requestId"):
        client.write("UpdateApplicationStage", {"appNo": "1"})
