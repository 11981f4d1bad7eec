"""CloudEvents 1.0 envelope around every canonical event on the bus."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

EVENT_TYPE_PATTERN = r"^cn\.yekuo\.[a-z_]+(\.[a-z_]+)*\.v[0-9]+$"
SEQUENCE_PATTERN = r"^[1-9][0-9]{0,18}$"


def _sequence_number(value: object) -> object:
    """The wire's decimal string as an int; an int (as older outbox rows hold) passes through.

    Only plain decimal digits are accepted, so "007", "+7" or "7.0" fail instead of being read as 7.
    """
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit() or value.startswith("0"):
            raise ValueError(f"sequence must be a decimal string without leading zeros, got {value!r}")
        return int(value)
    return value


def _in_utc(value: datetime) -> datetime:
    # One form on the wire: every time is UTC, which pydantic writes with a `Z`.
    return value.astimezone(UTC)


# The sequence extension defines `sequence` as a String; the hub orders by its integer value, so the
# model holds an int and only the wire (JSON, AMQP headers) carries the decimal string.
SequenceNumber = Annotated[
    int,
    BeforeValidator(_sequence_number),
    Field(ge=1),
    PlainSerializer(str, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": SEQUENCE_PATTERN,
            "description": "per-subject sequence number as a decimal string (CloudEvents sequence "
            "extension); consumers order by its integer value",
        }
    ),
]


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 structured-mode event with the hub's ordering extensions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, description="unique event id; consumers deduplicate on it")
    source: str = Field(
        min_length=1,
        description="the producer: on the bus the hub instance's URI followed by the producer path, e.g. "
        "urn:yekuo:hub:prod-gd/marketing/application; inside the hub, before relaying, the path alone",
    )
    type: str = Field(
        pattern=EVENT_TYPE_PATTERN, description="event type, e.g. cn.yekuo.application.changed.v1"
    )
    subject: str = Field(min_length=1, description="the business key the event is about")
    time: Annotated[AwareDatetime, AfterValidator(_in_utc)] = Field(
        description="when the change happened, in UTC (written with a Z)"
    )
    dataschema: str = Field(min_length=1, description="URI of the JSON Schema of data")
    datacontenttype: Literal["application/json"] = "application/json"
    correlationid: str = Field(min_length=1, description="ties together every event caused by one change")
    sequence: SequenceNumber
    data: dict[str, Any] = Field(description="the canonical document")

    @property
    def producer(self) -> str:
        """The producer path (/<system>/<record type>, /hub/workflow) whatever instance published the event.

        The hub stores and compares producers by this path, so an event keeps its identity across the
        relay, which makes the source absolute, and across a change of the instance URI.
        """
        if self.source.startswith("/"):
            return self.source
        slash = self.source.find("/")
        return self.source[slash:] if slash >= 0 else "/"

    def published_by(self, instance_uri: str) -> CloudEvent:
        """The event as the instance publishes it: its source made absolute under the instance URI."""
        if not self.source.startswith("/"):
            return self
        return self.model_copy(update={"source": f"{instance_uri}{self.source}"})
