"""Events' personal fields are sealed for the bus with the at-rest keyring and opened by in-hub consumers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy.engine import Engine

from bus import open_bus
from bus.memory import discard_broker, unique_url
from bus.port import Binding, Message, QueueSpec, Topology
from canonical_model.registry import SCHEMA_DIR, schema_uri
from pipeline.consumer import InboxConsumer
from pipeline.consumers import ConsumerSpec, consumer_topology
from pipeline.outbox import OutboxRelay, stage_event
from pipeline.records import EventDraft
from pipeline.sealing import SealedFieldError, decode_event, field_binding, open_event_data, seal_event_data
from store.crypto import Keyring, development_keyring
from store.parking import list_parked
from tests.unit.workflow.events import customer_event
from workflow.cases import handle_event
from workflow.queries import get_customer

CUSTOMER = schema_uri("customer.v1")
EXCHANGE = "yekuo.events"
IDENTITY = "411302196812098124"
PHONE = "13831210855"
ACCOUNT = "6258146471611253489"
PERSONAL: dict[str, Any] = {
    "identity_document": {"type": "resident_id", "number": IDENTITY},
    "bank_account": {"bank": "南阳农村商业银行", "account_no": ACCOUNT},
    "contacts": [{"name": "蔡建国", "phone": PHONE}, {"name": "蔡敏", "phone": "13900000000"}],
}
SPEC = ConsumerSpec("workflow", ("customer.#",), handle_event)


def _keyring() -> Keyring:
    return development_keyring()


def test_every_personal_field_is_sealed_and_opens_to_its_value() -> None:
    data = {"customer_no": "C1", "name": "蔡建国", "category": "residential", **PERSONAL}
    sealed = seal_event_data(data, CUSTOMER, _keyring)
    assert sealed["identity_document"]["number"].startswith("enc:v1:dev:")
    assert sealed["bank_account"]["account_no"].startswith("enc:v1:dev:")
    assert all(contact["phone"].startswith("enc:v1:dev:") for contact in sealed["contacts"])
    text = json.dumps(sealed, ensure_ascii=False)
    assert IDENTITY not in text and PHONE not in text and ACCOUNT not in text
    # Everything else travels as it was; the caller's document is not changed.
    assert (sealed["name"], sealed["bank_account"]["bank"]) == ("蔡建国", "南阳农村商业银行")
    assert data["identity_document"]["number"] == IDENTITY
    assert open_event_data(sealed, CUSTOMER, _keyring) == data


def test_the_sealed_event_satisfies_the_published_customer_schema() -> None:
    schema = json.loads((SCHEMA_DIR / "customer.v1.json").read_text())
    data = {"customer_no": "C1", "name": "蔡建国", "category": "residential", **PERSONAL}
    sealed = seal_event_data(data, CUSTOMER, _keyring)
    Draft202012Validator(schema).validate(sealed)
    phone = schema["$defs"]["Contact"]["properties"]["phone"]
    assert phone["x-pii"] is True and "enc:v1:<key id>" in phone["description"]
    assert any(option.get("pattern", "").startswith("^enc:v1:") for option in phone["anyOf"])


def test_a_sealed_value_moved_to_another_field_does_not_open() -> None:
    sealed = seal_event_data({"customer_no": "C1", **PERSONAL}, CUSTOMER, _keyring)
    sealed["identity_document"]["number"] = sealed["bank_account"]["account_no"]
    with pytest.raises(SealedFieldError, match=r"customer\.v1#identity_document\.number"):
        open_event_data(sealed, CUSTOMER, _keyring)


def test_data_without_personal_fields_is_left_alone_and_no_key_is_asked_for() -> None:
    def no_key() -> Keyring:
        raise AssertionError("the keyring was asked for")

    data = {"application_no": "A1", "customer_no": "C1"}
    assert seal_event_data(data, schema_uri("application.v1"), no_key) is data
    plain = {"customer_no": "C1", **PERSONAL}
    assert open_event_data(plain, CUSTOMER, no_key) == plain


def test_the_binding_names_the_schema_and_the_path() -> None:
    assert field_binding(CUSTOMER, ("contacts", "[]", "phone")) == f"{CUSTOMER}#contacts.[].phone"


def _consumer(engine: Engine, bus_url: str) -> InboxConsumer:
    return InboxConsumer(engine, open_bus(bus_url), queue=SPEC.queue, name=SPEC.name, handler=handle_event)


@pytest.fixture
def bus_url() -> Iterator[str]:
    url = unique_url("sealing")
    bus = open_bus(url)
    bus.declare(consumer_topology([EXCHANGE], [SPEC]))
    bus.declare(Topology(queues=(QueueSpec("sealing.tap", (Binding(EXCHANGE, "#"),)),)))
    bus.close()
    yield url
    discard_broker(url)


def test_the_outbox_puts_sealed_bytes_on_the_wire_and_the_consumer_opens_them(
    sqlite_engine: Engine, bus_url: str
) -> None:
    event = customer_event("C7", **PERSONAL)
    with sqlite_engine.begin() as conn:
        staged = stage_event(
            conn,
            EventDraft(
                event_type=event.type,
                source=event.source,
                subject=event.subject,
                dataschema=event.dataschema,
                data=event.data,
                exchange=EXCHANGE,
                routing_key="customer.changed.residential",
            ),
            correlation_id="corr-1",
        )
    # The caller keeps its event open.
    assert staged.data["identity_document"]["number"] == IDENTITY
    assert OutboxRelay(sqlite_engine, open_bus(bus_url)).relay_batches() == 1

    tap = open_bus(bus_url)
    [delivery] = tap.fetch("sealing.tap", 10, 0.2)
    wire = delivery.message.body
    assert IDENTITY.encode() not in wire and PHONE.encode() not in wire and ACCOUNT.encode() not in wire
    assert decode_event(wire, _keyring).data == staged.data

    consumer = _consumer(sqlite_engine, bus_url)
    assert consumer.consume_once(timeout_s=0.2) == 1 and consumer.stats.handled == 1
    with sqlite_engine.connect() as conn:
        document = get_customer(conn, "C7")
    assert document is not None
    assert document["identity_document"]["number"] == IDENTITY
    assert [contact["phone"] for contact in document["contacts"]] == [PHONE, "13900000000"]


def test_an_event_sealed_with_a_key_the_hub_lacks_is_parked_and_the_others_are_handled(
    sqlite_engine: Engine, bus_url: str
) -> None:
    foreign = Keyring({"k-other": b"\x07" * 32}, "k-other")
    unknown = customer_event("C8", **PERSONAL)
    readable = customer_event("C9", **PERSONAL)
    bodies = [
        unknown.model_copy(update={"data": seal_event_data(unknown.data, CUSTOMER, lambda: foreign)}),
        readable.model_copy(update={"data": seal_event_data(readable.data, CUSTOMER, _keyring)}),
    ]
    bus = open_bus(bus_url)
    bus.publish(
        EXCHANGE,
        [
            Message(
                body=event.model_dump_json().encode(), routing_key="customer.changed.x", message_id=event.id
            )
            for event in bodies
        ],
    )
    consumer = _consumer(sqlite_engine, bus_url)
    assert consumer.consume_once(timeout_s=0.2) == 2
    assert (consumer.stats.handled, consumer.stats.invalid) == (1, 1)
    with sqlite_engine.connect() as conn:
        [parked] = list_parked(conn, "invalid")
        assert get_customer(conn, "C8") is None
        kept = get_customer(conn, "C9")
    assert parked.reason_code == "sealed_field" and parked.record_key == unknown.id
    assert "k-other" in parked.reason and IDENTITY not in parked.reason
    assert kept is not None and kept["identity_document"]["number"] == IDENTITY
