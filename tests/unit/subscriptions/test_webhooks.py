"""The dispatcher vets each delivery's destination when it is made and connects to the vetted address.

Names resolve through a scripted DNS, so a test can move a name to 127.0.0.1 after it was subscribed
(rebinding). The receiver is pytest-httpserver on 127.0.0.1, reached under a name the allowlist lists; a
refused delivery is parked with its reason while the good subscription beside it keeps receiving.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_httpserver import HTTPServer
from sqlalchemy.engine import Engine
from werkzeug import Request, Response

from ground import clock as hub_clock
from ground.settings import WebhookSettings
from subscriptions.webhooks import WebhookDispatcher, delivery_client
from tests.support.webhooks import PUBLIC_ADDRESS, ScriptedDns
from tests.unit.api.test_events import append, customer_event
from tests.unit.api.test_webhooks import (
    SETTINGS,
    Clock,
    Receiver,
    api,
    run_through_every_try,
    run_until_idle,
    subscribe,
)

# Deliveries may reach 127.0.0.1 only under this name: a bare 127.0.0.1 or any other name is refused.
RECEIVER_NAME = "receiver.test"
ALLOW_RECEIVER = WebhookSettings(allowed_hosts=[RECEIVER_NAME])


@pytest.fixture
def httpserver(httpserver_ipv4: HTTPServer) -> HTTPServer:
    """The webhook receiver, on 127.0.0.1."""
    return httpserver_ipv4


@pytest.fixture
def receiver(httpserver: HTTPServer) -> Receiver:
    handler = Receiver()
    httpserver.expect_request("/hook", method="POST").respond_with_handler(handler)
    return handler


@pytest.fixture
def stolen(httpserver: HTTPServer) -> list[str]:
    """Event ids of every request that reached /stolen: a refused destination's path on the same server."""
    reached: list[str] = []

    def record(request: Request) -> Response:
        reached.append(request.headers.get("X-Yekuo-Event-Id", "?"))
        return Response("ok")

    httpserver.expect_request("/stolen").respond_with_handler(record)
    return reached


@pytest.fixture
def clock() -> Iterator[Clock]:
    fixed = Clock()
    with hub_clock.use(fixed):
        yield fixed


@pytest.fixture
def dns() -> ScriptedDns:
    return ScriptedDns({RECEIVER_NAME: ["127.0.0.1"]})


@pytest.fixture
def dispatcher(sqlite_engine: Engine, clock: Clock, dns: ScriptedDns) -> Iterator[WebhookDispatcher]:
    worker = WebhookDispatcher(
        sqlite_engine, SETTINGS, webhooks=ALLOW_RECEIVER, resolver=dns, clock=clock, owner="hub-a"
    )
    yield worker
    worker.close()


def receiver_url(httpserver: HTTPServer, path: str = "/hook", *, host: str = RECEIVER_NAME) -> str:
    return f"http://{host}:{httpserver.port}{path}"


def deliveries_of(engine: Engine, subscription_id: str) -> list[dict[str, Any]]:
    """The subscription's delivery log as its owner reads it, each delivery with its attempts."""
    with api(engine) as client:
        listed = client.get(f"/v1/webhooks/{subscription_id}/deliveries").json()["items"]
        return [
            client.get(f"/v1/webhooks/{subscription_id}/deliveries/{item['id']}").json() for item in listed
        ]


def test_a_name_rebound_to_loopback_after_subscribing_is_refused_at_delivery(
    sqlite_engine: Engine,
    httpserver: HTTPServer,
    receiver: Receiver,
    stolen: list[str],
    dispatcher: WebhookDispatcher,
    clock: Clock,
    dns: ScriptedDns,
) -> None:
    dns.answers["hooks.rebind.example"] = [PUBLIC_ADDRESS]
    good = subscribe(sqlite_engine, receiver_url(httpserver), dns=dns)
    bad = subscribe(sqlite_engine, receiver_url(httpserver, "/stolen", host="hooks.rebind.example"), dns=dns)
    dns.answers["hooks.rebind.example"] = ["127.0.0.1"]  # the name moves once it was checked
    append(sqlite_engine, customer_event(1), customer_event(2))
    run_through_every_try(dispatcher, clock)

    assert stolen == []
    assert receiver.delivered() == ["evt-1", "evt-2"]
    refused = deliveries_of(sqlite_engine, bad["id"])
    assert [(item["event_id"], item["status"], item["attempts"]) for item in refused] == [
        ("evt-1", "parked", 1),  # parked at once: trying again cannot help, an operator can replay
        ("evt-2", "parked", 1),
    ]
    for item in refused:
        assert item["last_error"].startswith(
            "destination refused: hooks.rebind.example resolves to 127.0.0.1, which is a loopback address"
        )
        [attempt] = item["attempt_log"]
        assert (attempt["status_code"], attempt["next_attempt_at"]) == (None, None)
        assert attempt["error"] == item["last_error"]
    assert [item["status"] for item in deliveries_of(sqlite_engine, good["id"])] == ["delivered", "delivered"]
    # Resolved when subscribing, then again for each delivery.
    assert dns.lookups.count("hooks.rebind.example") == 3


def test_a_delivery_connects_to_the_vetted_address_under_the_urls_own_name(
    sqlite_engine: Engine,
    httpserver: HTTPServer,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    dns: ScriptedDns,
) -> None:
    # receiver.test exists only in the scripted DNS: the system could not resolve it for the connection.
    subscribe(sqlite_engine, receiver_url(httpserver), dns=dns)
    dns.lookups.clear()
    append(sqlite_engine, customer_event(1), customer_event(2))
    run_until_idle(dispatcher)
    assert receiver.delivered() == ["evt-1", "evt-2"]
    assert [headers["Host"] for _, _, headers, _ in receiver.calls] == [
        f"{RECEIVER_NAME}:{httpserver.port}"
    ] * 2
    assert dns.lookups == [RECEIVER_NAME, RECEIVER_NAME]  # one lookup per delivery, none when connecting


def test_an_address_taken_off_the_allowlist_is_refused_at_delivery(
    sqlite_engine: Engine,
    httpserver: HTTPServer,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    dns: ScriptedDns,
) -> None:
    # Both subscribed while 127.0.0.1/32 was allowed; the dispatcher now allows only the receiver's name.
    literal = subscribe(sqlite_engine, receiver_url(httpserver, host="127.0.0.1"), dns=dns)
    good = subscribe(sqlite_engine, receiver_url(httpserver), dns=dns)
    append(sqlite_engine, customer_event(1))
    run_until_idle(dispatcher)
    [refused] = deliveries_of(sqlite_engine, literal["id"])
    assert refused["status"] == "parked"
    assert refused["last_error"].startswith("destination refused: 127.0.0.1 is a loopback address")
    assert [item["status"] for item in deliveries_of(sqlite_engine, good["id"])] == ["delivered"]
    assert receiver.delivered() == ["evt-1"]


def test_a_host_that_stops_resolving_is_retried_not_parked(
    sqlite_engine: Engine,
    httpserver: HTTPServer,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    clock: Clock,
    dns: ScriptedDns,
) -> None:
    created = subscribe(sqlite_engine, receiver_url(httpserver), dns=dns)
    dns.answers.pop(RECEIVER_NAME)  # a DNS outage
    append(sqlite_engine, customer_event(1))
    run_until_idle(dispatcher)
    [waiting] = deliveries_of(sqlite_engine, created["id"])
    assert (waiting["status"], waiting["attempts"]) == ("pending", 1)
    assert waiting["last_error"].startswith("destination unresolved: host receiver.test does not resolve")
    dns.answers[RECEIVER_NAME] = ["127.0.0.1"]
    clock.advance(SETTINGS.webhook_initial_backoff_s)
    run_until_idle(dispatcher)
    assert receiver.delivered() == ["evt-1"]


def test_a_redirect_is_not_followed(
    sqlite_engine: Engine,
    httpserver: HTTPServer,
    receiver: Receiver,
    stolen: list[str],
    dispatcher: WebhookDispatcher,
    dns: ScriptedDns,
) -> None:
    httpserver.expect_request("/moved").respond_with_response(
        Response(status=307, headers={"Location": f"http://127.0.0.1:{httpserver.port}/stolen"})
    )
    moved = subscribe(sqlite_engine, receiver_url(httpserver, "/moved"), dns=dns)
    good = subscribe(sqlite_engine, receiver_url(httpserver), dns=dns)
    append(sqlite_engine, customer_event(1))
    run_until_idle(dispatcher)
    [redirected] = deliveries_of(sqlite_engine, moved["id"])
    assert (redirected["status"], redirected["last_status_code"]) == ("pending", 307)
    assert stolen == []
    assert [item["status"] for item in deliveries_of(sqlite_engine, good["id"])] == ["delivered"]


# --- TLS: the server name and certificate check follow the URL's host, not the address --------------------


def _tls_contexts(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with receiver.test's certificate, signed by a test CA, and a client trusting it."""
    now = datetime.now(UTC)  # OpenSSL checks validity against the real clock
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "yekuo test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, RECEIVER_NAME)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(RECEIVER_NAME)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = directory / "receiver.pem", directory / "receiver.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode("ascii"))
    return server, client


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[HTTPServer, ssl.SSLContext, Receiver]]:
    server_context, client_context = _tls_contexts(tmp_path)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=server_context)
    handler = Receiver()
    server.expect_request("/hook", method="POST").respond_with_handler(handler)
    server.start()
    try:
        yield server, client_context, handler
    finally:
        server.clear()
        server.stop()


def test_tls_names_the_urls_host_and_checks_its_certificate_while_connecting_by_address(
    sqlite_engine: Engine,
    tls_receiver: tuple[HTTPServer, ssl.SSLContext, Receiver],
    clock: Clock,
) -> None:
    server, trusted, handler = tls_receiver
    # Both names lead to the same vetted address; the certificate there is receiver.test's only.
    dns = ScriptedDns({RECEIVER_NAME: ["127.0.0.1"], "imposter.test": ["127.0.0.1"]})
    good = subscribe(sqlite_engine, f"https://{RECEIVER_NAME}:{server.port}/hook", dns=dns)
    imposter = subscribe(sqlite_engine, f"https://imposter.test:{server.port}/hook", dns=dns)
    allow = WebhookSettings(allowed_hosts=["127.0.0.1/32"])
    dispatcher = WebhookDispatcher(
        sqlite_engine,
        SETTINGS,
        webhooks=allow,
        resolver=dns,
        client=delivery_client(SETTINGS, verify=trusted),
        clock=clock,
        owner="hub-a",
    )
    try:
        append(sqlite_engine, customer_event(1), customer_event(2))
        run_until_idle(dispatcher)
    finally:
        dispatcher.close()
    assert handler.delivered() == ["evt-1", "evt-2"]
    assert {headers["Host"] for _, _, headers, _ in handler.calls} == {f"{RECEIVER_NAME}:{server.port}"}
    mismatch, held_back = deliveries_of(sqlite_engine, imposter["id"])
    assert (mismatch["status"], held_back["status"], held_back["attempts"]) == ("pending", "pending", 0)
    assert "certificate verify failed" in mismatch["last_error"]
    assert [item["status"] for item in deliveries_of(sqlite_engine, good["id"])] == ["delivered", "delivered"]
