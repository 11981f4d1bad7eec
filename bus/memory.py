"""In-process bus (memory://) for unit tests and the embedded demo: RabbitMQ's routing, acks, redelivery,
message TTL and dead-lettering, in memory.

Every bus opened on the same URL talks to one in-process broker (a module-level registry keyed by the
URL's name, like kombu's memory transport); each open_memory_bus() call is a new connection with its
own delivery tags and unacknowledged deliveries. The broker is thread-safe; a connection is not.

What it keeps from RabbitMQ 3.10, as measured against the real broker by tests/contract:
- topic (`*` one word, `#` zero or more), direct and fanout exchanges, and the default exchange ''
  that routes to the queue named by the routing key;
- messages are stored as wire bytes (body, and headers as the encoded AMQP table), so no caller can
  change a message after publishing it, and headers come back exactly as pika decodes them;
- publish is mandatory: routable messages of a batch are delivered, then UnroutableError names the
  others; an unknown exchange raises ConfigError (RabbitMQ's 404) at send(), so does redeclaring a
  queue or an exchange with other arguments (406) and fetching from a missing queue (404);
- close() returns unacknowledged deliveries to the front of their queues in their original order,
  marked redelivered;
- nack(requeue=False) and expiry dead-letter to the queue's dead_letter_exchange (with
  dead_letter_routing_key or the message's own key) and maintain `x-death` like RabbitMQ: one entry
  per (queue, reason, exchange), most recent first, whose count grows when the message dies there again, plus
  `x-first-death-*`; with no dead-letter exchange, or nowhere to route, the message is dropped; a
  message that would expire back into a queue it expired from without being rejected in between is
  dropped (RabbitMQ's cycle detection);
- message TTL is checked at the head of each queue only, as RabbitMQ does, whenever any connection
  fetches, measures or purges, and a waiting fetch wakes up when the next head is due.

Quorum queues (the default queue_type) and classic queues differ on RabbitMQ 3.10.8, and so here:
- quorum: nack(requeue=True) puts the message at the back of the queue; every return (nack with
  requeue, or a closed connection) increments Delivery.delivery_count, which is also delivered as the
  `x-delivery-count` header once it is above zero;
- classic: nack(requeue=True) puts the message back where it was; delivery_count stays 0 and no
  `x-delivery-count` header is added.
Both support message TTL and dead-lettering (quorum dead-lettering is at-most-once on RabbitMQ too).

Left out: a TTL of 0 does not hand a message to a consumer that is already waiting (RabbitMQ does),
message priorities, per-message expiration, queue length limits, exclusive and auto-delete queues.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from bus.codec import (
    check_fetch_size,
    check_message,
    check_topology,
    decode_headers,
    encode_headers,
    unroutable_text,
)
from bus.port import SETTLED, Confirmation, Delivery, ExchangeSpec, Message, QueueSpec, Topology
from ground import clock
from ground.errors import BusError, BusUnavailableError, ConfigError, UnroutableError

_LOG = logging.getLogger(__name__)

SCHEME = "memory"


def _words(key: str) -> tuple[str, ...]:
    # RabbitMQ splits "" into no words at all, and keeps empty words elsewhere ("a..b" has three).
    return () if key == "" else tuple(key.split("."))


@lru_cache(maxsize=4096)
def topic_matches(pattern: str, routing_key: str) -> bool:
    """Whether a topic binding pattern matches a routing key, exactly as RabbitMQ's topic exchange decides."""
    key = _words(routing_key)
    # reachable[j]: the pattern words seen so far can match the first j words of the key.
    reachable = [True] + [False] * len(key)
    for word in _words(pattern):
        if word == "#":
            seen = False
            widened = []
            for flag in reachable:
                seen = seen or flag
                widened.append(seen)
            reachable = widened
        else:
            reachable = [False] + [reachable[j] and (word == "*" or word == key[j]) for j in range(len(key))]
    return reachable[len(key)]


@dataclass
class _Stored:
    """One message in one queue, as wire bytes plus the broker's bookkeeping."""

    body: bytes
    exchange: str
    routing_key: str
    message_id: str
    content_type: str
    correlation_id: str | None
    type: str | None
    headers: bytes
    seq: int
    expires_at: float | None
    delivery_count: int = 0
    redelivered: bool = False


class _Queue:
    def __init__(self, spec: QueueSpec) -> None:
        self.spec = replace(spec, bindings=())
        self.ready: deque[_Stored] = deque()
        self._next_seq = 0

    @property
    def quorum(self) -> bool:
        return self.spec.queue_type == "quorum"

    def next_seq(self) -> int:
        self._next_seq += 1
        return self._next_seq


@dataclass(frozen=True)
class _Unacked:
    queue: _Queue
    stored: _Stored


class MemoryBroker:
    """The shared state behind every memory bus opened on one URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._cond = threading.Condition()
        self._exchanges: dict[str, ExchangeSpec] = {}
        # exchange -> ordered set of (pattern, queue name)
        self._bindings: dict[str, dict[tuple[str, str], None]] = {}
        self._queues: dict[str, _Queue] = {}

    # -- topology ---------------------------------------------------------------------------------

    def declare(self, topology: Topology) -> None:
        check_topology(topology)
        with self._cond:
            known_exchanges = dict(self._exchanges)
            for exchange in topology.exchanges:
                existing = known_exchanges.get(exchange.name)
                if existing is not None and existing != exchange:
                    raise ConfigError(
                        f"exchange {exchange.name!r} already exists as type {existing.type!r}, "
                        f"cannot redeclare it as {exchange.type!r} (PRECONDITION_FAILED)"
                    )
                known_exchanges[exchange.name] = exchange
            for queue in topology.queues:
                existing_queue = self._queues.get(queue.name)
                if existing_queue is not None and existing_queue.spec != replace(queue, bindings=()):
                    raise ConfigError(
                        f"queue {queue.name!r} already exists with other arguments "
                        f"({_queue_arguments(existing_queue.spec)} vs {_queue_arguments(queue)}) "
                        "(PRECONDITION_FAILED)"
                    )
                for binding in queue.bindings:
                    if binding.exchange not in known_exchanges:
                        raise ConfigError(
                            f"queue {queue.name!r} binds to exchange {binding.exchange!r}, "
                            "which does not exist (NOT_FOUND)"
                        )
            self._exchanges = known_exchanges
            for queue in topology.queues:
                if queue.name not in self._queues:
                    self._queues[queue.name] = _Queue(queue)
                for binding in queue.bindings:
                    self._bindings.setdefault(binding.exchange, {})[(binding.pattern, queue.name)] = None

    def delete_queue(self, name: str) -> None:
        with self._cond:
            if self._queues.pop(name, None) is None:
                return
            for bindings in self._bindings.values():
                for key in [key for key in bindings if key[1] == name]:
                    del bindings[key]
            self._cond.notify_all()

    def delete_exchange(self, name: str) -> None:
        with self._cond:
            self._exchanges.pop(name, None)
            self._bindings.pop(name, None)

    def reset(self) -> None:
        """Forget every exchange, queue and message (unsettled deliveries then settle into nothing)."""
        with self._cond:
            self._exchanges.clear()
            self._bindings.clear()
            self._queues.clear()
            self._cond.notify_all()

    # -- messages ---------------------------------------------------------------------------------

    def publish(self, exchange: str, messages: Sequence[Message], headers: Sequence[bytes]) -> list[Message]:
        """Enqueue every routable message; return the ones that matched no queue."""
        with self._cond:
            if exchange and exchange not in self._exchanges:
                raise ConfigError(f"exchange {exchange!r} does not exist on {self.url} (NOT_FOUND)")
            now = time.monotonic()
            unroutable: list[Message] = []
            for message, encoded in zip(messages, headers, strict=True):
                targets = self._route(exchange, message.routing_key)
                if not targets:
                    unroutable.append(message)
                for queue in targets:
                    queue.ready.append(
                        _Stored(
                            body=message.body,
                            exchange=exchange,
                            routing_key=message.routing_key,
                            message_id=message.message_id,
                            content_type=message.content_type,
                            correlation_id=message.correlation_id,
                            type=message.type,
                            headers=encoded,
                            seq=queue.next_seq(),
                            expires_at=_expiry(queue, now),
                        )
                    )
            if len(unroutable) < len(messages):
                self._cond.notify_all()
            return unroutable

    def take(
        self, queue_name: str, max_messages: int, timeout_s: float, is_open: Callable[[], bool]
    ) -> list[_Unacked]:
        """Remove up to max_messages ready messages, waiting up to timeout_s for the first one."""
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._cond:
            while True:
                if not is_open():
                    raise BusUnavailableError(f"connection to {self.url} is closed")
                now = time.monotonic()
                next_expiry = self._expire(now)
                queue = self._queue(queue_name)
                if queue.ready:
                    count = min(max_messages, len(queue.ready))
                    return [_Unacked(queue, queue.ready.popleft()) for _ in range(count)]
                remaining = deadline - now
                if remaining <= 0:
                    return []
                if next_expiry is not None:
                    remaining = min(remaining, max(next_expiry - now, 0.0))
                self._cond.wait(remaining)

    def depth(self, queue_name: str) -> int:
        with self._cond:
            self._expire(time.monotonic())
            return len(self._queue(queue_name).ready)

    def purge(self, queue_name: str) -> int:
        with self._cond:
            self._expire(time.monotonic())
            queue = self._queue(queue_name)
            count = len(queue.ready)
            queue.ready.clear()
            return count

    def requeue(self, entry: _Unacked) -> None:
        """Return a nacked delivery: quorum queues append it, classic queues put it back in place."""
        with self._cond:
            if not self._alive(entry.queue):
                return
            self._mark_returned(entry)
            if entry.queue.quorum:
                entry.queue.ready.append(entry.stored)
            else:
                ready = entry.queue.ready
                ready.insert(bisect.bisect_left(ready, entry.stored.seq, key=_seq), entry.stored)
            self._cond.notify_all()

    def return_unsettled(self, entries: Sequence[_Unacked]) -> None:
        """Put a closed connection's unsettled deliveries back at the front, in their original order."""
        with self._cond:
            by_queue: dict[int, list[_Unacked]] = {}
            for entry in entries:
                if self._alive(entry.queue):
                    self._mark_returned(entry)
                    by_queue.setdefault(id(entry.queue), []).append(entry)
            for group in by_queue.values():
                ordered = sorted(group, key=lambda item: item.stored.seq)
                group[0].queue.ready.extendleft(item.stored for item in reversed(ordered))
            if by_queue:
                self._cond.notify_all()

    def reject(self, entry: _Unacked) -> None:
        """Dead-letter a delivery refused without requeue (or drop it when its queue has no DLX)."""
        with self._cond:
            if self._alive(entry.queue):
                self._dead_letter(entry.queue, entry.stored, "rejected", time.monotonic())
                self._cond.notify_all()

    # -- internals (called with the lock held) ----------------------------------------------------

    def _queue(self, name: str) -> _Queue:
        queue = self._queues.get(name)
        if queue is None:
            raise ConfigError(f"queue {name!r} does not exist on {self.url} (NOT_FOUND)")
        return queue

    def _alive(self, queue: _Queue) -> bool:
        return self._queues.get(queue.spec.name) is queue

    @staticmethod
    def _mark_returned(entry: _Unacked) -> None:
        entry.stored.redelivered = True
        if entry.queue.quorum:
            entry.stored.delivery_count += 1

    def _route(self, exchange: str, routing_key: str) -> list[_Queue]:
        if exchange == "":
            queue = self._queues.get(routing_key)
            return [queue] if queue is not None else []
        kind = self._exchanges[exchange].type
        names: dict[str, None] = {}
        for pattern, queue_name in self._bindings.get(exchange, {}):
            if (
                kind == "fanout"
                or (kind == "direct" and pattern == routing_key)
                or (kind == "topic" and topic_matches(pattern, routing_key))
            ):
                names[queue_name] = None
        return [self._queues[name] for name in names if name in self._queues]

    def _expire(self, now: float) -> float | None:
        """Dead-letter expired messages at the head of every queue; return when the next one is due."""
        next_expiry: float | None = None
        moved = False
        for queue in list(self._queues.values()):
            if queue.spec.message_ttl_ms is None:
                continue
            ready = queue.ready
            while ready and ready[0].expires_at is not None and ready[0].expires_at <= now:
                self._dead_letter(queue, ready.popleft(), "expired", now)
                moved = True
        for queue in self._queues.values():
            if queue.ready and queue.ready[0].expires_at is not None:
                due = queue.ready[0].expires_at
                next_expiry = due if next_expiry is None else min(next_expiry, due)
        if moved:
            self._cond.notify_all()
        return next_expiry

    def _dead_letter(self, queue: _Queue, stored: _Stored, reason: str, now: float) -> None:
        spec = queue.spec
        if spec.dead_letter_exchange is None:
            return
        exchange = spec.dead_letter_exchange
        if exchange and exchange not in self._exchanges:
            _LOG.warning(
                "dropping message %s dead-lettered from %r: exchange %r does not exist",
                stored.message_id,
                spec.name,
                exchange,
            )
            return
        headers = decode_headers(stored.headers)
        deaths = _record_death(headers, spec.name, reason, stored)
        routing_key = (
            spec.dead_letter_routing_key if spec.dead_letter_routing_key is not None else stored.routing_key
        )
        targets = self._route(exchange, routing_key)
        if reason != "rejected":
            targets = [target for target in targets if not _is_cycle(target.spec.name, deaths)]
        if not targets:
            _LOG.warning(
                "dropping message %s dead-lettered from %r: exchange %r routes %r nowhere",
                stored.message_id,
                spec.name,
                exchange,
                routing_key,
            )
            return
        encoded = encode_headers(headers, message_id=stored.message_id)
        for target in targets:
            target.ready.append(
                replace(
                    stored,
                    exchange=exchange,
                    routing_key=routing_key,
                    headers=encoded,
                    seq=target.next_seq(),
                    expires_at=_expiry(target, now),
                    delivery_count=0,
                    redelivered=False,
                )
            )


def _seq(stored: _Stored) -> int:
    return stored.seq


def _expiry(queue: _Queue, now: float) -> float | None:
    ttl = queue.spec.message_ttl_ms
    return None if ttl is None else now + ttl / 1000.0


def _queue_arguments(spec: QueueSpec) -> str:
    return (
        f"queue_type={spec.queue_type}, dead_letter_exchange={spec.dead_letter_exchange!r}, "
        f"dead_letter_routing_key={spec.dead_letter_routing_key!r}, message_ttl_ms={spec.message_ttl_ms}, "
        f"at_least_once_dead_letters={spec.at_least_once_dead_letters}"
    )


def _record_death(headers: dict[str, Any], queue: str, reason: str, stored: _Stored) -> list[dict[str, Any]]:
    """Update headers in place the way RabbitMQ 3.10 does on dead-lettering; return the new x-death list."""
    previous = headers.get("x-death")
    deaths: list[dict[str, Any]] = (
        [dict(d) for d in previous if isinstance(d, dict)] if isinstance(previous, list) else []
    )
    for index, death in enumerate(deaths):
        if (death.get("queue"), death.get("reason"), death.get("exchange")) == (
            queue,
            reason,
            stored.exchange,
        ):
            # RabbitMQ counts the repeat and moves the entry first, keeping its time and routing keys.
            death["count"] = int(death.get("count", 0)) + 1
            deaths.insert(0, deaths.pop(index))
            break
    else:
        deaths.insert(
            0,
            {
                "count": 1,
                "reason": reason,
                "queue": queue,
                "time": clock.now().replace(microsecond=0),
                "exchange": stored.exchange,
                "routing-keys": [stored.routing_key],
            },
        )
    headers["x-death"] = deaths
    headers.setdefault("x-first-death-exchange", stored.exchange)
    headers.setdefault("x-first-death-queue", queue)
    headers.setdefault("x-first-death-reason", reason)
    return deaths


def _is_cycle(target: str, deaths: Sequence[dict[str, Any]]) -> bool:
    # Walking back from the latest death: a rejection breaks the cycle, reaching the target closes it.
    for death in deaths:
        if death.get("reason") == "rejected":
            return False
        if death.get("queue") == target:
            return True
    return False


class MemoryBus:
    """One connection to an in-process broker; implements bus.port.Bus."""

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker
        self._open = True
        self._next_tag = 0
        self._unacked: dict[int, _Unacked] = {}

    @property
    def url(self) -> str:
        return self._broker.url

    def __enter__(self) -> MemoryBus:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _is_open(self) -> bool:
        return self._open

    def _check_open(self) -> None:
        if not self._open:
            raise BusUnavailableError(f"connection to {self.url} is closed")

    def declare(self, topology: Topology) -> None:
        self._check_open()
        self._broker.declare(topology)

    def publish(self, exchange: str, messages: Sequence[Message]) -> None:
        self.send(exchange, messages).wait()

    def send(self, exchange: str, messages: Sequence[Message]) -> Confirmation:
        self._check_open()
        if not messages:
            return SETTLED
        encoded = [check_message(message) for message in messages]
        # As on RabbitMQ, a missing exchange is refused here and nothing of the batch is sent; the messages
        # are routed when they arrive, and what went wrong with them is told at wait().
        unroutable = self._broker.publish(exchange, messages, encoded)
        if unroutable:
            return _Refused(
                UnroutableError(
                    unroutable_text(
                        exchange, [(m.routing_key, m.message_id) for m in unroutable], len(messages)
                    ),
                    message_ids=tuple(m.message_id for m in unroutable),
                )
            )
        return SETTLED

    def fetch(self, queue: str, max_messages: int, timeout_s: float) -> list[Delivery]:
        self._check_open()
        check_fetch_size(max_messages)
        taken = self._broker.take(queue, max_messages, timeout_s, self._is_open)
        deliveries = []
        for entry in taken:
            self._next_tag += 1
            self._unacked[self._next_tag] = entry
            deliveries.append(_delivery(entry, self._next_tag))
        return deliveries

    def ack(self, delivery: Delivery) -> None:
        self._settle(delivery)

    def nack(self, delivery: Delivery, *, requeue: bool) -> None:
        entry = self._settle(delivery)
        if requeue:
            self._broker.requeue(entry)
        else:
            self._broker.reject(entry)

    def queue_depth(self, queue: str) -> int:
        self._check_open()
        return self._broker.depth(queue)

    def purge(self, queue: str) -> int:
        self._check_open()
        return self._broker.purge(queue)

    def delete_queue(self, queue: str) -> None:
        self._check_open()
        self._broker.delete_queue(queue)

    def delete_exchange(self, exchange: str) -> None:
        self._check_open()
        self._broker.delete_exchange(exchange)

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        unsettled = list(self._unacked.values())
        self._unacked.clear()
        self._broker.return_unsettled(unsettled)

    def _settle(self, delivery: Delivery) -> _Unacked:
        self._check_open()
        entry = self._unacked.get(delivery.delivery_tag)
        if (
            entry is None
            or entry.queue.spec.name != delivery.queue
            or entry.stored.message_id != delivery.message.message_id
        ):
            raise BusError(
                f"delivery tag {delivery.delivery_tag} from queue {delivery.queue!r} is not unsettled on "
                "this connection (already acked or nacked, or delivered to another connection)"
            )
        del self._unacked[delivery.delivery_tag]
        return entry


@dataclass(frozen=True)
class _Refused:
    """The confirmation of a batch the broker did not take whole."""

    error: BusError

    def wait(self) -> None:
        raise self.error


def _delivery(entry: _Unacked, tag: int) -> Delivery:
    stored = entry.stored
    headers = decode_headers(stored.headers)
    delivery_count = stored.delivery_count if entry.queue.quorum else 0
    if delivery_count > 0:
        headers["x-delivery-count"] = delivery_count
    message = Message(
        body=stored.body,
        routing_key=stored.routing_key,
        message_id=stored.message_id,
        headers=headers,
        content_type=stored.content_type,
        correlation_id=stored.correlation_id,
        type=stored.type,
    )
    return Delivery(
        message=message,
        exchange=stored.exchange,
        queue=entry.queue.spec.name,
        delivery_tag=tag,
        redelivered=stored.redelivered,
        delivery_count=delivery_count,
    )


# -- the registry of brokers, keyed by URL ----------------------------------------------------------

_brokers: dict[str, MemoryBroker] = {}
_brokers_lock = threading.Lock()


def broker_key(url: str) -> str:
    """The broker name in a memory:// URL ('' for plain memory://)."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME:
        raise ConfigError(f"not a memory bus URL (scheme {parts.scheme!r}): {url!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"memory bus URL takes no options: {url!r}")
    return (parts.netloc + parts.path).strip("/")


def broker(url: str) -> MemoryBroker:
    """The in-process broker every memory bus on this URL shares (created on first use)."""
    key = broker_key(url)
    with _brokers_lock:
        found = _brokers.get(key)
        if found is None:
            found = _brokers[key] = MemoryBroker(f"{SCHEME}://{key}")
        return found


def open_memory_bus(url: str) -> MemoryBus:
    """Open a new connection to the in-process broker named by the URL."""
    return MemoryBus(broker(url))


def unique_url(prefix: str = "isolated") -> str:
    """A memory:// URL whose broker nobody else shares: for tests that need a clean broker."""
    return f"{SCHEME}://{prefix}-{uuid.uuid4().hex}"


def reset_broker(url: str) -> None:
    """Empty the named broker: no exchanges, queues or messages; open connections stay usable."""
    broker(url).reset()


def discard_broker(url: str) -> None:
    """Empty the named broker and drop it from the registry (test teardown for unique_url() brokers)."""
    key = broker_key(url)
    with _brokers_lock:
        found = _brokers.pop(key, None)
    if found is not None:
        found.reset()
