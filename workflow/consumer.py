"""Bus consumer with an inbox: each event takes effect once, however often the bus delivers it.

A fetched batch is handled in one database transaction, each event inside its own savepoint. The
event id goes into the inbox in the same savepoint as the state change, so a redelivery after a crash
finds it there and has no second effect. Deliveries are acknowledged only after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import pydantic
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bus.port import Bus, Delivery
from canonical_model.envelope import CloudEvent
from store.database import utcnow
from store.parking import park
from store.schema import inbox

log = logging.getLogger(__name__)

EventHandler = Callable[[Connection, CloudEvent], None]


@dataclass
class ConsumerStats:
    """What a consumer has done since it started."""

    handled: int = 0
    duplicates: int = 0
    invalid: int = 0
    failed: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


class InboxConsumer:
    """Fetches from one queue and applies each new event with the handler, exactly once in effect."""

    def __init__(self, engine: Engine, bus: Bus, *, queue: str, name: str, handler: EventHandler) -> None:
        self._engine = engine
        self.bus = bus
        self._queue = queue
        self._name = name
        self._handler = handler
        self.stats = ConsumerStats()

    def consume_once(self, *, max_messages: int = 200, timeout_s: float = 0.5) -> int:
        """Handle one batch; return how many deliveries were settled."""
        deliveries = self.bus.fetch(self._queue, max_messages, timeout_s)
        if not deliveries:
            return 0
        acks: list[Delivery] = []
        failures: list[Delivery] = []
        with self._engine.begin() as conn:
            for delivery in deliveries:
                if self._handle(conn, delivery):
                    acks.append(delivery)
                else:
                    failures.append(delivery)
        for delivery in acks:
            self.bus.ack(delivery)
        for delivery in failures:
            # Dead-lettered to the queue's parking lot: an operator decides what happens next.
            self.bus.nack(delivery, requeue=False)
        return len(deliveries)

    def _handle(self, conn: Connection, delivery: Delivery) -> bool:
        message = delivery.message
        try:
            event = CloudEvent.model_validate_json(message.body)
        except pydantic.ValidationError as exc:
            park(
                conn,
                kind="invalid",
                reason_code="envelope",
                reason=f"message {message.message_id} on {self._queue} is not a CloudEvent: {_brief(exc)}",
                payload=message.body.decode("utf-8", errors="replace"),
                record_key=message.message_id,
            )
            self.stats.invalid += 1
            return True
        if self._seen(conn, event.id):
            self.stats.duplicates += 1
            return True
        savepoint = conn.begin_nested()
        try:
            conn.execute(inbox.insert().values(consumer=self._name, event_id=event.id, processed_at=utcnow()))
            self._handler(conn, event)
            savepoint.commit()
        except sa.exc.IntegrityError:
            # Another consumer of the same queue committed this event id first.
            savepoint.rollback()
            self.stats.duplicates += 1
            return True
        except Exception:
            savepoint.rollback()
            log.exception("consumer %s failed on event %s (%s)", self._name, event.id, event.type)
            self.stats.failed += 1
            return False
        self.stats.handled += 1
        self.stats.by_type[event.type] = self.stats.by_type.get(event.type, 0) + 1
        return True

    def _seen(self, conn: Connection, event_id: str) -> bool:
        query = sa.select(inbox.c.event_id).where(
            inbox.c.consumer == self._name, inbox.c.event_id == event_id
        )
        return conn.execute(query).first() is not None


def _brief(error: pydantic.ValidationError) -> str:
    """A one-line list of what is wrong, without pydantic's documentation links."""
    return "; ".join(f"{'.'.join(map(str, item['loc'])) or 'body'}: {item['msg']}" for item in error.errors())
