"""A deployment's namespace on a shared broker: its own exchanges and queues, so that staging and production
on one RabbitMQ never share a stream.

The hub names its exchanges and queues `yekuo.<name>` (yekuo.events, yekuo.workflow, yekuo.retry, …). Under
namespace `staging` the broker sees `staging.events`, `staging.workflow`, `staging.retry`, … instead: the
NamespacedBus maps every exchange and queue name on the way to the broker and back, so the rest of the hub
keeps its names. Routing keys stay as they are: each namespace's keys route only within its own exchanges.
The default namespace `yekuo` maps every name to itself, so an existing deployment keeps its broker names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from bus.port import Binding, Bus, Confirmation, Delivery, ExchangeSpec, Message, QueueSpec, Topology
from ground.errors import ConfigError
from ground.identity import DEFAULT_NAMESPACE, NAMESPACE_PATTERN, namespace_problem

_HUB_PREFIX = f"{DEFAULT_NAMESPACE}."


def check_namespace(namespace: str) -> str:
    """The namespace, or a ConfigError saying what a namespace may be."""
    if not NAMESPACE_PATTERN.fullmatch(namespace):
        raise ConfigError(namespace_problem(namespace))
    return namespace


def broker_name(namespace: str, name: str) -> str:
    """The broker's name for one of the hub's exchange or queue names under a namespace."""
    if namespace == DEFAULT_NAMESPACE:
        return name
    return f"{namespace}.{name.removeprefix(_HUB_PREFIX)}"


class NamespacedBus:
    """A Bus whose exchange and queue names live under a namespace on the broker."""

    def __init__(self, bus: Bus, namespace: str) -> None:
        self._bus = bus
        self._namespace = check_namespace(namespace)
        # Broker name -> hub name, for names the broker hands back (a delivery's exchange).
        self._hub_names: dict[str, str] = {}
        # The broker's own deliveries by tag, handed back unchanged to settle them.
        self._held: dict[int, Delivery] = {}

    def _to_broker(self, name: str) -> str:
        mapped = broker_name(self._namespace, name)
        self._hub_names[mapped] = name
        return mapped

    def _to_broker_optional(self, name: str | None) -> str | None:
        return None if name is None else self._to_broker(name)

    def declare(self, topology: Topology) -> None:
        self._bus.declare(
            Topology(
                exchanges=tuple(
                    ExchangeSpec(self._to_broker(exchange.name), exchange.type)
                    for exchange in topology.exchanges
                ),
                queues=tuple(self._queue(queue) for queue in topology.queues),
            )
        )

    def _queue(self, queue: QueueSpec) -> QueueSpec:
        return dataclasses.replace(
            queue,
            name=self._to_broker(queue.name),
            bindings=tuple(Binding(self._to_broker(b.exchange), b.pattern) for b in queue.bindings),
            dead_letter_exchange=self._to_broker_optional(queue.dead_letter_exchange),
        )

    def publish(self, exchange: str, messages: Sequence[Message]) -> None:
        self._bus.publish(self._to_broker(exchange), messages)

    def send(self, exchange: str, messages: Sequence[Message]) -> Confirmation:
        return self._bus.send(self._to_broker(exchange), messages)

    def fetch(self, queue: str, max_messages: int, timeout_s: float) -> list[Delivery]:
        deliveries = self._bus.fetch(self._to_broker(queue), max_messages, timeout_s)
        self._held.update((delivery.delivery_tag, delivery) for delivery in deliveries)
        return [
            dataclasses.replace(
                delivery, queue=queue, exchange=self._hub_names.get(delivery.exchange, delivery.exchange)
            )
            for delivery in deliveries
        ]

    def _broker_delivery(self, delivery: Delivery) -> Delivery:
        held = self._held.pop(delivery.delivery_tag, None)
        if held is not None and held.message.message_id == delivery.message.message_id:
            return held
        # Not one of ours: the broker refuses it with its own error for an unknown delivery.
        return dataclasses.replace(delivery, queue=self._to_broker(delivery.queue))

    def ack(self, delivery: Delivery) -> None:
        self._bus.ack(self._broker_delivery(delivery))

    def nack(self, delivery: Delivery, *, requeue: bool) -> None:
        self._bus.nack(self._broker_delivery(delivery), requeue=requeue)

    def queue_depth(self, queue: str) -> int:
        return self._bus.queue_depth(self._to_broker(queue))

    def purge(self, queue: str) -> int:
        return self._bus.purge(self._to_broker(queue))

    def delete_queue(self, queue: str) -> None:
        self._bus.delete_queue(self._to_broker(queue))

    def delete_exchange(self, exchange: str) -> None:
        self._bus.delete_exchange(self._to_broker(exchange))

    def close(self) -> None:
        self._bus.close()
