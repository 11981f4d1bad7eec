"""RabbitMQ bus (amqp://) on pika's BlockingConnection, with many publisher confirms in flight.

One connection carries three channels, so a broker error on one does not cost the others:
- admin: declare, passive declare (queue_depth, and each exchange the first time this connection
  publishes to it), purge, delete. A 404/406 closes only this channel; it is reopened on next use.
- consume: consumers with manual acks on each fetched queue, whose prefetch adds up to the most
  the caller has asked for (max_messages plus the deliveries it still held at the time). Deliveries
  the broker pushes are buffered until fetch() hands them out; like every prefetching consumer's,
  they count as unacknowledged, not ready, in queue_depth, and no other connection gets them.
  fetch(timeout_s=0) returns only what the broker has already pushed, so a first fetch on a queue
  usually needs a timeout to see anything.
- publish: in confirm mode, driven through pika's asynchronous Channel (BlockingChannel._impl).
  BlockingChannel.basic_publish waits for each confirm in turn (about 1.3k msg/s here), while up to
  `confirm_window` unconfirmed messages in flight reach about 16k msg/s. The asynchronous channel's
  confirm_delivery(ack_nack_callback) and add_on_return_callback() report basic.ack, basic.nack and
  basic.return, counted per batch. send() hands the batch to the broker and returns; the confirmation's
  wait() pumps the connection with process_data_events() until every message of that batch is settled,
  and then raises UnroutableError if any was returned (RabbitMQ returns a message before it acks it) or
  PublishNotConfirmedError if any was nacked. Several batches may be in flight at once: the caller
  prepares the next while the broker confirms the last. A return names only the message id, so a batch
  that shares an id with one in flight is sent once that one is settled. publish() is send() then wait().

Broker errors map onto ground.errors: NOT_FOUND, ACCESS_REFUSED and PRECONDITION_FAILED (a missing
exchange or queue, a reserved name, a redeclaration with other arguments) are ConfigError; losing the
connection, or a broker that keeps the connection blocked (resource alarm) or leaves messages
unconfirmed past `publish_timeout_s`, is BusUnavailableError, after which this bus is unusable and
the caller opens a new one. Nothing is retried here: callers wrap open_bus() and publish() in tenacity.

pika only answers heartbeats while the bus is being called: a consumer must call the bus at least
every `heartbeat_s` seconds, or the broker drops the connection after two missed heartbeats.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

import pika
from pika import exceptions as pika_exceptions
from pika.adapters.blocking_connection import BlockingChannel

from bus.codec import check_fetch_size, check_properties, check_topology, normalize_value, unroutable_text
from bus.factory import node_urls, redact_url
from bus.port import SETTLED, Confirmation, Delivery, Message, Topology
from ground.errors import (
    BusError,
    BusUnavailableError,
    ConfigError,
    PublishNotConfirmedError,
    UnroutableError,
)

_LOG = logging.getLogger(__name__)

# AMQP reply codes that mean the request itself was wrong, not the broker unavailable.
_CONFIG_REPLY_CODES = frozenset({403, 404, 406})
_PRECONDITION_FAILED = 406
# The queue argument that sets how many cluster nodes hold a new quorum queue.
_GROUP_SIZE = "x-quorum-initial-group-size"
# Replicas of each quorum queue: a majority of three survives the loss of any one node.
DEFAULT_QUORUM_GROUP_SIZE = 3
PERSISTENT = 2
# What a message without a content type is, to AMQP.
_NO_CONTENT_TYPE = "application/octet-stream"


def _noop() -> None:
    """Scheduled with call_later(0) only to make process_data_events() return."""


@dataclass
class _Consumer:
    """The consumers of one queue on the consume channel, sharing one buffer of deliveries."""

    tags: list[str] = field(default_factory=list)
    prefetch: int = 0
    buffer: deque[tuple[Any, Any, bytes]] = field(default_factory=deque)
    cancelled: bool = False


@dataclass(frozen=True)
class _Held:
    """A delivery handed to the caller and not yet settled."""

    queue: str
    message_id: str
    broker_tag: int


@dataclass
class _InFlight:
    """One batch on the publish channel, with what the broker said about it so far."""

    exchange: str
    size: int
    last_tag: int
    message_ids: frozenset[str]
    unsettled: int
    nacked: int = 0
    returned: list[tuple[str, str]] = field(default_factory=list)


class _ConfirmingPublisher:
    """A channel in confirm mode that keeps up to `window` publishes unconfirmed, over any number of batches.

    Each batch's confirms, nacks and returns are counted apart, so a batch can be sent before the ones
    ahead of it are settled and still be settled on its own.
    """

    def __init__(
        self, connection: pika.BlockingConnection, channel: BlockingChannel, deadline: float
    ) -> None:
        self._connection = connection
        # The asynchronous channel under the blocking one: its publish does not wait for the confirm.
        self._channel = channel._impl
        self._next_tag = 0
        self._unconfirmed: deque[int] = deque()
        self._settled_out_of_order: set[int] = set()
        self._in_flight: deque[_InFlight] = deque()
        self._wake_when: Callable[[], bool] | None = None
        self._selected = False
        self.closed_reason: BaseException | None = None
        self._channel.add_on_close_callback(self._on_close)
        self._channel.add_on_return_callback(self._on_return)
        self._channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_select_ok)
        self._wait(lambda: self._selected, deadline, lambda: "the broker did not enter confirm mode")

    @property
    def is_open(self) -> bool:
        return self.closed_reason is None and bool(self._channel.is_open)

    def abandon(self) -> None:
        """Close the channel without waiting, so confirms of an abandoned batch can never be miscounted."""
        if self._channel.is_open:
            self._channel.close()

    def send(
        self,
        exchange: str,
        messages: Sequence[Message],
        *,
        window: int,
        deadline: float,
        blocked: Callable[[], bool],
    ) -> _InFlight:
        """Publish the batch without waiting for its confirms (only for room in the window)."""
        # Known before the first message goes out: a batch larger than the window is confirmed in part
        # while it is being sent, and the broker numbers its messages on from the last.
        message_ids = frozenset(message.message_id for message in messages)
        self.settle_sharing_ids(message_ids, deadline)
        batch = _InFlight(
            exchange=exchange,
            size=len(messages),
            last_tag=self._next_tag + len(messages),
            message_ids=message_ids,
            unsettled=len(messages),
        )
        self._in_flight.append(batch)
        for message in messages:
            if blocked():
                self._wait(
                    lambda: not blocked(),
                    deadline,
                    lambda: (
                        f"publish to exchange {exchange!r}: the broker kept the connection blocked "
                        "(resource alarm)"
                    ),
                )
            if self._outstanding() >= window:
                self._await(lambda: self._outstanding() <= window - 1, deadline, exchange)
            self._raise_if_closed()
            properties = pika.BasicProperties(
                content_type=message.content_type,
                headers=dict(message.headers) if message.headers else None,
                delivery_mode=PERSISTENT,
                message_id=message.message_id,
                correlation_id=message.correlation_id,
                type=message.type,
            )
            self._channel.basic_publish(
                exchange, message.routing_key, message.body, properties=properties, mandatory=True
            )
            self._next_tag += 1
            self._unconfirmed.append(self._next_tag)
        # pika only writes to the socket while it processes events: one pass hands the batch to the broker
        # now, so it is confirming while the caller prepares the next.
        self._connection.process_data_events(time_limit=0)
        return batch

    def settle(self, batch: _InFlight, deadline: float) -> None:
        """Wait until the broker has confirmed or nacked every message of the batch."""
        self._await(lambda: batch.unsettled == 0, deadline, batch.exchange, batch)

    def settle_sharing_ids(self, message_ids: frozenset[str], deadline: float) -> None:
        """Wait for the batches in flight that carry any of these message ids.

        A return names only its message id: a batch sent while another with the same id is unsettled could
        not tell which of them the broker returned.
        """
        for batch in list(self._in_flight):
            if batch.unsettled and not batch.message_ids.isdisjoint(message_ids):
                self.settle(batch, deadline)

    def _outstanding(self) -> int:
        return len(self._unconfirmed) - len(self._settled_out_of_order)

    def _await(
        self, done: Callable[[], bool], deadline: float, exchange: str, batch: _InFlight | None = None
    ) -> None:
        self._wake_when = done
        try:
            self._wait(
                done,
                deadline,
                lambda: (
                    f"publish to exchange {exchange!r}: the broker did not confirm "
                    f"{self._outstanding() if batch is None else batch.unsettled} messages"
                ),
            )
        finally:
            self._wake_when = None

    def _wait(self, done: Callable[[], bool], deadline: float, failure: Callable[[], str]) -> None:
        """Pump the connection until done(), or raise BusUnavailableError saying failure() at the deadline."""
        while not done():
            self._raise_if_closed()
            remaining = deadline - time.monotonic()
            # Past the deadline the connection is still read once: what the broker said in time may sit
            # unread in the socket, waited for late.
            self._connection.process_data_events(time_limit=max(remaining, 0))
            if remaining <= 0 and not done():
                self._raise_if_closed()
                raise BusUnavailableError(f"{failure()} within the publish timeout")
        self._raise_if_closed()

    def _raise_if_closed(self) -> None:
        if self.closed_reason is not None:
            raise self.closed_reason

    # -- callbacks from pika's I/O loop: record only, never raise --------------------------------

    def _on_select_ok(self, _frame: Any) -> None:
        self._selected = True
        self._connection.call_later(0, _noop)

    def _on_close(self, _channel: Any, reason: BaseException) -> None:
        self.closed_reason = reason
        self._connection.call_later(0, _noop)

    def _on_return(self, _channel: Any, method: Any, properties: Any, _body: bytes) -> None:
        message_id = properties.message_id or ""
        # RabbitMQ returns a message before it confirms it: the batch is still unsettled.
        for batch in self._in_flight:
            if batch.unsettled and message_id in batch.message_ids:
                batch.returned.append((method.routing_key, message_id))
                return

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        nack = isinstance(method, pika.spec.Basic.Nack)
        for tag in self._settle(method.delivery_tag, method.multiple):
            for batch in self._in_flight:
                if tag <= batch.last_tag:
                    batch.unsettled -= 1
                    batch.nacked += nack
                    break
        while self._in_flight and self._in_flight[0].unsettled == 0:
            self._in_flight.popleft()
        if self._wake_when is not None and self._wake_when():
            self._wake_when = None
            self._connection.call_later(0, _noop)

    def _settle(self, tag: int, multiple: bool) -> list[int]:
        """Forget confirmed publish sequence numbers; return the ones this confirm settled."""
        settled = []
        if multiple:
            while self._unconfirmed and self._unconfirmed[0] <= tag:
                head = self._unconfirmed.popleft()
                if head in self._settled_out_of_order:
                    self._settled_out_of_order.discard(head)
                else:
                    settled.append(head)
        elif self._unconfirmed and tag >= self._unconfirmed[0] and tag not in self._settled_out_of_order:
            self._settled_out_of_order.add(tag)
            settled.append(tag)
            while self._unconfirmed and self._unconfirmed[0] in self._settled_out_of_order:
                self._settled_out_of_order.discard(self._unconfirmed.popleft())
        return settled


class RabbitMQBus:
    """One connection to RabbitMQ; implements bus.port.Bus. Not thread-safe."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = 10.0,
        heartbeat_s: int = 30,
        blocked_timeout_s: float = 60.0,
        publish_timeout_s: float = 30.0,
        confirm_window: int = 1000,
        quorum_group_size: int = DEFAULT_QUORUM_GROUP_SIZE,
    ) -> None:
        """Connect at once (BusUnavailableError if no broker can be reached; no retry here).

        url may name several nodes of one cluster, comma-separated (amqp://…@node1/,amqp://…@node2/): the
        connection goes to the first that answers, in that order, so a bus opened again after its node
        died finds a live one.

        publish_timeout_s bounds one publish() call, including time spent waiting while the broker
        blocks the connection; blocked_timeout_s is pika's blocked_connection_timeout, after which it
        drops a connection that stays blocked. Query options in the URL win over these defaults.

        quorum_group_size is how many cluster nodes hold each quorum queue this bus creates (a cluster
        with fewer nodes puts one on each); queues that exist already keep their members.
        """
        if confirm_window < 1:
            raise ConfigError(f"confirm_window must be at least 1, got {confirm_window}")
        if quorum_group_size < 1:
            raise ConfigError(f"quorum_group_size must be at least 1, got {quorum_group_size}")
        self._quorum_group_size = quorum_group_size
        self.url = redact_url(url)
        self._publish_timeout_s = publish_timeout_s
        self._confirm_window = confirm_window
        parameters = [
            self._parameters(node, connect_timeout_s, heartbeat_s, blocked_timeout_s)
            for node in node_urls(url)
        ]
        try:
            self._connection = pika.BlockingConnection(parameters)
        except (pika_exceptions.AMQPError, OSError) as exc:
            raise BusUnavailableError(f"cannot connect to {self.url}: {exc!r}") from exc
        self._connection.add_on_connection_blocked_callback(self._on_blocked)
        self._connection.add_on_connection_unblocked_callback(self._on_unblocked)
        self._blocked = False
        self._lost: str | None = None
        self._closed = False
        self._admin: BlockingChannel | None = None
        self._consume: BlockingChannel | None = None
        self._publisher: _ConfirmingPublisher | None = None
        self._exchanges_seen: set[str] = set()
        self._consumers: dict[str, _Consumer] = {}
        # Delivery tags handed out are this connection's own, counting on across channels, so a tag from
        # a consume channel the broker closed never matches a delivery on its replacement.
        self._last_tag = 0
        self._unacked: dict[int, _Held] = {}

    @staticmethod
    def _parameters(
        url: str, connect_timeout_s: float, heartbeat_s: int, blocked_timeout_s: float
    ) -> pika.URLParameters:
        try:
            parameters = pika.URLParameters(url)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"bad AMQP URL {redact_url(url)!r}: {exc}") from exc
        # Options given in the URL's query string win over these defaults.
        given = parse_qs(urlsplit(url).query)
        defaults: dict[str, Any] = {
            "heartbeat": heartbeat_s,
            "blocked_connection_timeout": blocked_timeout_s,
            "socket_timeout": connect_timeout_s,
            "stack_timeout": connect_timeout_s,
            "connection_attempts": 1,
        }
        for name, value in defaults.items():
            if name not in given:
                setattr(parameters, name, value)
        return parameters

    def __enter__(self) -> RabbitMQBus:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the port ---------------------------------------------------------------------------------

    def declare(self, topology: Topology) -> None:
        check_topology(topology)
        with self._guard("declare"):
            channel = self._admin_channel()
            for exchange in topology.exchanges:
                channel.exchange_declare(exchange.name, exchange_type=exchange.type, durable=True)
            for queue in topology.queues:
                arguments: dict[str, Any] = {"x-queue-type": queue.queue_type}
                if queue.queue_type == "quorum":
                    arguments[_GROUP_SIZE] = self._quorum_group_size
                if queue.dead_letter_exchange is not None:
                    arguments["x-dead-letter-exchange"] = queue.dead_letter_exchange
                if queue.dead_letter_routing_key is not None:
                    arguments["x-dead-letter-routing-key"] = queue.dead_letter_routing_key
                if queue.message_ttl_ms is not None:
                    arguments["x-message-ttl"] = queue.message_ttl_ms
                if queue.at_least_once_dead_letters:
                    # RabbitMQ accepts this strategy only with reject-publish overflow.
                    arguments["x-dead-letter-strategy"] = "at-least-once"
                    arguments["x-overflow"] = "reject-publish"
                channel = self._declare_queue(channel, queue.name, arguments)
                for binding in queue.bindings:
                    channel.queue_bind(queue.name, binding.exchange, routing_key=binding.pattern)

    def _declare_queue(
        self, channel: BlockingChannel, name: str, arguments: dict[str, Any]
    ) -> BlockingChannel:
        """Declare a queue; return the admin channel to go on with (a refusal replaces it).

        RabbitMQ counts x-quorum-initial-group-size in its equivalence check, although it only sizes a
        queue when it is created: a quorum queue declared without it (by a release before it, as every
        installation's are) refuses it with PRECONDITION_FAILED. Such a queue is declared again without
        it, so every other argument is still checked and the queue keeps the members it has; adding
        members to it is the operator's (`rabbitmq-queues grow`).
        """
        try:
            channel.queue_declare(name, durable=True, arguments=arguments)
        except pika_exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != _PRECONDITION_FAILED or f"'{_GROUP_SIZE}'" not in exc.reply_text:
                raise
            self._forget_closed_channels()
            channel = self._admin_channel()
            without_size = {key: value for key, value in arguments.items() if key != _GROUP_SIZE}
            channel.queue_declare(name, durable=True, arguments=without_size)
            _LOG.info(
                "quorum queue %r on %s was created without an initial group size; it keeps its members",
                name,
                self.url,
            )
        return channel

    def publish(self, exchange: str, messages: Sequence[Message]) -> None:
        self.send(exchange, messages).wait()

    def send(self, exchange: str, messages: Sequence[Message]) -> Confirmation:
        self._check_usable()
        if not messages:
            return SETTLED
        for message in messages:
            check_properties(message)
        deadline = time.monotonic() + self._publish_timeout_s
        with self._guard(f"publish to exchange {exchange!r}"):
            self._check_exchange(exchange)
            publisher = self._publishing_channel(deadline)
            try:
                batch = publisher.send(
                    exchange,
                    messages,
                    window=self._confirm_window,
                    deadline=deadline,
                    blocked=self._is_blocked,
                )
            except BaseException:
                self._drop_publisher(publisher)
                raise
        return _Confirmation(self, publisher, batch, deadline)

    def _check_exchange(self, exchange: str) -> None:
        """Raise ConfigError for a missing exchange before anything of a batch is sent to it.

        A publish to a missing exchange would close the publish channel, and so fail every batch in flight
        on it; a passive declare on the admin channel closes only that one. Each connection checks an
        exchange once: one deleted later still costs the publish channel.
        """
        if exchange and exchange not in self._exchanges_seen:
            self._admin_channel().exchange_declare(exchange, passive=True)
            self._exchanges_seen.add(exchange)

    def _settle_batch(self, publisher: _ConfirmingPublisher, batch: _InFlight, deadline: float) -> None:
        """Wait for a sent batch's confirms; raise what the broker said about it."""
        # A batch the broker has settled whole has its own outcome, whatever became of the connection since.
        if batch.unsettled:
            with self._guard(f"publish to exchange {batch.exchange!r}"):
                try:
                    publisher.settle(batch, deadline)
                except BaseException:
                    self._drop_publisher(publisher)
                    raise
        if batch.nacked:
            raise PublishNotConfirmedError(
                f"broker nacked {batch.nacked} of {batch.size} messages to exchange {batch.exchange!r}"
            )
        if batch.returned:
            raise UnroutableError(
                unroutable_text(batch.exchange, batch.returned, batch.size),
                message_ids=tuple(message_id for _, message_id in batch.returned),
            )

    def _drop_publisher(self, publisher: _ConfirmingPublisher) -> None:
        # Confirms of its batches may still arrive; a fresh channel keeps them from the next one.
        if self._publisher is publisher:
            self._publisher = None
        if self._connection.is_open:
            publisher.abandon()

    def fetch(self, queue: str, max_messages: int, timeout_s: float) -> list[Delivery]:
        self._check_usable()
        check_fetch_size(max_messages)
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._guard(f"fetch from queue {queue!r}"):
            consumer = self._consumer_for(queue, max_messages)
            self._connection.process_data_events(time_limit=0)
            while not consumer.buffer and not consumer.cancelled:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._connection.process_data_events(time_limit=remaining)
        if consumer.cancelled and not consumer.buffer:
            raise ConfigError(f"queue {queue!r} was deleted while fetching from it")
        deliveries: list[Delivery] = []
        while consumer.buffer and len(deliveries) < max_messages:
            method, properties, body = consumer.buffer.popleft()
            self._last_tag += 1
            delivery = _delivery(queue, self._last_tag, method, properties, body)
            self._unacked[self._last_tag] = _Held(queue, delivery.message.message_id, method.delivery_tag)
            deliveries.append(delivery)
        return deliveries

    def ack(self, delivery: Delivery) -> None:
        broker_tag = self._settle(delivery)
        with self._guard(f"ack delivery {delivery.delivery_tag} from queue {delivery.queue!r}"):
            self._consume_channel().basic_ack(broker_tag)

    def nack(self, delivery: Delivery, *, requeue: bool) -> None:
        broker_tag = self._settle(delivery)
        with self._guard(f"nack delivery {delivery.delivery_tag} from queue {delivery.queue!r}"):
            self._consume_channel().basic_nack(broker_tag, requeue=requeue)

    def queue_depth(self, queue: str) -> int:
        with self._guard(f"queue_depth of {queue!r}"):
            frame = self._admin_channel().queue_declare(queue, passive=True)
        return int(frame.method.message_count)

    def purge(self, queue: str) -> int:
        with self._guard(f"purge queue {queue!r}"):
            frame = self._admin_channel().queue_purge(queue)
        return int(frame.method.message_count)

    def delete_queue(self, queue: str) -> None:
        with self._guard(f"delete queue {queue!r}"):
            self._admin_channel().queue_delete(queue)

    def delete_exchange(self, exchange: str) -> None:
        self._exchanges_seen.discard(exchange)
        with self._guard(f"delete exchange {exchange!r}"):
            self._admin_channel().exchange_delete(exchange)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._unacked.clear()
        self._consumers.clear()
        if self._connection.is_open:
            try:
                self._connection.close()
            except (pika_exceptions.AMQPError, OSError) as exc:
                _LOG.warning("closing the connection to %s failed: %r", self.url, exc)

    # -- channels and consumers -------------------------------------------------------------------

    def _admin_channel(self) -> BlockingChannel:
        if self._admin is None or not self._admin.is_open:
            self._admin = self._connection.channel()
        return self._admin

    def _consume_channel(self) -> BlockingChannel:
        if self._consume is not None and not self._consume.is_open:
            self._forget_closed_channels()
        if self._consume is None:
            self._consume = self._connection.channel()
            self._consume.add_on_cancel_callback(self._on_consumer_cancelled)
        return self._consume

    def _publishing_channel(self, deadline: float) -> _ConfirmingPublisher:
        if self._publisher is None or not self._publisher.is_open:
            self._publisher = _ConfirmingPublisher(self._connection, self._connection.channel(), deadline)
        return self._publisher

    def _consumer_for(self, queue: str, max_messages: int) -> _Consumer:
        # The broker stops pushing once a queue's consumers hold `prefetch` unacknowledged deliveries,
        # so deliveries the caller still holds must not use up the room for this batch.
        channel = self._consume_channel()
        held = sum(1 for entry in self._unacked.values() if entry.queue == queue)
        wanted = held + max_messages
        consumer = self._consumers.get(queue)
        if consumer is not None and consumer.prefetch >= wanted:
            return consumer
        if consumer is None:
            # A consumer on a missing queue would close the consume channel and its unsettled deliveries.
            self._admin_channel().queue_declare(queue, passive=True)
            consumer = self._consumers[queue] = _Consumer()
        # RabbitMQ applies a per-consumer prefetch to consumers created after basic.qos only. A larger
        # batch therefore adds a consumer for the difference: cancelling the old one instead would
        # reject, and so mark redelivered, whatever the broker pushed to it meanwhile.
        channel.basic_qos(prefetch_count=wanted - consumer.prefetch)
        buffer = consumer.buffer
        tag = channel.basic_consume(
            queue,
            on_message_callback=lambda _channel, method, properties, body: buffer.append(
                (method, properties, body)
            ),
            auto_ack=False,
        )
        consumer.tags.append(tag)
        consumer.prefetch = wanted
        return consumer

    def _on_consumer_cancelled(self, frame: Any) -> None:
        tag = frame.method.consumer_tag
        for queue, consumer in list(self._consumers.items()):
            if tag in consumer.tags:
                consumer.cancelled = True
                del self._consumers[queue]

    def _settle(self, delivery: Delivery) -> int:
        """Forget a delivery the caller settles; return the broker's tag for it."""
        self._check_usable()
        entry = self._unacked.get(delivery.delivery_tag)
        if entry is None or (entry.queue, entry.message_id) != (delivery.queue, delivery.message.message_id):
            raise BusError(
                f"delivery tag {delivery.delivery_tag} from queue {delivery.queue!r} is not unsettled on "
                "this connection (already acked or nacked, delivered to another connection, or given back "
                "to the queue when the broker closed its channel)"
            )
        del self._unacked[delivery.delivery_tag]
        return entry.broker_tag

    # -- flow control and errors ------------------------------------------------------------------

    def _on_blocked(self, _connection: Any, frame: Any) -> None:
        _LOG.warning("broker blocked the connection to %s: %s", self.url, frame.method.reason)
        self._blocked = True

    def _on_unblocked(self, _connection: Any, _frame: Any) -> None:
        _LOG.info("broker unblocked the connection to %s", self.url)
        self._blocked = False

    def _is_blocked(self) -> bool:
        return self._blocked

    def _check_usable(self) -> None:
        if self._closed:
            raise BusUnavailableError(f"connection to {self.url} is closed")
        if self._lost is not None:
            raise BusUnavailableError(f"connection to {self.url} was lost ({self._lost}); open a new bus")

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Run pika calls, turning pika's exceptions into the hub's."""
        self._check_usable()
        try:
            yield
        except pika_exceptions.ChannelClosedByBroker as exc:
            # The consume channel only closes under a valid request when the broker gives up on it (for
            # instance an ack overdue past consumer_timeout): that is never the caller's configuration.
            consume_closed = self._consume is not None and not self._consume.is_open
            self._forget_closed_channels()
            if exc.reply_code in _CONFIG_REPLY_CODES and not consume_closed:
                raise ConfigError(f"{what} on {self.url}: {exc.reply_text}") from exc
            raise BusUnavailableError(f"{what} on {self.url}: channel closed by broker: {exc!r}") from exc
        except pika_exceptions.AMQPChannelError as exc:
            self._forget_closed_channels()
            raise BusUnavailableError(f"{what} on {self.url}: {exc!r}") from exc
        except (pika_exceptions.AMQPError, OSError) as exc:
            self._connection_lost(exc)

    def _connection_lost(self, exc: BaseException) -> NoReturn:
        self._lost = repr(exc)
        self._unacked.clear()
        self._consumers.clear()
        raise BusUnavailableError(f"connection to {self.url} lost: {exc!r}") from exc

    def _forget_closed_channels(self) -> None:
        if self._admin is not None and not self._admin.is_open:
            self._admin = None
        if self._consume is not None and not self._consume.is_open:
            _LOG.warning("the consume channel to %s closed; its unsettled deliveries went back", self.url)
            self._consume = None
            self._consumers.clear()
            self._unacked.clear()
        if self._publisher is not None and not self._publisher.is_open:
            self._publisher = None


@dataclass
class _Confirmation:
    """A batch sent on a RabbitMQBus; wait() settles it, once, and says the same thereafter."""

    bus: RabbitMQBus
    publisher: _ConfirmingPublisher
    batch: _InFlight
    deadline: float
    _error: BaseException | None = None
    _settled: bool = False

    def wait(self) -> None:
        if not self._settled:
            try:
                self.bus._settle_batch(self.publisher, self.batch, self.deadline)
            except Exception as exc:
                self._error = exc
            self._settled = True
        if self._error is not None:
            raise self._error


def _delivery(queue: str, tag: int, method: Any, properties: Any, body: bytes) -> Delivery:
    headers: dict[str, Any] = normalize_value(properties.headers) if properties.headers else {}
    delivery_count = headers.get("x-delivery-count", 0)
    message = Message(
        body=body,
        routing_key=method.routing_key,
        message_id=properties.message_id or "",
        headers=headers,
        content_type=properties.content_type or _NO_CONTENT_TYPE,
        correlation_id=properties.correlation_id,
        type=properties.type,
    )
    return Delivery(
        message=message,
        exchange=method.exchange,
        queue=queue,
        delivery_tag=tag,
        redelivered=bool(method.redelivered),
        delivery_count=delivery_count if isinstance(delivery_count, int) else 0,
    )
