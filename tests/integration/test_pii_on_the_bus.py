"""Personal data on the bus: customer events of the marketing path leave the hub with every x-pii field
sealed (an outside consumer bound to the exchange reads no identity number, phone or bank account), and
the hub's own workflow still builds the customer projection and the cases with the values opened."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bus import open_bus
from bus.memory import discard_broker, unique_url
from bus.port import Binding, QueueSpec, Topology
from canonical_model.customer import Customer
from canonical_model.pii import pii_paths
from canonical_model.registry import schema_uri
from pipeline.sealing import field_binding
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import CustomerRow
from store.crypto import development_keyring
from store.schema import cases
from tests.integration.marketing_pipeline import MarketingPipeline, fast_client
from workflow.queries import get_customer

EXCHANGE = "yekuo.events"
CUSTOMER_SCHEMA = schema_uri("customer.v1")


def _personal_values(rows: list[CustomerRow]) -> set[str]:
    values: set[str] = set()
    for row in rows:
        values.add(row["CERT_NO"])
        values.update(contact["MOBILE"] for contact in row["CONTACTS"])
        if row["BANK_ACCT"]:
            values.add(row["BANK_ACCT"])
    return values


def _leaves(node: Any, path: tuple[str, ...]) -> list[Any]:
    if not path:
        return [node]
    head, rest = path[0], path[1:]
    if head == "[]":
        return [leaf for item in node for leaf in _leaves(item, rest)]
    return _leaves(node[head], rest) if isinstance(node, dict) and head in node else []


def test_no_personal_field_leaves_the_hub_unsealed_and_the_workflow_still_reads_them(
    sqlite_engine: Engine,
) -> None:
    world = generate_world(seed=20261207, customers=12, applications=16)
    numbers = sorted({row["CONS_NO"] for row in world.all_applications()})
    customers_sent = [row for number in numbers if (row := world.customer(number)) is not None]
    personal = _personal_values(customers_sent)
    assert len(personal) >= 20
    bus_url = unique_url("pii-on-the-bus")
    with SimulatorServer(world) as simulator:
        pipeline = MarketingPipeline(sqlite_engine, fast_client(simulator.wsdl_url), bus_url)
        # An outside consumer bound to everything the hub publishes, without the hub's key.
        tap_bus = open_bus(bus_url)
        try:
            tap_bus.declare(Topology(queues=(QueueSpec("outsider.tap", (Binding(EXCHANGE, "#"),)),)))
            pipeline.sync()
            wire = [delivery.message.body for delivery in tap_bus.fetch("outsider.tap", 10_000, 0.2)]
        finally:
            tap_bus.close()
            pipeline.close()
            discard_broker(bus_url)
    with sqlite_engine.connect() as conn:
        stored = {row["CONS_NO"]: get_customer(conn, row["CONS_NO"]) for row in customers_sent}
        case_count = conn.execute(sa.select(sa.func.count()).select_from(cases)).scalar_one()

    # What the outsider read: every message, and not one personal value in it.
    assert wire, "the tap received nothing"
    everything = b"\n".join(wire).decode("utf-8")
    leaked = sorted(value for value in personal if value in everything)
    assert leaked == [], f"{len(leaked)} personal values in clear on the bus"

    customer_events = [event for body in wire if (event := json.loads(body))["dataschema"] == CUSTOMER_SCHEMA]
    assert len({event["subject"] for event in customer_events}) == len(customers_sent)
    keyring = development_keyring()
    for event in customer_events:
        row = world.customer(event["subject"])
        assert row is not None
        for path in pii_paths(Customer):
            for sealed in _leaves(event["data"], path):
                assert sealed.startswith("enc:v1:dev:"), (path, sealed)
                opened = keyring.open_text(sealed, field_binding(CUSTOMER_SCHEMA, path))
                assert opened in personal
        assert (
            keyring.open_text(
                event["data"]["identity_document"]["number"],
                field_binding(CUSTOMER_SCHEMA, ("identity_document", "number")),
            )
            == row["CERT_NO"]
        )

    # What the hub's own workflow made of the same events: values opened.
    assert case_count == 16
    for row in customers_sent:
        document = stored[row["CONS_NO"]]
        assert document is not None
        assert document["identity_document"]["number"] == row["CERT_NO"]
        assert [contact["phone"] for contact in document["contacts"]] == [
            contact["MOBILE"] for contact in row["CONTACTS"]
        ]
        if row["BANK_ACCT"]:
            assert document["bank_account"]["account_no"] == row["BANK_ACCT"]
