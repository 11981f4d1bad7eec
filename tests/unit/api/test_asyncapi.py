"""The AsyncAPI document: valid against the official 3.0.0 schema, generated from the route table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from api.asyncapi import asyncapi_router, broker_server, document_for, document_ref, topic_may_match
from canonical_model import events
from canonical_model.application import ConnectionApplication
from canonical_model.envelope import CloudEvent
from canonical_model.events import (
    CAPACITY_FORECAST_EXCEEDED,
    CASE_EVENTS,
    FEASIBILITY_ASSESSED,
    PROJECTION_UPDATED,
    EventType,
)
from ground.settings import PROJECT_ROOT
from pipeline.config import load_hub_config
from tests.unit.routes.config_copy import copy_config
from yekuo.consumers import CONSUMERS

SPEC_SCHEMA = PROJECT_ROOT / "tests" / "data" / "asyncapi" / "asyncapi-3.0.0.schema.json"
BROKER = "amqp://hub:secret@broker.example:5672/utility"

EXTRA_ROUTE = """
  - name: marketing-application-withdrawn
    description: an application was withdrawn in the marketing system
    source: {system: marketing, record: application}
    mapping: marketing/application
    event_type: cn.yekuo.application.withdrawn.v1
    exchange: yekuo.events
    routing_key: "application.withdrawn.{business_type}"
    subject: "{application_no}"
"""

WITHDRAWN = EventType(
    "cn.yekuo.application.withdrawn.v1", ConnectionApplication, "an application was withdrawn by its customer"
)


def generated(config_dir: Path = PROJECT_ROOT) -> dict[str, Any]:
    config = load_hub_config(config_dir)
    return document_for(config.routes, exchange="yekuo.events", broker_url=BROKER, consumers=CONSUMERS)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return generated()


@pytest.fixture(scope="module")
def spec_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SPEC_SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    assert validator_class is jsonschema.Draft7Validator
    validator_class.check_schema(schema)
    return validator_class(schema)


DOCUMENT_URI = "urn:test:asyncapi"


def payload_validator(document: dict[str, Any], message_id: str) -> jsonschema.Draft202012Validator:
    """A validator of one message's payload, resolving refs from the document root as AsyncAPI tools do."""
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, Resource(document, DRAFT202012))
    payload = document["components"]["messages"][message_id]["payload"]
    assert payload["schemaFormat"] == "application/schema+json;version=2020-12"
    pointer = f"{DOCUMENT_URI}#/components/messages/{message_id}/payload/schema"
    return jsonschema.Draft202012Validator({"$ref": pointer}, registry=registry)


def refs_in(node: Any, path: str = "#") -> list[tuple[str, str]]:
    """Every (location, $ref value) in a JSON document."""
    if isinstance(node, dict):
        found = [(path, node["$ref"])] if isinstance(node.get("$ref"), str) else []
        for key, value in node.items():
            found += refs_in(value, f"{path}/{key}")
        return found
    if isinstance(node, list):
        return [ref for index, item in enumerate(node) for ref in refs_in(item, f"{path}/{index}")]
    return []


def resolve_pointer(document: Any, ref: str) -> Any:
    """The node a `#/...` JSON pointer names in the document; KeyError/IndexError when there is none."""
    assert ref.startswith("#/"), f"{ref!r} is not a path from the document root"
    node = document
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def test_the_document_is_valid_against_the_asyncapi_3_schema(
    document: dict[str, Any], spec_validator: jsonschema.protocols.Validator
) -> None:
    errors = sorted(spec_validator.iter_errors(document), key=lambda error: list(error.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message[:200]}" for e in errors[:5])
    assert document["asyncapi"] == "3.0.0"


def test_every_ref_resolves_from_the_document_root(document: dict[str, Any]) -> None:
    refs = refs_in(document)
    assert len(refs) > 100
    unresolved = []
    for location, ref in refs:
        try:
            target = resolve_pointer(document, ref)
        except (AssertionError, KeyError, IndexError, ValueError):
            unresolved.append(f"{location}: {ref}")
            continue
        assert isinstance(target, dict), f"{location}: {ref} names a {type(target).__name__}"
    assert not unresolved, unresolved[:5]
    # Embedded schemas carry no $id, which would make a JSON Schema tool resolve their refs elsewhere.
    assert all("$id" not in entry["schema"] for entry in document["components"]["schemas"].values())


def test_a_local_ref_of_a_canonical_schema_becomes_a_document_path(document: dict[str, Any]) -> None:
    application = document["components"]["schemas"]["application.v1"]["schema"]
    business_type = application["properties"]["business_type"]
    refs = [business_type.get("$ref"), *(item.get("$ref") for item in business_type.get("allOf", []))]
    assert "#/components/schemas/application.v1/schema/$defs/BusinessType" in refs
    payload = document["components"]["messages"]["cn.yekuo.application.changed.v1"]["payload"]["schema"]
    assert payload["allOf"] == [{"$ref": "#/components/schemas/envelope.v1/schema"}]
    assert payload["properties"]["data"] == {"$ref": "#/components/schemas/application.v1/schema"}


def test_a_ref_outside_the_canonical_schemas_is_refused() -> None:
    with pytest.raises(ValueError, match="neither local nor a canonical schema URI"):
        document_ref("https://example.com/other.json", "application.v1")
    assert document_ref("urn:yekuo:schema:case.v1#/$defs/Stage", "x.v1") == (
        "#/components/schemas/case.v1/schema/$defs/Stage"
    )


def test_the_spec_schema_rejects_a_broken_document(
    document: dict[str, Any], spec_validator: jsonschema.protocols.Validator
) -> None:
    # Proves the validation test can fail: an operation with an action AsyncAPI 3 does not know.
    broken = json.loads(json.dumps(document))
    next(iter(broken["operations"].values()))["action"] = "publish"
    assert not spec_validator.is_valid(broken)


def test_every_route_has_a_channel_with_its_exchange_and_a_send_operation(document: dict[str, Any]) -> None:
    config = load_hub_config(PROJECT_ROOT)
    addresses = {
        (ch["bindings"]["amqp"]["exchange"]["name"], ch["address"]): ch
        for ch in document["channels"].values()
    }
    for route in config.routes:
        channel = addresses[(route.exchange, route.routing_key.text)]
        assert route.event_type in channel["messages"]
    sends = {op["channel"]["$ref"] for op in document["operations"].values() if op["action"] == "send"}
    assert sends == {f"#/channels/{key}" for key in document["channels"]}


def test_the_hub_s_own_events_are_documented(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    # Every case event the workflow can publish, and the feasibility result.
    for event_type in (*CASE_EVENTS, FEASIBILITY_ASSESSED, PROJECTION_UPDATED, CAPACITY_FORECAST_EXCEEDED):
        assert event_type in messages
    alert = document["channels"]["yekuo.events.grid.capacity_forecast_exceeded.equipment_kind"]
    assert alert["parameters"]["equipment_kind"]["location"] == "$message.payload#/data/equipment_kind"
    verdict = document["channels"]["yekuo.events.feasibility.assessed.verdict"]["parameters"]["verdict"]
    assert "feasible" in verdict["enum"]
    assert verdict["location"] == "$message.payload#/data/verdict"


def test_consumers_receive_the_channels_their_bindings_match(document: dict[str, Any]) -> None:
    receives = {
        (key.split(".receive.")[0], op["channel"]["$ref"].removeprefix("#/channels/"))
        for key, op in document["operations"].items()
        if op["action"] == "receive"
    }
    assert ("workflow", "yekuo.events.application.changed.customer_class") in receives
    assert ("grid", "yekuo.events.grid.feeder.deleted") in receives
    assert ("grid", "yekuo.events.application.changed.customer_class") not in receives
    assert ("marketing_writeback", "yekuo.events.case.stage_changed.customer_class") in receives
    assert ("marketing_writeback", "yekuo.events.case.overdue.customer_class") not in receives


def test_every_route_s_channel_is_read_by_a_consumer(document: dict[str, Any]) -> None:
    # Publishes are mandatory: a routing key no queue binds is unroutable, and the publish fails.
    receivers: dict[str, set[str]] = {}
    for key, op in document["operations"].items():
        if op["action"] == "receive":
            channel = op["channel"]["$ref"].removeprefix("#/channels/")
            receivers.setdefault(channel, set()).add(key.split(".receive.")[0])
    channels = {
        (channel["bindings"]["amqp"]["exchange"]["name"], channel["address"]): key
        for key, channel in document["channels"].items()
    }
    config = load_hub_config(PROJECT_ROOT)
    unread = [
        route.name
        for route in config.routes
        # The event feed binds what the others bind, so it alone means no consumer acts on the route.
        if not receivers.get(channels[(route.exchange, route.routing_key.text)], set()) - {"event_feed"}
    ]
    assert unread == []
    assert "loads" in receivers["yekuo.events.load.power_factor.recorded"]
    # The planning alert is the hub's own: the event feed (and the grid page's consumer) must bind it too.
    assert {"event_feed", "grid"} <= receivers["yekuo.events.grid.capacity_forecast_exceeded.equipment_kind"]


def test_a_route_parameter_names_its_field_and_values(document: dict[str, Any]) -> None:
    channel = document["channels"]["yekuo.events.application.changed.customer_class"]
    parameter = channel["parameters"]["customer_class"]
    assert parameter["enum"] == ["lv_residential", "lv_non_residential", "hv_single_source", "hv_dual_source"]
    assert parameter["location"] == "$message.payload#/data/customer_class"
    # Case events take the class from the application, not from their own payload: no location.
    case = document["channels"]["yekuo.events.case.overdue.customer_class"]["parameters"]["customer_class"]
    assert "location" not in case


def test_the_payload_schema_accepts_a_real_event_and_refuses_a_wrong_one(document: dict[str, Any]) -> None:
    validator = payload_validator(document, "cn.yekuo.customer.changed.v1")
    event = CloudEvent(
        id="e-1",
        source="/marketing/customer",
        type="cn.yekuo.customer.changed.v1",
        subject="C0001",
        time="2026-03-02T08:00:00+08:00",  # type: ignore[arg-type]
        dataschema="urn:yekuo:schema:customer.v1",
        correlationid="c-1",
        sequence=1,
        data={"customer_no": "C0001", "name": "张三", "category": "residential"},
    ).model_dump(mode="json")
    errors = [error.message for error in validator.iter_errors(event)]
    assert not errors, errors
    assert not validator.is_valid({**event, "type": "cn.yekuo.application.changed.v1"})
    assert not validator.is_valid({**event, "data": {"name": "no number"}})
    assert not validator.is_valid({key: value for key, value in event.items() if key != "sequence"})


def test_adding_a_route_adds_its_channel(
    tmp_path: Path, spec_validator: jsonschema.protocols.Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A new event type is listed in the catalogue, then published by a route.
    monkeypatch.setitem(events._EXACT, WITHDRAWN.event_type, WITHDRAWN)
    config_dir = copy_config(tmp_path / "config")
    routes_file = config_dir / "routes" / "marketing.yaml"
    routes_file.write_text(routes_file.read_text(encoding="utf-8") + EXTRA_ROUTE, encoding="utf-8")
    before = generated()
    after = generated(config_dir)
    added = set(after["channels"]) - set(before["channels"])
    assert added == {"yekuo.events.application.withdrawn.business_type"}
    channel = after["channels"]["yekuo.events.application.withdrawn.business_type"]
    assert channel["address"] == "application.withdrawn.{business_type}"
    assert "cn.yekuo.application.withdrawn.v1" in after["components"]["messages"]
    # The route's own description, which says where its records come from, before the catalogue's.
    assert (
        after["components"]["messages"]["cn.yekuo.application.withdrawn.v1"]["summary"]
        == "an application was withdrawn in the marketing system"
    )
    # The workflow consumer binds application.#, so it is documented as receiving the new channel.
    assert "workflow.receive.yekuo.events.application.withdrawn.business_type" in after["operations"]
    assert spec_validator.is_valid(after)


def test_the_server_is_the_broker_without_credentials() -> None:
    assert broker_server(BROKER) == {
        "host": "broker.example:5672",
        "protocol": "amqp",
        "protocolVersion": "0.9.1",
        "description": "the RabbitMQ broker the hub publishes to",
        "pathname": "/utility",
    }
    assert broker_server("memory://") is None
    assert "secret" not in json.dumps(generated())


def test_each_node_of_a_cluster_is_a_server(spec_validator: jsonschema.protocols.Validator) -> None:
    nodes = f"{BROKER},amqp://hub:secret@broker-2.example:5673/utility"
    config = load_hub_config(PROJECT_ROOT)
    document = document_for(config.routes, exchange="yekuo.events", broker_url=nodes, consumers=CONSUMERS)
    servers = document["servers"]
    assert {name: server["host"] for name, server in servers.items()} == {
        "broker-1": "broker.example:5672",
        "broker-2": "broker-2.example:5673",
    }
    assert {server["pathname"] for server in servers.values()} == {"/utility"}
    assert "secret" not in json.dumps(document)
    assert spec_validator.is_valid(document)


@pytest.mark.parametrize(
    ("pattern", "template", "matches"),
    [
        ("application.#", "application.changed.{customer_class}", True),
        ("case.stage_changed.#", "case.stage_changed.{customer_class}", True),
        ("case.stage_changed.#", "case.overdue.{customer_class}", False),
        ("case.*.hv_dual_source", "case.overdue.{customer_class}", True),
        ("grid.*", "grid.feeder.changed", False),
        ("#", "load.profile.recorded", True),
    ],
)
def test_topic_matching_treats_a_placeholder_as_any_word(pattern: str, template: str, matches: bool) -> None:
    assert topic_may_match(pattern, template) is matches


def test_the_router_serves_the_document(document: dict[str, Any]) -> None:
    app = FastAPI()
    app.include_router(asyncapi_router(document))
    with TestClient(app) as client:
        response = client.get("/asyncapi.json")
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(document))


def test_the_command_exports_the_document_of_the_configured_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from yekuo.cli import main

    monkeypatch.setenv("YEKUO_BUS_URL", BROKER)
    out = tmp_path / "asyncapi.json"
    assert main(["asyncapi", "export", "--out", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(json.dumps(generated()))


def test_a_namespace_names_the_broker_s_exchanges_and_queues() -> None:
    config = load_hub_config(PROJECT_ROOT)
    staging = document_for(
        config.routes, exchange="yekuo.events", broker_url=BROKER, consumers=CONSUMERS, namespace="staging"
    )
    channel = staging["channels"]["yekuo.events.application.changed.customer_class"]
    assert channel["bindings"]["amqp"]["exchange"]["name"] == "staging.events"
    receive = staging["operations"]["workflow.receive.yekuo.events.application.changed.customer_class"]
    assert receive["x-yekuo-queue"] == "staging.workflow"
    assert "urn:yekuo:hub:default/marketing/application" in staging["info"]["description"]
    default = generated()["channels"]["yekuo.events.application.changed.customer_class"]
    assert default["bindings"]["amqp"]["exchange"]["name"] == "yekuo.events"
