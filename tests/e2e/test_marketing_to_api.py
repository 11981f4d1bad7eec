"""End to end: marketing simulator → zeep → mapping → validation → route → RabbitMQ → workflow → API."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from sqlalchemy.engine import Engine

from adapters.marketing.source import MarketingSource
from bus import open_bus
from bus.port import Binding, QueueSpec, Topology
from canonical_model.registry import SCHEMA_DIR, schema_uri
from ground.settings import Settings
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import MarketingWorld
from tests.conftest import POSTGRES_URL
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer
from tests.support.cloudevents import sdk_reads
from yekuo.hub import Hub

SHANGHAI = timezone(timedelta(hours=8))
# Written out here rather than read from the code tables, so the test checks the mapping independently.
VOLTAGE_KV = {"AC02202": 0.22, "AC03802": 0.38, "AC00101": 10.0, "AC00351": 35.0, "AC01101": 110.0}
CUSTOMER_CLASS = {
    "01": "lv_residential",
    "02": "lv_non_residential",
    "03": "hv_single_source",
    "04": "hv_dual_source",
}
# STATUS_CODE -> workflow stage id (mappings/codes/marketing/status_code.yaml), written out independently.
STAGE = {
    "01": "acceptance",
    "02": "site_survey",
    "03": "scheme_reply",
    "04": "external_works",
    "05": "design_review",
    "06": "mid_inspection",
    "07": "completion_inspection",
    "08": "contract",
    "09": "energisation",
    "10": "archived",
}
BUSINESS_TYPE = {
    "101": "new_connection",
    "111": "capacity_increase",
    "113": "capacity_reduction",
    "105": "temporary_supply",
}


def _utc(legacy_local: str) -> str:
    local = datetime.strptime(legacy_local, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    return local.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _validators() -> dict[str, Draft202012Validator]:
    validators = {}
    for path in SCHEMA_DIR.glob("*.json"):
        schema = json.loads(path.read_text(encoding="utf-8"))
        validators[schema["$id"]] = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
    return validators


@pytest.mark.rabbitmq
@pytest.mark.postgres
def test_marketing_applications_arrive_as_cases_with_their_mapped_fields(
    rabbitmq_url: str, postgres_engine: Engine
) -> None:
    world = generate_world(seed=11, customers=40, applications=60)
    exchange = "yekuo.events"
    tap = f"e2e.tap.{uuid.uuid4().hex[:8]}"
    settings = Settings(bus_url=rabbitmq_url, db_url=POSTGRES_URL)
    admin = open_bus(rabbitmq_url)
    with SimulatorServer(world) as simulator:
        hub = Hub(
            settings, sources=[MarketingSource(simulator.wsdl_url, page_size=25)], engine=postgres_engine
        )
        hub.prepare()
        for consumer in hub.consumers:
            admin.purge(consumer.queue)
        admin.declare(Topology(queues=(QueueSpec(tap, bindings=(Binding(exchange, "#"),)),)))
        hub.start()
        try:
            deadline = time.monotonic() + 60
            while (status := hub.status()).cases < 60 or status.pending:
                assert time.monotonic() < deadline, f"not settled: {status}"
                time.sleep(0.2)
        finally:
            hub.stop()
    try:
        _check_cases(postgres_engine, world.all_applications())
        _check_published_messages(admin, tap, expected=status.published, world=world)
    finally:
        admin.delete_queue(tap)
        admin.close()


def _check_cases(engine: Engine, applications: list[dict[str, Any]]) -> None:
    client = TestClient(hub_app(engine, auth=TEST_AUTH), headers=bearer("viewer"))
    assert len(applications) == 60
    for source in applications:
        response = client.get(f"/v1/applications/{source['APP_NO']}")
        assert response.status_code == 200, source["APP_NO"]
        case = response.json()
        mapped = case["application"]
        assert case["stage"] == STAGE[source["STATUS_CODE"]]
        assert case["customer_no"] == source["CONS_NO"]
        assert case["customer_class"] == CUSTOMER_CLASS[source["CUST_CLASS_CODE"]]
        assert mapped["business_type"] == BUSINESS_TYPE[source["BUSI_TYPE_CODE"]]
        assert mapped["requested_capacity_kva"] == pytest.approx(source["APPLY_CAP"])
        assert mapped["requested_voltage_kv"] == pytest.approx(VOLTAGE_KV[source["VOLT_CODE"]])
        assert _same_instant(mapped["submitted_at"], _utc(source["HANDLE_TIME"]))
        assert mapped["site_address"] == source["ELEC_ADDR"]
        assert mapped["source_refs"] == [
            {"system": "marketing", "record_type": "application", "key": source["APP_NO"]}
        ]
        [entry] = case["timeline"]
        assert entry["source_system"] == "marketing" and entry["stage_to"] == case["stage"]
        customer = client.get(f"/v1/customers/{source['CONS_NO']}")
        assert customer.status_code == 200 and customer.json()["customer_no"] == source["CONS_NO"]


def _same_instant(left: str, right: str) -> bool:
    return datetime.fromisoformat(left) == datetime.fromisoformat(right)


def _personal_values(world: MarketingWorld) -> set[str]:
    """Every identity number, mobile and bank account the simulated customers hold, as sent by the source."""
    values: set[str] = set()
    for customer in world.customers([row["CONS_NO"] for row in world.all_applications()]):
        values.update(value for value in (customer["CERT_NO"], customer["BANK_ACCT"]) if value)
        values.update(
            str(contact["MOBILE"]) for contact in customer.get("CONTACTS") or [] if contact["MOBILE"]
        )
    return values


def _check_published_messages(admin: Any, tap: str, expected: int, world: MarketingWorld) -> None:
    validators = _validators()
    envelope = validators[schema_uri("envelope.v1")]
    deliveries = []
    while batch := admin.fetch(tap, 500, 1.0):
        deliveries.extend(batch)
    assert len(deliveries) == expected > 0
    personal = _personal_values(world)
    assert personal, "the simulated customers carry personal data to look for"
    kinds = set()
    for delivery in deliveries:
        event = json.loads(delivery.message.body)
        envelope.validate(event)
        validators[event["dataschema"]].validate(event["data"])
        assert delivery.message.message_id == event["id"]
        # What an integrator's own tools read: the official SDK, from the body and from the headers alike.
        structured, binary = sdk_reads(delivery)
        assert structured == binary and structured["id"] == event["id"]
        body = delivery.message.body.decode("utf-8")
        assert not [value for value in personal if value in body], f"personal data in clear: {event['type']}"
        kinds.add(event["type"])
        admin.ack(delivery)
    # The workflow publishes a stage change per case and the feasibility check an assessment; the
    # consistency checks flag the seeded customers with two open new connections as duplicates; the
    # monitor may add assignments and deadline alerts.
    monitoring = {"cn.yekuo.case.assigned.v1", "cn.yekuo.case.at_risk.v1", "cn.yekuo.case.overdue.v1"}
    assert kinds - monitoring == {
        "cn.yekuo.application.changed.v1",
        "cn.yekuo.customer.changed.v1",
        "cn.yekuo.case.stage_changed.v1",
        "cn.yekuo.case.consistency_finding.v1",
        "cn.yekuo.application.feasibility_assessed.v1",
    }
