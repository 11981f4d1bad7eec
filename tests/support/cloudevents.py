"""How integrators' tools read a bus message: the official CloudEvents SDK, from the body and the headers."""

from __future__ import annotations

import json
from typing import Any

from cloudevents.http import from_http

from bus.codec import cloudevent_attributes
from bus.port import Delivery


def sdk_reads(delivery: Delivery) -> tuple[dict[str, Any], dict[str, Any]]:
    """The attributes the official SDK reads from a delivery: structured (body), binary (properties)."""
    message = delivery.message
    structured = from_http({"content-type": message.content_type}, message.body)
    data = json.loads(message.body)["data"]
    attributes = cloudevent_attributes(message.headers)
    assert all(isinstance(value, str) for value in attributes.values()), attributes
    binary_headers = {f"ce-{name}": value for name, value in attributes.items()}
    binary = from_http({**binary_headers, "content-type": "application/json"}, json.dumps(data))
    assert structured.data == binary.data == data
    return structured.get_attributes(), binary.get_attributes()
