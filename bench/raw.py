"""The raw limit: plain pika publishing and consuming equal-sized persistent messages, without the hub's code.

Publishing without confirms counts until the broker holds every message in the queue (a passive declare
reports them), so it is not flattered by messages still sitting in socket buffers. Windowed confirms keep
up to `window` messages unconfirmed, driven through the asynchronous channel under pika's blocking one
(BlockingChannel.basic_publish would wait for each confirm in turn). Consuming uses basic.qos prefetch
and acknowledges every `ack_every` deliveries at once with multiple=True.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import pika
from pika.adapters.blocking_connection import BlockingChannel

from ground.errors import BusError, BusUnavailableError

QueueType = Literal["quorum", "classic"]
PERSISTENT = 2
_TIMEOUT_S = 120.0


def _wake() -> None:
    """Scheduled with call_later(0) only to make process_data_events() return."""


@dataclass(frozen=True)
class RawFigures:
    """Messages per second of one queue type, each over `messages` messages of `body_bytes` bytes."""

    queue_type: QueueType
    messages: int
    body_bytes: int
    publish_no_confirms: float
    publish_confirms: float
    consume: float


def message_body(size: int) -> bytes:
    """A JSON-looking body of exactly size bytes, like a canonical event of that size."""
    head = b'{"specversion":"1.0","type":"cn.yekuo.bench.v1","data":{"filler":"'
    tail = b'"}}'
    if size < len(head) + len(tail):
        raise ValueError(f"a message body needs at least {len(head) + len(tail)} bytes, got {size}")
    return head + b"x" * (size - len(head) - len(tail)) + tail


class _WindowedPublisher:
    """Publishes with up to `window` unconfirmed messages in flight on one channel in confirm mode."""

    def __init__(self, connection: pika.BlockingConnection, channel: BlockingChannel, window: int) -> None:
        self._connection = connection
        # The asynchronous channel under the blocking one: its basic_publish does not wait for a confirm.
        self._channel = channel._impl
        self._window = window
        self._sent = 0
        self._settled_through = 0
        self._settled_singles: set[int] = set()
        self._nacked = 0
        self._waiting_for: int | None = None
        self._selected = False
        self._channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_select_ok)
        deadline = time.monotonic() + _TIMEOUT_S
        while not self._selected:
            self._pump(deadline, "entering confirm mode")

    def _outstanding(self) -> int:
        return self._sent - self._settled_through - len(self._settled_singles)

    def _on_select_ok(self, _frame: Any) -> None:
        self._selected = True
        self._connection.call_later(0, _wake)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tag = int(method.delivery_tag)
        if isinstance(method, pika.spec.Basic.Nack):
            self._nacked += 1
        if method.multiple:
            self._settled_through = max(self._settled_through, tag)
            self._settled_singles = {single for single in self._settled_singles if single > tag}
        elif tag == self._settled_through + 1:
            self._settled_through = tag
        else:
            self._settled_singles.add(tag)
        while self._settled_through + 1 in self._settled_singles:
            self._settled_through += 1
            self._settled_singles.discard(self._settled_through)
        if self._waiting_for is not None and self._outstanding() <= self._waiting_for:
            self._waiting_for = None
            self._connection.call_later(0, _wake)

    def _pump(self, deadline: float, what: str) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BusUnavailableError(f"raw publish: the broker took over {_TIMEOUT_S:.0f} s {what}")
        self._connection.process_data_events(time_limit=remaining)

    def _await(self, at_most: int, deadline: float) -> None:
        while self._outstanding() > at_most:
            self._waiting_for = at_most
            self._pump(deadline, f"confirming {self._outstanding()} messages")

    def publish(self, routing_key: str, body: bytes, count: int) -> None:
        deadline = time.monotonic() + _TIMEOUT_S
        for index in range(count):
            if self._outstanding() >= self._window:
                self._await(self._window - 1, deadline)
            properties = pika.BasicProperties(
                delivery_mode=PERSISTENT, message_id=f"raw-{index}", content_type="application/json"
            )
            self._channel.basic_publish("", routing_key, body, properties=properties)
            self._sent += 1
        self._await(0, deadline)
        if self._nacked:
            raise BusError(f"raw publish: the broker nacked {self._nacked} of {count} messages")


class RawBench:
    """One connection to the broker and one durable queue of the given type, declared empty."""

    def __init__(self, url: str, queue: str, queue_type: QueueType) -> None:
        self.queue = queue
        self.queue_type = queue_type
        try:
            self._connection = pika.BlockingConnection(pika.URLParameters(url))
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise BusUnavailableError(f"raw bench cannot connect to the broker: {exc!r}") from exc
        self._admin = self._connection.channel()
        self._admin.queue_delete(queue)
        self._admin.queue_declare(queue, durable=True, arguments={"x-queue-type": queue_type})

    @property
    def server_version(self) -> str:
        """The broker's version, for the record of the run."""
        version = self._connection._impl.server_properties.get("version", b"?")
        return version.decode() if isinstance(version, bytes) else str(version)

    def close(self) -> None:
        """Delete the queue and close the connection."""
        if self._connection.is_open:
            self._admin.queue_delete(self.queue)
            self._connection.close()

    def depth(self) -> int:
        """Messages ready in the queue."""
        return int(self._admin.queue_declare(self.queue, durable=True, passive=True).method.message_count)

    def purge(self) -> None:
        """Empty the queue."""
        self._admin.queue_purge(self.queue)

    def publish_without_confirms(self, body: bytes, count: int) -> float:
        """Seconds until count persistent messages published without confirms are all in the queue."""
        channel = self._connection.channel()._impl
        start = time.perf_counter()
        for index in range(count):
            properties = pika.BasicProperties(
                delivery_mode=PERSISTENT, message_id=f"raw-{index}", content_type="application/json"
            )
            channel.basic_publish("", self.queue, body, properties=properties)
            # Letting the I/O loop write now and then keeps the output buffer from growing to the whole run.
            if index % 500 == 499:
                self._connection.process_data_events(time_limit=0)
        deadline = time.monotonic() + _TIMEOUT_S
        while (held := self.depth()) < count:
            if time.monotonic() > deadline:
                raise BusUnavailableError(
                    f"raw publish: only {held} of {count} messages reached {self.queue}"
                )
            self._connection.process_data_events(time_limit=0.002)
        elapsed = time.perf_counter() - start
        channel.close()
        return elapsed

    def publish_with_confirms(self, body: bytes, count: int, window: int) -> float:
        """Seconds to publish count persistent messages with up to window unconfirmed at a time."""
        channel = self._connection.channel()
        publisher = _WindowedPublisher(self._connection, channel, window)
        start = time.perf_counter()
        publisher.publish(self.queue, body, count)
        elapsed = time.perf_counter() - start
        channel.close()
        return elapsed

    def consume(self, count: int, prefetch: int, ack_every: int) -> float:
        """Seconds to consume count messages with manual acks, acknowledging ack_every at once."""
        channel = self._connection.channel()
        channel.basic_qos(prefetch_count=prefetch)
        received = 0

        def on_message(chan: BlockingChannel, method: Any, _properties: Any, _body: bytes) -> None:
            nonlocal received
            received += 1
            if received % ack_every == 0 or received == count:
                chan.basic_ack(method.delivery_tag, multiple=True)

        start = time.perf_counter()
        channel.basic_consume(self.queue, on_message_callback=on_message, auto_ack=False)
        deadline = time.monotonic() + _TIMEOUT_S
        while received < count:
            if time.monotonic() > deadline:
                raise BusUnavailableError(f"raw consume: only {received} of {count} messages arrived")
            self._connection.process_data_events(time_limit=1.0)
        elapsed = time.perf_counter() - start
        channel.close()
        return elapsed


def measure_raw(
    url: str,
    queue: str,
    queue_type: QueueType,
    *,
    messages: int,
    body_bytes: int,
    window: int = 1000,
    prefetch: int = 1000,
    ack_every: int = 100,
) -> tuple[RawFigures, str]:
    """The three raw rates on one queue type, and the broker's version."""
    body = message_body(body_bytes)
    bench = RawBench(url, queue, queue_type)
    try:
        no_confirms = bench.publish_without_confirms(body, messages)
        bench.purge()
        confirms = bench.publish_with_confirms(body, messages, window)
        consume = bench.consume(messages, prefetch, ack_every)
        version = bench.server_version
    finally:
        bench.close()
    figures = RawFigures(
        queue_type=queue_type,
        messages=messages,
        body_bytes=body_bytes,
        publish_no_confirms=messages / no_confirms,
        publish_confirms=messages / confirms,
        consume=messages / consume,
    )
    return figures, version


def measure_reference(url: str, queue: str, *, messages: int, body_bytes: int) -> tuple[float, float]:
    """Windowed-confirm publish and manual-ack consume rates on a quorum queue: a hub path's reference.

    Taken right before and after each hub path, so the path and its reference share the machine's load.
    """
    body = message_body(body_bytes)
    bench = RawBench(url, queue, "quorum")
    try:
        confirms = bench.publish_with_confirms(body, messages, window=1000)
        consume = bench.consume(messages, prefetch=1000, ack_every=100)
    finally:
        bench.close()
    return messages / confirms, messages / consume
