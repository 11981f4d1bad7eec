"""The AsyncAPI 3.0 document of the bus, built from the event catalogue, the route table and the consumers.

Channels are (exchange, routing-key template) pairs: a route's template such as
`application.changed.{customer_class}` becomes the channel address with `customer_class` as a parameter.
Messages are CloudEvents in structured mode: the AMQP body is the whole envelope (id, source, type, subject,
time, correlationid, sequence, data), so those attributes are described in the payload, which embeds the
canonical JSON Schemas (draft 2020-12) under components/schemas. `send` operations are what the hub
publishes, `receive` operations what each consumer queue reads.

AsyncAPI tools resolve every `$ref` from the document root, not from a schema's own `$id`, so the embedded
schemas lose `$id` and `$schema` (schemaFormat names the dialect) and their refs are rewritten to document
paths: `#/$defs/X` inside application.v1 becomes `#/components/schemas/application.v1/schema/$defs/X`, and
a schema URI such as `urn:yekuo:schema:envelope.v1` becomes `#/components/schemas/envelope.v1/schema`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter

from bus.factory import node_urls
from bus.namespace import broker_name
from canonical_model.events import CATALOGUE, lookup
from canonical_model.registry import MODELS, SCHEMA_URI_PREFIX, build_all, schema_name_of, schema_uri
from ground.identity import DEFAULT_INSTANCE_URI, DEFAULT_NAMESPACE
from ground.settings import Settings
from mappings.templates import parse_template
from pipeline.config import load_hub_config
from pipeline.consumers import ConsumerSpec
from routes.table import Route

ASYNCAPI_VERSION = "3.0.0"
JSON_SCHEMA_2020_12 = "application/schema+json;version=2020-12"
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
ENVELOPE_SCHEMA = "envelope.v1"
AMQP_BINDING_VERSION = "0.3.0"
# Keys of channels, operations and components may hold only these characters.
_UNSAFE_KEY = re.compile(r"[^\w.\-]")


@dataclass(frozen=True)
class PublishedEvent:
    """An event type the hub publishes: where, under which routing-key template, with which data model.

    key_model names the canonical model whose fields fill the routing-key placeholders; when it is the
    event's own data model, each placeholder's value can be read from the payload.
    """

    event_type: str
    exchange: str
    routing_key: str
    schema_name: str
    description: str
    producer: str
    key_model: str


def route_events(routes: Iterable[Route]) -> list[PublishedEvent]:
    """What the routes of the route table publish: each described by its route, else by the catalogue."""
    events = []
    for route in routes:
        entry = lookup(route.event_type)
        if entry is None:
            raise KeyError(
                f"route {route.name} publishes {route.event_type}, which the event catalogue lacks"
            )
        schema_name = schema_name_of(entry.payload)
        events.append(
            PublishedEvent(
                event_type=route.event_type,
                exchange=route.exchange,
                routing_key=route.routing_key.text,
                schema_name=schema_name,
                # A route's own description says what its records are; the catalogue's, what the type means.
                description=route.description or entry.description,
                producer=f"route {route.name} ({route.source_system}/{route.record_type})",
                key_model=schema_name,
            )
        )
    return events


def hub_events(exchange: str) -> list[PublishedEvent]:
    """The events the hub decides itself, on the channels the event catalogue gives them."""
    return [
        PublishedEvent(
            event_type=entry.event_type,
            exchange=exchange,
            routing_key=channel.routing_key,
            schema_name=schema_name_of(entry.payload),
            description=entry.description,
            producer=channel.producer,
            key_model=schema_name_of(channel.key_model),
        )
        for entry in CATALOGUE
        for channel in entry.channels
    ]


def build_asyncapi(
    events: Sequence[PublishedEvent],
    *,
    broker_url: str,
    consumers: Sequence[ConsumerSpec],
    version: str = "1.0.0",
    namespace: str = DEFAULT_NAMESPACE,
    instance_uri: str = DEFAULT_INSTANCE_URI,
) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of the given published events and the consumers reading them."""
    schemas = build_all()
    channels: dict[str, dict[str, Any]] = {}
    messages: dict[str, dict[str, Any]] = {}
    producers: dict[str, list[str]] = {}
    addresses: dict[str, str] = {}
    # The nodes of a cluster share their vhost, so the first node's is every node's.
    nodes = node_urls(broker_url)
    vhost = _vhost(nodes[0])
    for event in events:
        channel_id = _key(f"{event.exchange}.{event.routing_key}")
        channel = channels.setdefault(channel_id, _channel(event, schemas, vhost, namespace))
        message_id = _key(event.event_type)
        channel["messages"][message_id] = {"$ref": f"#/components/messages/{message_id}"}
        messages.setdefault(message_id, _message(event))
        producers.setdefault(channel_id, []).append(event.producer)
        addresses[channel_id] = event.routing_key

    operations: dict[str, dict[str, Any]] = {}
    for channel_id, channel in channels.items():
        operations[_key(f"publish.{channel_id}")] = _operation(
            "send",
            channel_id,
            channel,
            "The hub publishes (persistent, mandatory, with publisher confirms): "
            + "; ".join(dict.fromkeys(producers[channel_id])),
            {"deliveryMode": 2, "mandatory": True, "bindingVersion": AMQP_BINDING_VERSION},
        )
    for consumer in consumers:
        queue = broker_name(namespace, consumer.queue)
        for channel_id, channel in channels.items():
            if any(topic_may_match(topic, addresses[channel_id]) for topic in consumer.topics):
                operation = _operation(
                    "receive",
                    channel_id,
                    channel,
                    f"Consumer {consumer.name} reads queue {queue} (bound to "
                    f"{', '.join(consumer.topics)}); each event takes effect once through its inbox.",
                    {"ack": True, "bindingVersion": AMQP_BINDING_VERSION},
                )
                operation["x-yekuo-queue"] = queue
                operations[_key(f"{consumer.name}.receive.{channel_id}")] = operation

    used = {ENVELOPE_SCHEMA, *(event.schema_name for event in events)}
    document: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "yekuo-hub events",
            "version": version,
            "description": (
                "Canonical events of the 业扩报装 integration hub on its RabbitMQ topic exchanges. Every "
                "message is a CloudEvent 1.0 in structured mode (the body is the whole envelope); the AMQP "
                "properties repeat message_id = id, correlation_id = correlationid and type = type, and the "
                "headers carry every attribute but data as a `cloudEvents:` application property (e.g. "
                "cloudEvents:type), in its string form. time is always UTC with a Z; sequence is a decimal "
                "string. Consumers deduplicate on id and order per subject by sequence's integer value. "
                f"source is this instance's URI ({instance_uri}) followed by the producer path, e.g. "
                f"{instance_uri}/marketing/application."
            ),
        },
        "defaultContentType": CLOUDEVENTS_CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {
                name: {"schemaFormat": JSON_SCHEMA_2020_12, "schema": _embedded(schemas[name], name)}
                for name in sorted(used)
            },
            "messages": messages,
        },
    }
    servers = [server for server in map(broker_server, nodes) if server is not None]
    if len(servers) == 1:
        document["servers"] = {"broker": servers[0]}
    elif servers:
        document["servers"] = {f"broker-{number}": server for number, server in enumerate(servers, 1)}
    return document


def broker_server(broker_url: str) -> dict[str, Any] | None:
    """The AsyncAPI server of an amqp:// URL, without its credentials; None for the in-process bus."""
    parts = urlsplit(broker_url)
    if parts.scheme not in {"amqp", "amqps"}:
        return None
    port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    server: dict[str, Any] = {
        "host": f"{parts.hostname}:{port}",
        "protocol": parts.scheme,
        "protocolVersion": "0.9.1",
        "description": "the RabbitMQ broker the hub publishes to",
    }
    vhost = _vhost(broker_url)
    if vhost != "/":
        server["pathname"] = f"/{vhost}"
    return server


def topic_may_match(pattern: str, template: str) -> bool:
    """Whether an AMQP topic binding can match some routing key the template produces.

    A word of the template that holds a placeholder can be any word, so a literal word of the pattern
    may match it.
    """
    words = [(any(name for _, name in parse_template(word)), word) for word in template.split(".")]
    return _match(pattern.split("."), words)


def _match(pattern: list[str], words: list[tuple[bool, str]]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[skip:]) for skip in range(len(words) + 1))
    if not words:
        return False
    variable, word = words[0]
    return (head == "*" or variable or head == word) and _match(rest, words[1:])


def asyncapi_router(document: Mapping[str, Any]) -> APIRouter:
    """GET /asyncapi.json serving the given document (built once, at start-up)."""
    router = APIRouter(tags=["operations"])
    body = dict(document)

    @router.get("/asyncapi.json", summary="The AsyncAPI 3.0 document of the hub's events")
    def asyncapi() -> dict[str, Any]:
        return body

    return router


def _key(text: str) -> str:
    return _UNSAFE_KEY.sub("_", text.replace("{", "").replace("}", ""))


def _vhost(broker_url: str) -> str:
    path = urlsplit(broker_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def _channel(
    event: PublishedEvent, schemas: Mapping[str, dict[str, Any]], vhost: str, namespace: str
) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "address": event.routing_key,
        "title": f"{event.exchange}: {event.routing_key}",
        "messages": {},
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": broker_name(namespace, event.exchange),
                    "type": "topic",
                    "durable": True,
                    "autoDelete": False,
                    "vhost": vhost,
                },
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }
    names = [name for _, name in parse_template(event.routing_key) if name]
    if names:
        channel["parameters"] = {name: _parameter(event, name, schemas[event.key_model]) for name in names}
    return channel


def _parameter(event: PublishedEvent, name: str, key_schema: Mapping[str, Any]) -> dict[str, Any]:
    """A routing-key placeholder: its meaning and values from the model field that fills it."""
    field = dict(key_schema.get("properties", {}).get(name, {}))
    target = field.get("$ref") or next((o["$ref"] for o in field.get("allOf", []) if "$ref" in o), None)
    if isinstance(target, str):
        field = {**key_schema.get("$defs", {}).get(target.rsplit("/", 1)[-1], {}), **field}
    model = _model_title(event.key_model)
    parameter: dict[str, Any] = {
        "description": f"{field.get('description') or name} ({model}.{name})",
    }
    if isinstance(field.get("enum"), list):
        parameter["enum"] = [str(value) for value in field["enum"]]
    if event.key_model == event.schema_name:
        parameter["location"] = f"$message.payload#/data/{name}"
    return parameter


def _model_title(schema_name: str) -> str:
    return next(model.__name__ for model, name in MODELS.values() if name == schema_name)


def _message(event: PublishedEvent) -> dict[str, Any]:
    uri = schema_uri(event.schema_name)
    return {
        "name": event.event_type,
        "title": _model_title(event.schema_name),
        "summary": event.description,
        "contentType": CLOUDEVENTS_CONTENT_TYPE,
        "correlationId": {
            "description": "ties together every event caused by one change",
            "location": "$message.payload#/correlationid",
        },
        "payload": {
            "schemaFormat": JSON_SCHEMA_2020_12,
            "schema": {
                "allOf": [{"$ref": schema_path(ENVELOPE_SCHEMA)}],
                "properties": {
                    "type": {"const": event.event_type},
                    "dataschema": {"const": uri},
                    "data": {"$ref": schema_path(event.schema_name)},
                },
            },
        },
        "bindings": {"amqp": {"messageType": event.event_type, "bindingVersion": AMQP_BINDING_VERSION}},
    }


def schema_path(schema_name: str, fragment: str = "") -> str:
    """The document path of an embedded canonical schema, or of a JSON pointer fragment inside it."""
    return f"#/components/schemas/{schema_name}/schema{fragment}"


def document_ref(ref: str, within: str) -> str:
    """A `$ref` of the canonical schema `within`, rewritten to resolve from the AsyncAPI document root."""
    target, _, fragment = ref.partition("#")
    if not target:
        return schema_path(within, fragment)
    if target.startswith(SCHEMA_URI_PREFIX):
        return schema_path(target.removeprefix(SCHEMA_URI_PREFIX), fragment)
    raise ValueError(f"schema {within}: $ref {ref!r} is neither local nor a canonical schema URI")


def _embedded(schema: Mapping[str, Any], schema_name: str) -> dict[str, Any]:
    """A canonical schema as embedded in the document: no `$id`/`$schema`, every `$ref` a document path."""
    body = {key: value for key, value in schema.items() if key not in {"$id", "$schema"}}
    rewritten: dict[str, Any] = _rewrite_refs(body, schema_name)
    return rewritten


def _rewrite_refs(node: Any, schema_name: str) -> Any:
    if isinstance(node, dict):
        return {
            key: document_ref(value, schema_name)
            if key == "$ref" and isinstance(value, str)
            else _rewrite_refs(value, schema_name)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(item, schema_name) for item in node]
    return node


def _operation(
    action: str, channel_id: str, channel: Mapping[str, Any], description: str, binding: dict[str, Any]
) -> dict[str, Any]:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel_id}"},
        "description": description,
        "messages": [{"$ref": f"#/channels/{channel_id}/messages/{name}"} for name in channel["messages"]],
        "bindings": {"amqp": binding},
    }


def document_for(
    routes: Iterable[Route],
    *,
    exchange: str,
    broker_url: str,
    consumers: Sequence[ConsumerSpec],
    namespace: str = DEFAULT_NAMESPACE,
    instance_uri: str = DEFAULT_INSTANCE_URI,
) -> dict[str, Any]:
    """The document of a loaded configuration: its routes plus the hub's own events on its exchange."""
    return build_asyncapi(
        [*route_events(routes), *hub_events(exchange)],
        broker_url=broker_url,
        consumers=consumers,
        namespace=namespace,
        instance_uri=instance_uri,
    )


def settings_document(settings: Settings, consumers: Sequence[ConsumerSpec]) -> dict[str, Any]:
    """The document of the configuration, exchange and broker the settings name, read by the consumers."""
    config = load_hub_config(settings.config_dir)
    return document_for(
        config.routes,
        exchange=settings.exchange,
        broker_url=settings.bus_url,
        consumers=consumers,
        namespace=settings.bus_namespace,
        instance_uri=settings.instance_uri,
    )


def render(document: Mapping[str, Any]) -> str:
    """The document as JSON text, as exported and committed."""
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
