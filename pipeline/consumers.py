"""What the hub knows of each consumer it runs: name, topics, handler, and the queues named after it.

The table of the hub's consumers is the wiring's (yekuo/consumers.py): it names handlers of the workflow,
feasibility and subscription layers, which stand above the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

from bus.retry import parking_queue
from pipeline.consumer import EventHandler


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
