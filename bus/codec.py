"""Wire rules shared by both transports: AMQP header tables as pika encodes them, property and name limits.

Both buses check a whole batch with check_message() before anything is sent, so a message the wire
cannot carry fails the same way, with the same error, on memory:// and amqp://. The in-process bus
stores headers as the encoded table (encode_headers) and decodes them on delivery, so a consumer sees
exactly what it would see from RabbitMQ: datetimes lose sub-second precision and come back in UTC,
Decimals come back normalized, and floats and tuples are refused.

Events travel in CloudEvents structured mode (the body is the whole JSON envelope) and, as the AMQP
binding allows, also carry every attribute as a `cloudEvents:`-prefixed application property (AMQP 0-9-1
headers), so that a broker or consumer can route and filter without parsing the body.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic_core
from pika import compat as pika_compat
from pika import data as pika_data
from pika import exceptions as pika_exceptions

from bus.port import Message, Topology
from canonical_model.envelope import CloudEvent
from ground.errors import BusError, ConfigError

# AMQP 0-9-1 short strings (routing keys, names, message properties) carry at most 255 bytes of UTF-8.
SHORTSTR_MAX_BYTES = 255


class MessageEncodingError(BusError):
    """A message cannot be put on the wire (a header value AMQP cannot carry, a property too long).

    Retrying cannot help: the message itself must change.
    """


def check_shortstr(what: str, value: str) -> None:
    """Refuse a value that does not fit an AMQP short string."""
    size = len(value.encode("utf-8"))
    if size > SHORTSTR_MAX_BYTES:
        raise MessageEncodingError(f"{what} is {size} bytes of UTF-8; AMQP allows {SHORTSTR_MAX_BYTES}")


def encode_headers(headers: Mapping[str, Any], *, message_id: str = "?") -> bytes:
    """Encode a header table exactly as pika puts it on the wire."""
    for key in headers:
        if not isinstance(key, str):
            raise MessageEncodingError(f"message {message_id!r}: header name {key!r} is not a string")
        check_shortstr(f"message {message_id!r}: header name {key[:40]!r}", key)
    pieces: list[bytes] = []
    try:
        pika_data.encode_table(pieces, dict(headers))
    except pika_exceptions.UnsupportedAMQPFieldException as exc:
        value = exc.args[1] if len(exc.args) > 1 else None
        raise MessageEncodingError(
            f"message {message_id!r}: header value {value!r} of type {type(value).__name__} cannot travel "
            "in an AMQP table (use str, bytes, int, bool, Decimal, datetime, None, list or dict)"
        ) from exc
    except (pika_exceptions.ShortStringTooLong, struct.error, AttributeError, TypeError) as exc:
        raise MessageEncodingError(f"message {message_id!r}: a header does not fit AMQP: {exc!r}") from exc
    return b"".join(pieces)


def decode_headers(encoded: bytes) -> dict[str, Any]:
    """Decode a header table produced by encode_headers()."""
    table, _ = pika_data.decode_table(encoded, 0)
    return {_as_str(key): normalize_value(value) for key, value in table.items()}


def normalize_value(value: Any) -> Any:
    """Turn a value pika decoded into plain Python: its `long` subclass becomes int, recursively."""
    if isinstance(value, pika_compat.long):
        return int(value)
    if isinstance(value, dict):
        return {_as_str(key): normalize_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalize_value(item) for item in value]
    return value


def _as_str(key: str | bytes) -> str:
    return key if isinstance(key, str) else key.decode("utf-8", errors="replace")


# The binding's prefix for attributes in application properties (CloudEvents AMQP binding 1.0, 3.1.3.1).
# Its later revision also allows `cloudEvents_` for JMS-style selectors, which readers here accept too.
CLOUDEVENTS_PREFIX = "cloudEvents:"
CLOUDEVENTS_PREFIXES = (CLOUDEVENTS_PREFIX, "cloudEvents_")
# Left out as the binding says: the AMQP content type stands for it (and the body is the data).
_NOT_A_PROPERTY = frozenset({"data", "datacontenttype"})


def cloudevent_properties(event: CloudEvent) -> dict[str, str]:
    """Every attribute of the event as a `cloudEvents:` application property, in its canonical string form.

    Strings throughout: `time` stays the RFC 3339 text with its `Z` (an AMQP timestamp would drop the
    sub-second part) and `sequence` is the String the sequence extension defines.
    """
    return _properties(event.model_dump(mode="json"))


def cloudevent_wire(event: CloudEvent) -> tuple[bytes, dict[str, str]]:
    """The event's structured-mode body (as model_dump_json() writes it) and its properties.

    Both come from one serialization of the event, the body written from it by pydantic's own JSON writer.
    """
    wire = event.model_dump(mode="json")
    return pydantic_core.to_json(wire), _properties(wire)


def _properties(wire: Mapping[str, Any]) -> dict[str, str]:
    return {
        f"{CLOUDEVENTS_PREFIX}{name}": str(value)
        for name, value in wire.items()
        if name not in _NOT_A_PROPERTY
    }


def cloudevent_attributes(headers: Mapping[str, Any]) -> dict[str, Any]:
    """The CloudEvents attributes among a message's application properties, without their prefix."""
    return {
        name.removeprefix(prefix): value
        for name, value in headers.items()
        for prefix in CLOUDEVENTS_PREFIXES
        if name.startswith(prefix)
    }


def check_message(message: Message) -> bytes:
    """Check that every property of the message fits the wire; return its encoded header table."""
    check_properties(message)
    return encode_headers(message.headers, message_id=message.message_id)


def check_properties(message: Message) -> None:
    """Refuse what check_message() refuses, for a transport that encodes the headers itself as it sends.

    A table whose values are all text fits wherever its names do, so it is checked without being encoded:
    the transport's own encoding is then the only one.
    """
    if not isinstance(message.body, bytes):
        raise MessageEncodingError(
            f"message {message.message_id!r}: body must be bytes, got {type(message.body).__name__}"
        )
    check_shortstr(f"message {message.message_id[:40]!r}: message_id", message.message_id)
    check_shortstr(f"message {message.message_id!r}: routing key", message.routing_key)
    check_shortstr(f"message {message.message_id!r}: content_type", message.content_type)
    if message.correlation_id is not None:
        check_shortstr(f"message {message.message_id!r}: correlation_id", message.correlation_id)
    if message.type is not None:
        check_shortstr(f"message {message.message_id!r}: type", message.type)
    headers = message.headers
    if not all(type(value) is str for value in headers.values()):
        encode_headers(headers, message_id=message.message_id)
        return
    for key, value in headers.items():
        if not isinstance(key, str):
            raise MessageEncodingError(f"message {message.message_id!r}: header name {key!r} is not a string")
        check_shortstr(f"message {message.message_id!r}: header name {key[:40]!r}", key)
        # What pika does with a text value; a lone surrogate fails here as it would there.
        value.encode("utf-8")


def check_fetch_size(max_messages: int) -> None:
    """Refuse a fetch batch size below one."""
    if max_messages < 1:
        raise ConfigError(f"fetch max_messages must be at least 1, got {max_messages}")


def unroutable_text(exchange: str, returned: Sequence[tuple[str, str]], total: int) -> str:
    """The UnroutableError text for (routing key, message id) pairs that matched no queue."""
    shown = ", ".join(f"routing key {key!r} (message {message_id!r})" for key, message_id in returned[:5])
    more = f" and {len(returned) - 5} more" if len(returned) > 5 else ""
    return f"{len(returned)} of {total} messages to exchange {exchange!r} matched no queue: {shown}{more}"


def check_topology(topology: Topology) -> None:
    """Refuse what RabbitMQ would refuse or silently turn into something else, before declaring anything."""
    for exchange in topology.exchanges:
        if not exchange.name:
            raise ConfigError("the default exchange '' cannot be declared")
        if exchange.name.startswith("amq."):
            raise ConfigError(f"exchange {exchange.name!r}: names starting with 'amq.' are reserved")
        _check_name("exchange", exchange.name)
    for queue in topology.queues:
        if not queue.name:
            # RabbitMQ would invent a server-named queue that nothing else could find.
            raise ConfigError("a queue needs a name")
        _check_name("queue", queue.name)
        if queue.dead_letter_routing_key is not None and queue.dead_letter_exchange is None:
            raise ConfigError(
                f"queue {queue.name!r}: dead_letter_routing_key set but no dead_letter_exchange"
            )
        if queue.at_least_once_dead_letters and (
            queue.queue_type != "quorum" or not queue.dead_letter_exchange
        ):
            raise ConfigError(
                f"queue {queue.name!r}: at-least-once dead-lettering needs a quorum queue "
                "and a dead-letter exchange"
            )
        if queue.message_ttl_ms is not None and queue.message_ttl_ms < 0:
            raise ConfigError(
                f"queue {queue.name!r}: message_ttl_ms must be >= 0, got {queue.message_ttl_ms}"
            )
        for binding in queue.bindings:
            if not binding.exchange:
                raise ConfigError(f"queue {queue.name!r}: cannot bind to the default exchange ''")
            check_shortstr_config(f"queue {queue.name!r}: binding pattern", binding.pattern)


def _check_name(kind: str, name: str) -> None:
    check_shortstr_config(f"{kind} name {name[:40]!r}", name)


def check_shortstr_config(what: str, value: str) -> None:
    """Like check_shortstr, for names in a topology (a configuration error, not a message error)."""
    size = len(value.encode("utf-8"))
    if size > SHORTSTR_MAX_BYTES:
        raise ConfigError(f"{what} is {size} bytes of UTF-8; AMQP allows {SHORTSTR_MAX_BYTES}")
