"""Tests of the hub's inbound SOAP endpoint for marketing pushes: contract, durable acknowledgement,
idempotency, and hostile input answered with a SOAP Fault in bounded time and memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from datetime import datetime

import httpx2
import pytest
import sqlalchemy as sa
import zeep
from fastapi import FastAPI
from pytest_httpserver import HTTPServer
from sqlalchemy.engine import Engine

from api.marketing_push import NAMESPACE, PUSH_PATH, marketing_push_router
from simulators.marketing.push import notification
from simulators.marketing.seed import generate_world
from simulators.marketing.world import MarketingWorld
from store.submissions import marketing_push, pushes_after
from yekuo.soap import SOAP_ENV_NS, parse_envelope
from yekuo.webserver import BackgroundServer

START = datetime(2026, 11, 2, 8, 30)
NS = {"push": NAMESPACE}
ENVELOPE = (
    f'<soap:Envelope xmlns:soap="{SOAP_ENV_NS}" xmlns:push="{NAMESPACE}">'
    "<soap:Body>{}</soap:Body></soap:Envelope>"
)


@pytest.fixture(scope="module")
def world() -> MarketingWorld:
    return generate_world(seed=81, customers=10, applications=10, start=START)


@pytest.fixture
def hub(sqlite_engine: Engine) -> Iterator[BackgroundServer]:
    app = FastAPI()
    app.include_router(marketing_push_router(sqlite_engine, max_bytes=256 * 1024))
    with BackgroundServer(app) as server:
        yield server


def _post(server: BackgroundServer, body: bytes | Iterator[bytes]) -> httpx2.Response:
    return httpx2.post(f"{server.base_url}{PUSH_PATH}", content=body, timeout=30)


def _fault(response: httpx2.Response) -> tuple[str, str]:
    assert response.status_code == 500
    fault = parse_envelope(response.content)
    assert fault.tag == f"{{{SOAP_ENV_NS}}}Fault"
    return str(fault.findtext("faultcode")), str(fault.findtext("faultstring"))


def _stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(marketing_push)).scalar_one())


def test_the_wsdl_names_the_address_it_was_fetched_from(hub: BackgroundServer) -> None:
    response = httpx2.get(f"{hub.base_url}{PUSH_PATH}?wsdl")
    assert response.status_code == 200
    assert f'location="{hub.base_url}{PUSH_PATH}"' in response.text
    assert httpx2.get(f"{hub.base_url}{PUSH_PATH}").status_code == 404


def test_a_push_through_the_wsdl_is_stored_before_it_is_acknowledged(
    hub: BackgroundServer, world: MarketingWorld, sqlite_engine: Engine
) -> None:
    row = world.all_applications()[0]
    customer = world.customer(row["CONS_NO"])
    client = zeep.Client(f"{hub.base_url}{PUSH_PATH}?wsdl")  # type: ignore[no-untyped-call]
    documents = {"DOCUMENT": row["DOCUMENTS"]}
    answer = client.service.ApplicationChanged(
        notificationId="n-1",
        application={**row, "DOCUMENTS": documents},
        customer={**customer, "CONTACTS": {"CONTACT": customer["CONTACTS"]}} if customer else None,
    )
    assert (answer.accepted, answer.duplicate) == (True, False)
    with sqlite_engine.connect() as conn:
        [stored] = pushes_after(conn, 0, 10)
    assert stored.seq == answer.sequence
    assert stored.application == dict(row)
    assert stored.customer == customer


def test_a_repeated_push_is_acknowledged_as_a_duplicate(
    hub: BackgroundServer, world: MarketingWorld, sqlite_engine: Engine
) -> None:
    row = world.all_applications()[1]
    first = parse_envelope(_post(hub, notification(row, world)).content)
    again = parse_envelope(_post(hub, notification(row, world)).content)
    assert first.findtext("push:duplicate", namespaces=NS) == "false"
    assert again.findtext("push:duplicate", namespaces=NS) == "true"
    assert again.findtext("push:sequence", namespaces=NS) == first.findtext("push:sequence", namespaces=NS)
    assert _stored(sqlite_engine) == 1


def test_each_new_notification_wakes_the_poller_once_and_a_duplicate_does_not(
    world: MarketingWorld, sqlite_engine: Engine
) -> None:
    wakes: list[str] = []
    app = FastAPI()
    app.include_router(marketing_push_router(sqlite_engine, on_stored=lambda: wakes.append("wake")))
    first, second = world.all_applications()[:2]
    with BackgroundServer(app) as server:
        _post(server, notification(first, world))
        _post(server, notification(first, world))
        _post(server, notification(second, world))
        _fault(_post(server, b"<not-soap/>"))
    assert wakes == ["wake", "wake"]


@pytest.mark.parametrize(
    ("inner", "message"),
    [
        (
            "<push:ApplicationChanged><push:application><push:APP_NO>1</push:APP_NO></push:application>"
            "</push:ApplicationChanged>",
            "ApplicationChanged does not satisfy the schema: ",
        ),
        ("<push:Nonsense/>", f"unknown operation {{{NAMESPACE}}}Nonsense"),
        (
            "<push:ApplicationChanged><push:application><push:APP_NO>1</push:APP_NO><push:CONS_NO>2</push:CONS_NO>"
            "<push:UPDATE_TIME>2026-11-20 09:13:05</push:UPDATE_TIME></push:application>"
            "<push:customer><push:CONS_NO>3</push:CONS_NO></push:customer></push:ApplicationChanged>",
            "customer 3 is not the customer 2 of application 1",
        ),
    ],
    ids=["missing-update-time", "unknown-operation", "foreign-customer"],
)
def test_a_wrong_notification_is_a_client_fault_and_nothing_is_stored(
    hub: BackgroundServer, sqlite_engine: Engine, inner: str, message: str
) -> None:
    code, text = _fault(_post(hub, ENVELOPE.format(inner).encode()))
    assert code == "soap:Client" and text.startswith(message)
    assert _stored(sqlite_engine) == 0


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10 if n > 1 else "&lol;" * 10}">' for n in range(1, 10))
    + "]>"
    + ENVELOPE.format("<push:ApplicationChanged>&lol9;</push:ApplicationChanged>")
).encode()
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    + ENVELOPE.format("<push:ApplicationChanged>&xxe;</push:ApplicationChanged>")
).encode()


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
def test_entity_attacks_are_client_faults_without_expansion(
    hub: BackgroundServer, sqlite_engine: Engine, body: bytes
) -> None:
    tracemalloc.start()
    try:
        response = _post(hub, body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    code, text = _fault(response)
    assert code == "soap:Client"
    assert "DTD" in text or "entit" in text
    assert "root:" not in response.text
    assert peak < 8 * 1024 * 1024, f"{peak} bytes traced"
    assert _stored(sqlite_engine) == 0


def test_an_external_dtd_is_never_fetched(hub: BackgroundServer, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/evil.dtd").respond_with_data('<!ENTITY x "pwned">')
    body = (
        f'<?xml version="1.0"?><!DOCTYPE e SYSTEM "{httpserver.url_for("/evil.dtd")}">'
        + ENVELOPE.format("<push:ApplicationChanged>&x;</push:ApplicationChanged>")
    ).encode()
    code, _ = _fault(_post(hub, body))
    assert code == "soap:Client"
    assert httpserver.log == []


def test_a_50_mb_body_is_refused_in_bounded_memory_and_the_endpoint_keeps_serving(
    hub: BackgroundServer, world: MarketingWorld, sqlite_engine: Engine
) -> None:
    chunk = b"<x>" + b" " * (64 * 1024 - 7) + b"</x>"

    def fifty_megabytes() -> Iterator[bytes]:
        yield ENVELOPE.format("<push:ApplicationChanged>").split("<push:ApplicationChanged>")[0].encode()
        for _ in range(50 * 16):
            yield chunk

    tracemalloc.start()
    try:
        response = _post(hub, fifty_megabytes())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert _fault(response) == ("soap:Client", f"XML body exceeds {256 * 1024} bytes")
    assert peak < 16 * 1024 * 1024, f"{peak} bytes traced for a 50 MB body"
    accepted = parse_envelope(_post(hub, notification(world.all_applications()[2], world)).content)
    assert accepted.findtext("push:accepted", namespaces=NS) == "true"
    assert _stored(sqlite_engine) == 1


def test_a_body_declared_beyond_the_drain_limit_is_refused_unread(sqlite_engine: Engine) -> None:
    app = FastAPI()
    app.include_router(marketing_push_router(sqlite_engine, max_bytes=1000, drain_bytes=5000))
    with BackgroundServer(app) as server:
        response = _post(server, b"<a>" + b" " * 9000 + b"</a>")
    assert _fault(response) == ("soap:Client", "XML body exceeds 1000 bytes (9007 bytes)")


def test_a_storage_failure_asks_the_sender_to_try_again(
    hub: BackgroundServer, world: MarketingWorld, sqlite_engine: Engine
) -> None:
    marketing_push.drop(sqlite_engine)
    code, text = _fault(_post(hub, notification(world.all_applications()[3], world)))
    assert (code, text) == ("soap:Server", "the hub could not store the notification; send it again later")
