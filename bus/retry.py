"""Retry and parking for consumers: growing delays with TTL queues, then a parking lot with the history.

A consumer that fails on a message publishes a copy to retry queue n (TTL = the n-th delay), which
dead-letters it back into the consumer's own queue when the TTL runs out: no consumer ever sleeps.
After the last delay the copy goes to the consumer's parking lot instead, carrying every failure in
its headers. The original delivery is acknowledged only once the copy is confirmed, so a crash in
between redelivers the original (the inbox absorbs the duplicate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bus.port import Binding, Delivery, ExchangeSpec, Message, QueueSpec
from ground import clock

RETRY_EXCHANGE = "yekuo.retry"
REQUEUE_EXCHANGE = "yekuo.requeue"
DEAD_LETTER_EXCHANGE = "yekuo.dead"

ATTEMPT_HEADER = "x-yekuo-attempt"
FAILURES_HEADER = "x-yekuo-failures"
ORIGINAL_EXCHANGE_HEADER = "x-yekuo-original-exchange"
ORIGINAL_KEY_HEADER = "x-yekuo-original-routing-key"
# Failure texts are kept short: the headers travel with every retry.
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class RetryPolicy:
    """The delays between attempts; len(delays_ms) retries follow the first failure."""

    delays_ms: tuple[int, ...] = (1_000, 5_000, 30_000)

    def retry_queue(self, queue: str, attempt: int) -> str:
        """The queue that holds a message before its attempt-th retry (1-based).

        The delay is part of the name: a queue's TTL cannot change once declared, so new delays get
        new queues instead of a redeclaration error.
        """
        return f"{queue}.retry.{attempt}.{self.delays_ms[attempt - 1]}ms"


def retry_exchanges() -> tuple[ExchangeSpec, ...]:
    """The exchanges retries and parking use."""
    return (
        ExchangeSpec(RETRY_EXCHANGE, "direct"),
        ExchangeSpec(REQUEUE_EXCHANGE, "direct"),
        ExchangeSpec(DEAD_LETTER_EXCHANGE),
    )


def retry_queues(queue: str, policy: RetryPolicy) -> tuple[QueueSpec, ...]:
    """The delay queues and the parking lot of one consumer queue."""
    delays = tuple(
        QueueSpec(
            policy.retry_queue(queue, attempt),
            bindings=(Binding(RETRY_EXCHANGE, policy.retry_queue(queue, attempt)),),
            message_ttl_ms=delay,
            dead_letter_exchange=REQUEUE_EXCHANGE,
            dead_letter_routing_key=queue,
            at_least_once_dead_letters=True,
        )
        for attempt, delay in enumerate(policy.delays_ms, start=1)
    )
    return (*delays, QueueSpec(parking_queue(queue), bindings=(Binding(DEAD_LETTER_EXCHANGE, queue),)))


def parking_queue(queue: str) -> str:
    """Where a consumer queue's messages go after their last retry."""
    return f"{queue}.parking"


def failures_of(headers: Any) -> list[dict[str, Any]]:
    """The failure history a message carries."""
    value = headers.get(FAILURES_HEADER) if isinstance(headers, dict) else None
    return list(value) if isinstance(value, list) else []


def next_hop(delivery: Delivery, error: BaseException, policy: RetryPolicy) -> tuple[str, Message, bool]:
    """Where a failed delivery goes next: (exchange, message copy, whether this parks it)."""
    message = delivery.message
    headers: dict[str, Any] = dict(message.headers)
    attempt = int(headers.get(ATTEMPT_HEADER, 0)) + 1
    history = [
        *failures_of(headers),
        {"at": clock.now().isoformat(), "attempt": attempt, "error": _describe(error)},
    ]
    headers[ATTEMPT_HEADER] = attempt
    headers[FAILURES_HEADER] = history
    headers.setdefault(ORIGINAL_EXCHANGE_HEADER, delivery.exchange)
    headers.setdefault(ORIGINAL_KEY_HEADER, message.routing_key)
    parks = attempt > len(policy.delays_ms)
    exchange = DEAD_LETTER_EXCHANGE if parks else RETRY_EXCHANGE
    routing_key = delivery.queue if parks else policy.retry_queue(delivery.queue, attempt)
    copy = Message(
        body=message.body,
        routing_key=routing_key,
        message_id=message.message_id,
        headers=headers,
        content_type=message.content_type,
        correlation_id=message.correlation_id,
        type=message.type,
    )
    return exchange, copy, parks


def _describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text[:MAX_ERROR_CHARS]


def group_by_exchange(hops: Sequence[tuple[str, Message]]) -> dict[str, list[Message]]:
    """Copies grouped per exchange, for one confirmed publish each."""
    grouped: dict[str, list[Message]] = {}
    for exchange, message in hops:
        grouped.setdefault(exchange, []).append(message)
    return grouped
