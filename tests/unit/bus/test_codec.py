"""Wire rules shared by both transports: header tables as RabbitMQ returns them, and what the wire refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bus.codec import (
    MessageEncodingError,
    check_message,
    check_properties,
    check_topology,
    decode_headers,
    encode_headers,
    unroutable_text,
)
from bus.port import Binding, ExchangeSpec, Message, QueueSpec, Topology
from ground.errors import ConfigError


def round_trip(headers: dict[str, object]) -> dict[str, object]:
    return decode_headers(encode_headers(headers))


def test_header_values_come_back_as_pika_decodes_them_from_the_wire() -> None:
    shanghai = timezone(timedelta(hours=8))
    decoded = round_trip(
        {
            "local_time": datetime(2024, 5, 1, 16, 30, 15, 999_999, tzinfo=shanghai),
            "big": 2**40,
            "amount": Decimal("12.50"),
            "nested": {"deep": [b"\x00", None, True]},
        }
    )

    assert decoded == {
        "local_time": datetime(2024, 5, 1, 8, 30, 15, tzinfo=UTC),
        "big": 2**40,
        "amount": Decimal("12.5"),
        "nested": {"deep": [b"\x00", None, True]},
    }
    assert type(decoded["big"]) is int


@pytest.mark.parametrize(
    ("headers", "complaint"),
    [
        ({"ratio": 0.5}, "type float"),
        ({"pair": (1, 2)}, "type tuple"),
        ({"when": datetime(2024, 1, 1).date()}, "type date"),
        ({1: "x"}, "header name 1 is not a string"),
        ({"k" * 256: "x"}, "header name"),
        ({"huge": 2**70}, "does not fit"),
    ],
)
def test_headers_the_wire_cannot_carry_are_refused_with_the_message_id(
    headers: dict[object, object], complaint: str
) -> None:
    with pytest.raises(MessageEncodingError, match=complaint) as raised:
        encode_headers(headers, message_id="m-9")  # type: ignore[arg-type]
    assert "'m-9'" in str(raised.value)


def test_check_message_refuses_overlong_properties_and_a_str_body() -> None:
    with pytest.raises(MessageEncodingError, match="routing key is 256 bytes"):
        check_message(Message(body=b"", routing_key="k" * 256, message_id="m-1"))
    with pytest.raises(MessageEncodingError, match="correlation_id is 258 bytes"):
        check_message(Message(body=b"", routing_key="k", message_id="m-1", correlation_id="关" * 86))
    with pytest.raises(MessageEncodingError, match="body must be bytes, got str"):
        check_message(Message(body="text", routing_key="k", message_id="m-1"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "headers",
    [
        {"cloudEvents:id": "e-1", "cloudEvents:subject": "南阳"},
        {"k" * 256: "x"},
        {1: "x"},
        {"ratio": 0.5, "id": "x"},
        {"nested": {"deep": "x"}},
        {},
    ],
)
def test_check_properties_refuses_exactly_what_check_message_refuses(headers: dict[object, object]) -> None:
    message = Message(body=b"", routing_key="k", message_id="m-1", headers=headers)  # type: ignore[arg-type]
    try:
        check_message(message)
    except MessageEncodingError as exc:
        with pytest.raises(MessageEncodingError) as raised:
            check_properties(message)
        assert str(raised.value) == str(exc)
    else:
        check_properties(message)


@pytest.mark.parametrize(
    ("topology", "complaint"),
    [
        (Topology(exchanges=(ExchangeSpec(""),)), "default exchange"),
        (Topology(exchanges=(ExchangeSpec("amq.mine"),)), "reserved"),
        (Topology(queues=(QueueSpec(""),)), "needs a name"),
        (Topology(queues=(QueueSpec("q", dead_letter_routing_key="k"),)), "no dead_letter_exchange"),
        (Topology(queues=(QueueSpec("q", message_ttl_ms=-1),)), "message_ttl_ms must be >= 0"),
        (Topology(queues=(QueueSpec("q", bindings=(Binding("", "q"),)),)), "default exchange"),
        (Topology(queues=(QueueSpec("q" * 256),)), "256 bytes"),
    ],
)
def test_check_topology_refuses_what_rabbitmq_would(topology: Topology, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        check_topology(topology)


def test_unroutable_text_names_exchange_keys_and_ids_and_stays_short() -> None:
    text = unroutable_text("events", [(f"key.{i}", f"m-{i}") for i in range(7)], 9)

    assert text.startswith("7 of 9 messages to exchange 'events' matched no queue: routing key 'key.0'")
    assert "(message 'm-4')" in text
    assert "m-5" not in text
    assert text.endswith("and 2 more")
