"""Moves messages from the consumers' parking lots into the hub database, where operators list them.

One place for everything parked: invalid records and dead letters alike are rows of the `parked`
table, so the admin API and `yekuo dlq` read one table. A message is acknowledged only after its row
is committed; if the hub dies in between, the redelivered copy is recognised by its message id and
not parked twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bus.port import Bus, Delivery
from bus.retry import ORIGINAL_EXCHANGE_HEADER, ORIGINAL_KEY_HEADER, failures_of
from ground.errors import FencedOutError
from store.leases import Fence, check_fence
from store.parking import park
from store.schema import parked


class ParkingDrainer:
    """Drains the given parking queues into the parked table."""

    def __init__(self, engine: Engine, bus: Bus, queues: Sequence[tuple[str, str]]) -> None:
        """queues: (consumer queue, its parking queue) pairs."""
        self._engine = engine
        self.bus = bus
        self._queues = tuple(queues)
        self.drained = 0

    def drain_once(
        self, *, max_messages: int = 100, timeout_s: float = 0.05, fence: Fence | None = None
    ) -> int:
        """Move what is waiting now; return how many messages were settled.

        With fence (the drainer's lease), rows are added only while its token is current; otherwise the
        fetched messages go back to their parking queue and FencedOutError is raised.
        """
        settled = 0
        for queue, parking in self._queues:
            deliveries = self.bus.fetch(parking, max_messages, timeout_s)
            if not deliveries:
                continue
            try:
                with self._engine.begin() as conn:
                    if fence is not None:
                        check_fence(conn, fence)
                    for delivery in deliveries:
                        _park_dead_letter(conn, queue, delivery)
            except FencedOutError:
                for delivery in deliveries:
                    self.bus.nack(delivery, requeue=True)
                raise
            for delivery in deliveries:
                self.bus.ack(delivery)
            settled += len(deliveries)
        self.drained += settled
        return settled


def _park_dead_letter(conn: Connection, queue: str, delivery: Delivery) -> None:
    message = delivery.message
    headers = dict(message.headers)
    already = conn.execute(
        sa.select(parked.c.id).where(
            parked.c.kind == "dead", parked.c.status == "parked", parked.c.record_key == message.message_id
        )
    ).first()
    if already is not None:
        return
    failures = failures_of(headers)
    last_error = failures[-1]["error"] if failures else "dead-lettered by the broker"
    park(
        conn,
        kind="dead",
        reason_code="retries_exhausted",
        reason=f"{queue}: {len(failures)} failed attempt(s); last: {last_error}",
        record_key=message.message_id,
        payload=_payload(queue, delivery, headers, failures),
    )


def _payload(
    queue: str, delivery: Delivery, headers: dict[str, Any], failures: list[dict[str, Any]]
) -> dict[str, Any]:
    message = delivery.message
    return {
        "queue": queue,
        "exchange": headers.get(ORIGINAL_EXCHANGE_HEADER, delivery.exchange),
        "routing_key": headers.get(ORIGINAL_KEY_HEADER, message.routing_key),
        "message_id": message.message_id,
        "correlation_id": message.correlation_id,
        "type": message.type,
        "content_type": message.content_type,
        "body": message.body.decode("utf-8", errors="replace"),
        "headers": _json_safe(headers),
        "failures": _json_safe(failures),
    }


def _json_safe(value: Any) -> Any:
    """AMQP headers may hold bytes and datetimes; the parked row stores JSON."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
