"""An event as a consumer's handler receives it: the envelope, and its data decoded once.

The inbox consumer hands each event it reads to its handler in a DecodedEvent. The data is decoded into the
payload model the event catalogue names for the type when a handler first asks for it, and kept: a consumer
validates an event's data once, however many of its parts read the payload, and a batch applied again after
another event's failure does not decode it anew. A handler that keeps events as they are (the event feed)
never asks, so it also takes types the catalogue lacks.
"""

from __future__ import annotations

from typing import TypeVar

import pydantic

from canonical_model.envelope import CloudEvent
from canonical_model.events import lookup
from ground.errors import InvalidRecordError, SchemaViolationError

M = TypeVar("M", bound=pydantic.BaseModel)


class DecodedEvent:
    """A CloudEvent and, once asked for, its data as the catalogue's payload model of its type."""

    __slots__ = ("_payload", "event")

    def __init__(self, event: CloudEvent) -> None:
        self.event = event
        self._payload: pydantic.BaseModel | None = None

    @property
    def payload(self) -> pydantic.BaseModel:
        """The data as the payload model of the event's type, decoded on first use.

        Raises SchemaViolationError when the data does not satisfy the model (each time it is asked for, as
        a failed decoding is not kept), InvalidRecordError when the catalogue has no model for the type.
        """
        if self._payload is None:
            self._payload = _decode(self.event)
        return self._payload

    def payload_as(self, model: type[M]) -> M:
        """The payload, which the handler expects to be a model; InvalidRecordError when it is another."""
        payload = self.payload
        if not isinstance(payload, model):
            raise InvalidRecordError(
                f"event {self.event.id} ({self.event.type}) carries a {type(payload).__name__}, "
                f"not a {model.__name__}"
            )
        return payload


def _decode(event: CloudEvent) -> pydantic.BaseModel:
    entry = lookup(event.type)
    if entry is None:
        raise InvalidRecordError(
            f"event {event.id}: the event catalogue has no payload model for {event.type}"
        )
    try:
        return entry.payload.model_validate(event.data)
    except pydantic.ValidationError as exc:
        raise SchemaViolationError(
            f"event {event.id} ({event.type}) is not a valid {entry.payload.__name__}: {exc}"
        ) from exc
