"""CloudEvents 1.0 envelope around every canonical event on the bus."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

EVENT_TYPE_PATTERN = r"^cn\.yekuo\.[a-z_]+(\.[a-z_]+)*\.v[0-9]+$"


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 structured-mode event with the hub's ordering extensions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, description="unique event id; consumers deduplicate on it")
    source: str = Field(
        min_length=1, description="URI reference of the producer, e.g. /marketing/application"
    )
    type: str = Field(
        pattern=EVENT_TYPE_PATTERN, description="event type, e.g. cn.yekuo.application.changed.v1"
    )
    subject: str = Field(min_length=1, description="the business key the event is about")
    time: AwareDatetime = Field(description="when the change happened")
    dataschema: str = Field(min_length=1, description="URI of the JSON Schema of data")
    datacontenttype: Literal["application/json"] = "application/json"
    correlationid: str = Field(min_length=1, description="ties together every event caused by one change")
    sequence: int = Field(ge=1, description="per-subject sequence number, for ordering")
    data: dict[str, Any] = Field(description="the canonical document")
