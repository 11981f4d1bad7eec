"""The Bus port: what the hub needs from a message broker, independent of the transport."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

HeaderValue = Any


@dataclass(frozen=True)
class Message:
    """One message as it travels on the wire: opaque body bytes plus AMQP properties."""

    body: bytes
    routing_key: str
    message_id: str
    headers: Mapping[str, HeaderValue] = field(default_factory=dict)
    content_type: str = "application/cloudevents+json; charset=utf-8"
    correlation_id: str | None = None
    type: str | None = None


@dataclass(frozen=True)
class Delivery:
    """A message handed to a consumer; it stays unacknowledged until ack() or nack() on the same bus."""

    message: Message
    exchange: str
    queue: str
    delivery_tag: int
    redelivered: bool
    # How often the broker has handed this message out before (quorum queues' x-delivery-count).
    delivery_count: int = 0


@dataclass(frozen=True)
class ExchangeSpec:
    """A durable exchange."""

    name: str
    type: Literal["topic", "fanout", "direct"] = "topic"


@dataclass(frozen=True)
class Binding:
    """Routes messages from exchange to a queue when the routing key matches the pattern."""

    exchange: str
    pattern: str


@dataclass(frozen=True)
class QueueSpec:
    """A durable queue with its bindings and optional dead-lettering and message TTL."""

    name: str
    bindings: tuple[Binding, ...] = ()
    queue_type: Literal["quorum", "classic"] = "quorum"
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    message_ttl_ms: int | None = None
    # Quorum queues only: keep a dead-lettered message until the target queue confirmed it (RabbitMQ's
    # default drops it if the broker fails in between).
    at_least_once_dead_letters: bool = False


@dataclass(frozen=True)
class Topology:
    """Everything a component declares before it publishes or consumes; declaring is idempotent."""

    exchanges: tuple[ExchangeSpec, ...] = ()
    queues: tuple[QueueSpec, ...] = ()


class Confirmation(Protocol):
    """The broker's answer to a batch sent with Bus.send()."""

    def wait(self) -> None:
        """Return once the broker has confirmed every message of the batch; raise as Bus.publish() does.

        Asked again, it says the same.
        """


class _Settled:
    """The confirmation of an empty batch: nothing to wait for."""

    def wait(self) -> None:
        return None


SETTLED: Confirmation = _Settled()


class Bus(Protocol):
    """A connection to a broker. Not thread-safe: each thread opens its own with bus.open_bus(url).

    Both transports raise the same errors: ConfigError for a missing exchange or queue or a
    redeclaration with other arguments, BusUnavailableError once the connection is closed or lost
    (open a new bus), BusError for settling a delivery this connection does not hold, and
    bus.codec.MessageEncodingError for a message the wire cannot carry (nothing of its batch is sent).
    """

    def declare(self, topology: Topology) -> None:
        """Declare exchanges, queues and bindings (idempotent)."""

    def publish(self, exchange: str, messages: Sequence[Message]) -> None:
        """Publish persistently and mandatorily; return only once the broker has confirmed every message.

        Raises UnroutableError if any message matched no queue, PublishNotConfirmedError if the broker
        nacked one, BusUnavailableError if the connection failed. On error, the caller must treat every
        message of the batch as unsent (some may still arrive: consumers deduplicate by message id).
        """

    def send(self, exchange: str, messages: Sequence[Message]) -> Confirmation:
        """Publish as publish() does, but return before the broker's confirms; wait() on the result settles.

        Later batches may be sent before earlier ones are settled; each batch's outcome is its own, and a
        failed batch tells nothing about the others. A message the wire cannot carry, and a missing
        exchange (ConfigError), raise here, before anything of its batch is sent. A batch that shares a
        message id with one still unsettled waits for that one first.
        """

    def fetch(self, queue: str, max_messages: int, timeout_s: float) -> list[Delivery]:
        """Return up to max_messages deliveries, waiting at most timeout_s for the first one."""

    def ack(self, delivery: Delivery) -> None:
        """Settle a delivery as processed."""

    def nack(self, delivery: Delivery, *, requeue: bool) -> None:
        """Refuse a delivery: requeue it for redelivery, or dead-letter it (or drop it if no DLX)."""

    def queue_depth(self, queue: str) -> int:
        """Messages ready in the queue (not counting unacknowledged ones)."""

    def purge(self, queue: str) -> int:
        """Remove every ready message from the queue; return how many."""

    def delete_queue(self, queue: str) -> None:
        """Delete a queue with its messages and bindings; deleting a missing queue is not an error."""

    def delete_exchange(self, exchange: str) -> None:
        """Delete an exchange and the bindings from it; deleting a missing exchange is not an error."""

    def close(self) -> None:
        """Close the connection; unacknowledged deliveries return to their queues."""
