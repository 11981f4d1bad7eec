"""The stored form of an event a case is built from, and the source of the hub's own case events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from canonical_model.envelope import CloudEvent

M = TypeVar("M", bound=BaseModel)

# The hub's own events: decisions kept with the case, and notifications for other consumers.
HUB_SOURCE = "/hub/workflow"
HUB_SYSTEM = "hub"


def system_of(source: str) -> str:
    """The system named by an event source, e.g. /marketing/application -> marketing."""
    return source.strip("/").split("/", 1)[0] or HUB_SYSTEM


@dataclass(frozen=True)
class CaseEvent:
    """An event a case is built from, as kept in case_events.

    time is when the change happened at its source: the record's change time for an application, the
    reported time for a stage report, the decision time for the hub's own events.
    payload: the data as its model, when the event was decoded on arrival; a kept event read back has none.
    """

    event_id: str
    application_no: str
    source: str
    sequence: int
    type: str
    time: datetime
    data: Mapping[str, Any]
    visit: str | None = None
    payload: BaseModel | None = field(default=None, compare=False)

    @property
    def system(self) -> str:
        """marketing, pms, dispatch or hub."""
        return system_of(self.source)

    @property
    def from_hub(self) -> bool:
        """Whether the hub itself decided this (an assignment or an alert)."""
        return self.source == HUB_SOURCE

    @classmethod
    def of(
        cls,
        event: CloudEvent,
        application_no: str,
        time: datetime,
        visit: str | None = None,
        payload: BaseModel | None = None,
    ) -> CaseEvent:
        """The stored form of a CloudEvent, with its payload when it was decoded already.

        Its time is in UTC, as the store gives a kept event's time back: a case applies an event the same
        way on arrival and when rebuilt.
        """
        return cls(
            event.id,
            application_no,
            event.producer,
            event.sequence,
            event.type,
            time.astimezone(UTC),
            event.data,
            visit,
            payload,
        )


def payload_of(event: CaseEvent, model: type[M]) -> M:
    """A kept event's data as a model: the payload decoded on arrival, or else the kept data validated."""
    if isinstance(event.payload, model):
        return event.payload
    return model.model_validate(event.data)
