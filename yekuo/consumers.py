"""Which consumers the hub runs: each gets its own durable queue, parking lot and inbox."""

from __future__ import annotations

from dataclasses import dataclass

from bus.retry import parking_queue
from workflow.cases import handle_event
from workflow.consumer import EventHandler


@dataclass(frozen=True)
class ConsumerSpec:
    """A consumer: its name (queue yekuo.<name>, inbox key), the topics it binds and its handler."""

    name: str
    topics: tuple[str, ...]
    handler: EventHandler

    @property
    def queue(self) -> str:
        """The consumer's durable queue."""
        return f"yekuo.{self.name}"

    @property
    def parking_queue(self) -> str:
        """Where the consumer's messages go after their last retry, for an operator."""
        return parking_queue(self.queue)


CONSUMERS: tuple[ConsumerSpec, ...] = (
    ConsumerSpec("workflow", ("application.#", "customer.#"), handle_event),
)
