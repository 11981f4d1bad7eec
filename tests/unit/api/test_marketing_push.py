"""Tests of the hub's inbound SOAP endpoint for marketing pushes: contract, durable acknowledgement,
idempotency, and hostile input answered with a SOAP Fault in bounded time and memory."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
import zeep
from fastapi import FastAPI
from lxml import etree
from pytest_httpserver import HTTPServer
from ruamel.yaml import YAML
from sqlalchemy.engine import Engine

from adapters.marketing.push import NAMESPACE, WSDL_PATH, PushMappings, PushReader
from api.context import ApiContext, install_context
from api.marketing_push import PUSH_PATH, PushReceiver
from api.marketing_push import router as push_router
from ground.settings import PROJECT_ROOT
from ground.soap import SOAP_ENV_NS, parse_envelope
from ground.webserver import BackgroundServer
from simulators.marketing.push import notification
from simulators.marketing.seed import generate_world
from simulators.marketing.world import MarketingWorld
from store.submissions import marketing_push, pushes_after

START = datetime(2026, 11, 2, 8, 30)
NS = {"push": NAMESPACE}
XS = {"xs": "http://www.w3.org/2001/XMLSchema"}
ENVELOPE = (
    f'<soap:Envelope xmlns:soap="{SOAP_ENV_NS}" xmlns:push="{NAMESPACE}">'
    "<soap:Body>{}</soap:Body></soap:Envelope>"
)


@pytest.fixture(scope="module")
def world() -> MarketingWorld:
    return generate_world(seed=81, customers=10, applications=10, start=START)


def served(engine: Engine, receiver: PushReceiver) -> FastAPI:
    """An app serving only the push endpoint, with this receiver."""
    app = FastAPI()
    install_context(app, ApiContext(engine, marketing_push=receiver))
    app.include_router(push_router)
    return app


@pytest.fixture
def hub(sqlite_engine: Engine) -> Iterator[BackgroundServer]:
    receiver = PushReceiver(sqlite_engine, PushReader(PushMappings.load(), max_bytes=256 * 1024))
    app = served(sqlite_engine, receiver)
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
    receiver = PushReceiver(
        sqlite_engine, PushReader(PushMappings.load()), on_stored=lambda: wakes.append("wake")
    )
    app = served(sqlite_engine, receiver)
    first, second = world.all_applications()[:2]
    with BackgroundServer(app) as server:
        _post(server, notification(first, world))
        _post(server, notification(first, world))
        _post(server, notification(second, world))
        _fault(_post(server, b"<not-soap/>"))
    assert wakes == ["wake", "wake"]


def test_a_push_of_only_the_keys_is_refused_naming_every_field_the_mapping_requires(
    hub: BackgroundServer, sqlite_engine: Engine
) -> None:
    inner = (
        "<push:ApplicationChanged><push:application><push:APP_NO>A1</push:APP_NO>"
        "<push:UPDATE_TIME>2026-11-20 09:13:05</push:UPDATE_TIME>"
        "</push:application></push:ApplicationChanged>"
    )
    assert _fault(_post(hub, ENVELOPE.format(inner).encode())) == (
        "soap:Client",
        "application A1 lacks fields the hub requires: application/APPLY_CAP, "
        "application/BUSI_TYPE_CODE, application/CHANNEL_CODE, application/CONS_NO, "
        "application/CUST_CLASS_CODE, application/HANDLE_TIME; nothing was stored, send it again complete",
    )
    assert _stored(sqlite_engine) == 0


def _changed(world: MarketingWorld, index: int, path: str, text: str | None) -> bytes:
    """A complete notification of the world's index-th application, one element changed (None: removed)."""
    envelope = etree.fromstring(notification(world.all_applications()[index], world))
    element = envelope.find(f".//{path}", namespaces=NS)
    assert element is not None, path
    if text is None:
        element.getparent().remove(element)
    else:
        element.text = text
    return bytes(etree.tostring(envelope))


@pytest.mark.parametrize(
    ("path", "text", "message"),
    [
        (
            "push:application/push:BUSI_TYPE_CODE",
            "  ",
            "lacks fields the hub requires: application/BUSI_TYPE_CODE;",
        ),
        ("push:customer/push:CONS_NAME", None, "lacks fields the hub requires: customer/CONS_NAME;"),
        (
            "push:application/push:DOCUMENTS/push:DOCUMENT[2]/push:DOC_NAME",
            None,
            "lacks fields the hub requires: application/DOCUMENTS/DOCUMENT[2]/DOC_NAME;",
        ),
        (
            "push:customer/push:CONTACTS/push:CONTACT/push:MOBILE",
            "",
            "lacks fields the hub requires: customer/CONTACTS/CONTACT[1]/MOBILE;",
        ),
        ("push:application/push:APPLY_CAP", "lots", "ApplicationChanged does not satisfy the schema: "),
        ("push:customer/push:CONS_NO", "3", "customer 3 is not the customer "),
        (
            "push:application/push:BUSI_TYPE_CODE",
            "999",
            "would not map, nothing was stored: mappings/marketing/application.yaml:",
        ),
    ],
    ids=["blank", "customer-field", "document-field", "contact-field", "schema", "foreign-customer", "code"],
)
def test_a_wrong_notification_is_a_client_fault_naming_the_problem_and_nothing_is_stored(
    hub: BackgroundServer,
    world: MarketingWorld,
    sqlite_engine: Engine,
    path: str,
    text: str | None,
    message: str,
) -> None:
    code, faultstring = _fault(_post(hub, _changed(world, 4, path, text)))
    assert code == "soap:Client" and message in faultstring, faultstring
    assert _stored(sqlite_engine) == 0
    accepted = parse_envelope(_post(hub, notification(world.all_applications()[4], world)).content)
    assert accepted.findtext("push:accepted", namespaces=NS) == "true"
    assert _stored(sqlite_engine) == 1


def test_an_unknown_code_names_the_field_and_its_source(hub: BackgroundServer, world: MarketingWorld) -> None:
    _, faultstring = _fault(_post(hub, _changed(world, 5, "push:application/push:BUSI_TYPE_CODE", "999")))
    assert "field 'business_type' (source BUSI_TYPE_CODE)" in faultstring and "'999'" in faultstring


def test_an_unknown_operation_is_a_client_fault(hub: BackgroundServer, sqlite_engine: Engine) -> None:
    assert _fault(_post(hub, ENVELOPE.format("<push:Nonsense/>").encode())) == (
        "soap:Client",
        f"unknown operation {{{NAMESPACE}}}Nonsense",
    )
    assert _stored(sqlite_engine) == 0


def _required_by_yaml(fields: dict[str, Any]) -> tuple[set[str], dict[str, set[str]]]:
    """Read apart from the mapping loader: the sources marked required (without a default), and per group."""
    required = {spec["from"] for spec in fields.values() if spec.get("required") and "default" not in spec}
    groups = {
        spec["each"]: _required_by_yaml(spec["fields"])[0] for spec in fields.values() if "each" in spec
    }
    return required, groups


def _required_in_wsdl(wsdl: bytes, type_name: str) -> set[str]:
    schema = etree.fromstring(wsdl)
    elements = schema.iterfind(f".//xs:complexType[@name='{type_name}']//xs:element", namespaces=XS)
    return {str(e.get("name")) for e in elements if e.get("minOccurs", "1") != "0"}


@pytest.mark.parametrize(
    ("mapping", "record_type", "item_types"),
    [
        ("application", "Application", {"DOCUMENTS": "Document"}),
        ("customer", "Customer", {"CONTACTS": "Contact"}),
    ],
)
def test_the_wsdl_requires_exactly_what_the_mapping_requires(
    hub: BackgroundServer, mapping: str, record_type: str, item_types: dict[str, str]
) -> None:
    fields = YAML(typ="safe").load((PROJECT_ROOT / "mappings" / "marketing" / f"{mapping}.yaml").read_text())
    required, groups = _required_by_yaml(fields["fields"])
    assert groups.keys() == item_types.keys()
    served = httpx2.get(f"{hub.base_url}{PUSH_PATH}?wsdl").content
    committed = WSDL_PATH.read_bytes()
    for wsdl in (served, committed):
        assert _required_in_wsdl(wsdl, record_type) == required
        for group, item_type in item_types.items():
            assert _required_in_wsdl(wsdl, item_type) == groups[group]


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
    receiver = PushReceiver(sqlite_engine, PushReader(PushMappings.load(), max_bytes=1000), drain_bytes=5000)
    app = served(sqlite_engine, receiver)
    with BackgroundServer(app) as server:
        response = _post(server, b"<a>" + b" " * 9000 + b"</a>")
    assert _fault(response) == ("soap:Client", "XML body exceeds 1000 bytes (9007 bytes)")


def test_a_storage_failure_asks_the_sender_to_try_again(
    hub: BackgroundServer, world: MarketingWorld, sqlite_engine: Engine
) -> None:
    marketing_push.drop(sqlite_engine)
    code, text = _fault(_post(hub, notification(world.all_applications()[3], world)))
    assert (code, text) == ("soap:Server", "the hub could not store the notification; send it again later")
