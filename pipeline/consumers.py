"""What the hub knows of each consumer it runs: name, topics, handler, and the queues named after it.

The table of the hub's consumers is the wiring's (yekuo/consumers.py): it names handlers of the workflow,
feasibility and subscription layers, which stand above the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bus.port import Binding, ExchangeSpec, QueueSpec, Topology
from bus.retry import (
    DEAD_LETTER_EXCHANGE,
    REQUEUE_EXCHANGE,
    RetryPolicy,
    parking_queue,
    retry_exchanges,
    retry_queues,
)
from pipeline.consumer import DeferredStep, EventHandler


@dataclass(frozen=True)
class ConsumerSpec:
    """A consumer: its name (queue yekuo.<name>, inbox key), the topics it binds and its handler, with the
    step of the handler's deferred work if it leaves any (InboxConsumer.work_once)."""

    name: str
    topics: tuple[str, ...]
    handler: EventHandler
    deferred: DeferredStep | None = None

    @property
    def queue(self) -> str:
        """The consumer's durable queue."""
        return f"yekuo.{self.name}"

    @property
    def parking_queue(self) -> str:
        """Where the consumer's messages go after their last retry, for an operator."""
        return parking_queue(self.queue)


def consumer_topology(
    exchanges: Sequence[str], consumers: Sequence[ConsumerSpec], retry: RetryPolicy | None = None
) -> Topology:
    """The event exchanges and each consumer's queue (bound to its topics), retry queues and parking lot."""
    policy = retry or RetryPolicy()
    queues: list[QueueSpec] = []
    for consumer in consumers:
        topics = tuple(Binding(exchange, topic) for exchange in exchanges for topic in consumer.topics)
        queues.append(
            QueueSpec(
                consumer.queue,
                bindings=(*topics, Binding(REQUEUE_EXCHANGE, consumer.queue)),
                dead_letter_exchange=DEAD_LETTER_EXCHANGE,
                dead_letter_routing_key=consumer.queue,
            )
        )
        queues.extend(retry_queues(consumer.queue, policy))
    return Topology(
        exchanges=(*(ExchangeSpec(exchange) for exchange in exchanges), *retry_exchanges()),
        queues=tuple(queues),
    )
