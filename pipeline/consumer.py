"""Bus consumer with an inbox: each event takes effect once, however often the bus delivers it.

A fetched batch is handled in one database transaction. The event ids go into the inbox in the same
transaction as the state changes, so a redelivery after a crash finds them there and has no second
effect. Deliveries are acknowledged only after the commit. The batch is first tried whole, with one
inbox lookup and one inbox insert. When a handler fails, the batch is rolled back, that event is set
aside and the rest is applied again. Only when something else fails (an unreadable message, a
concurrent consumer) is the batch done event by event, each inside its own savepoint. Savepoints cost
two round trips per event, which the common all-good batch does not pay.

An event whose handler fails is rolled back alone and sent through the retry queues (bus/retry.py);
after the last retry it is parked. A message that is not a CloudEvent is parked as invalid at once:
retrying cannot make it readable. Events are decoded in one place (pipeline.sealing.decode_event), which
opens their sealed personal fields with the keyring of the consumer's engine; one whose personal field
does not open (a key this hub lacks, an altered value) is parked as invalid too, to be replayed once the
key is configured. The handler receives each event as a DecodedEvent, which decodes its data into the
catalogue's payload model once per delivery; data that does not satisfy the model fails the handler like
any other error of it.

Several processes may consume one queue (competing consumers). Before it reads anything, a batch's
transaction takes keyed locks (store/locks.py) on the keys its events touch (a case, a customer, a piece of
equipment; a KeyedHandler names them), all at once in one order. Two batches that hold events of one key
are applied one after the other, the second reading what the first committed, and neither deadlocks nor
meets the other's rows as a unique violation. A copy of an event that another consumer is applying waits
for it, then finds the event in the inbox: its keys come from its own payload, the same as its twin's, and
an event without keys of its own is locked by its id instead. A transaction takes at most
MAX_KEYS_PER_TRANSACTION keys (more only for one event that needs them all): a larger batch is applied
in several transactions, so that one consumer neither fills PostgreSQL's shared lock table nor holds
back every other consumer for long. A key not granted in time (a holder stuck) hands the batch back to
the broker rather than waiting again event by event.

A handler may leave work for later that many events coalesce into (feasibility's re-checks, which a burst of
grid notices names over and over): the consumer's deferred step does a bounded part of it after a fetched
batch and while the queue is idle (work_once), in the consumer's own process and transactions. While the
queue is backed up (full batches), the step runs at most once every DEFERRED_EVERY_S: the events come first,
and the longer the deferred work waits, the more of them it serves at once.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import pydantic
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bus.port import Bus, Delivery, Message
from bus.retry import RetryPolicy, group_by_exchange, next_hop
from ground import metrics
from ground.errors import InvalidRecordError
from pipeline.decoded import DecodedEvent
from pipeline.sealing import SealedFieldError, decode_event
from store.crypto import keyring_of
from store.database import utcnow
from store.locks import LockTimeoutError, lock_keys
from store.parking import park
from store.schema import inbox
from store.transaction_work import transaction_work

log = logging.getLogger(__name__)

# Built once: they run for every event, and building a statement costs more than running it.
_INBOX_ADD = inbox.insert()
_INBOX_SEEN = sa.select(inbox.c.event_id).where(
    inbox.c.consumer == sa.bindparam("consumer"), inbox.c.event_id == sa.bindparam("event_id")
)

# PostgreSQL's shared lock table holds max_locks_per_transaction (64 by default) x max_connections keys;
# a bound per transaction keeps every consumer of every instance within it (see README).
MAX_KEYS_PER_TRANSACTION = 256
# The least often a consumer does its deferred work while its queue is backed up (see the module).
DEFERRED_EVERY_S = 1.0

EventHandler = Callable[[Connection, DecodedEvent], None]
KeysOf = Callable[[Connection, DecodedEvent], Iterable[str]]
# One bounded step of a handler's deferred work, in transactions of its own; how much it found (0: none).
DeferredStep = Callable[[Engine], int]


@dataclass(frozen=True)
class KeyedHandler:
    """A handler with the keys of what each event changes: events sharing a key are applied one at a time.

    keys names everything the handler will change for an event, so that all of a batch's locks are taken
    before any of its work. It may read to find them (a customer's open cases); it must not write.
    alone_types: the event types whose events each commit on their own, for a handler that takes further
    locks while it works on them (feasibility's capacity locks), so that it never holds them across another
    event's work; a message that does not name its type is taken as one of them. Events of other types are
    batched as usual.
    """

    handler: EventHandler
    keys: KeysOf
    alone_types: frozenset[str] = frozenset()

    def __call__(self, conn: Connection, decoded: DecodedEvent) -> None:
        self.handler(conn, decoded)


@dataclass
class ConsumerStats:
    """What a consumer has done since it started."""

    handled: int = 0
    duplicates: int = 0
    invalid: int = 0
    failed: int = 0
    retried: int = 0
    parked: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


def subject_keys(namespace: str) -> KeysOf:
    """Keys by the event's subject (a piece of equipment): for handlers whose rows are the subject's."""

    def keys(_conn: Connection, decoded: DecodedEvent) -> list[str]:
        return [f"{namespace}:{decoded.event.subject}"]

    return keys


class InboxConsumer:
    """Fetches from one queue and applies each new event with the handler, exactly once in effect."""

    def __init__(
        self,
        engine: Engine,
        bus: Bus,
        *,
        queue: str,
        name: str,
        handler: EventHandler,
        retry: RetryPolicy | None = None,
        deferred: DeferredStep | None = None,
    ) -> None:
        self._engine = engine
        self.bus = bus
        self._queue = queue
        self._name = name
        self._handler = handler
        self._retry = retry or RetryPolicy()
        self._deferred = deferred
        self._deferred_left = False
        self._deferred_at = float("-inf")
        self.stats = ConsumerStats()

    def work_once(self, *, max_messages: int = 200, timeout_s: float = 0.5) -> bool:
        """Handle one batch, then one step of the deferred work; whether either found anything.

        After a full batch the step waits until DEFERRED_EVERY_S passed since the last one. While deferred
        work is left, the fetch does not wait for messages: the next step follows at once.
        """
        wait = 0.0 if self._deferred_left else timeout_s
        settled = self.consume_once(max_messages=max_messages, timeout_s=wait)
        if self._deferred is None:
            return settled > 0
        backed_up = settled >= max_messages
        if backed_up and time.monotonic() - self._deferred_at < DEFERRED_EVERY_S:
            return True
        self._deferred_at = time.monotonic()
        done = self._deferred(self._engine)
        self._deferred_left = done > 0
        return settled > 0 or done > 0

    def consume_once(self, *, max_messages: int = 200, timeout_s: float = 0.5) -> int:
        """Handle one batch; return how many deliveries were settled."""
        deliveries = self.bus.fetch(self._queue, max_messages, timeout_s)
        if not deliveries:
            return 0
        before = replace(self.stats, by_type={})
        chunks = self._chunks(deliveries)
        for index, chunk in enumerate(chunks):
            try:
                acks, failures = self._settle(chunk)
            except Exception:
                # The chunk was not settled (a lost database, a deadlock; parts of it committed are in the
                # inbox): hand it and the rest back to the broker now rather than leaving them
                # unacknowledged on this connection.
                for delivery in (delivery for rest in chunks[index:] for delivery in rest):
                    self.bus.nack(delivery, requeue=True)
                raise
            for delivery in acks:
                self.bus.ack(delivery)
            if failures:
                self._send_on(failures)
            self._count(before)
            before = replace(self.stats, by_type={})
        return len(deliveries)

    def _chunks(self, deliveries: list[Delivery]) -> list[list[Delivery]]:
        """The deliveries in order, each of the handler's alone_types in a chunk of its own."""
        alone = self._handler.alone_types if isinstance(self._handler, KeyedHandler) else frozenset()
        if not alone:
            return [deliveries]
        chunks: list[list[Delivery]] = []
        run: list[Delivery] = []
        for delivery in deliveries:
            kind = delivery.message.type
            if kind is not None and kind not in alone:
                run.append(delivery)
                continue
            if run:
                chunks.append(run)
                run = []
            chunks.append([delivery])
        if run:
            chunks.append(run)
        return chunks

    def _settle(
        self, deliveries: list[Delivery]
    ) -> tuple[list[Delivery], list[tuple[Delivery, BaseException]]]:
        """Apply deliveries in one transaction, whole or else event by event; (acks, failures) once done."""
        settled = self._handle_whole(deliveries)
        if settled is not None:
            return settled
        acks: list[Delivery] = []
        failures: list[tuple[Delivery, BaseException]] = []
        remaining = deliveries
        while remaining:
            with self._engine.begin() as conn:
                count = self._lock(conn, self._decodable(remaining))
                for delivery in remaining[:count]:
                    error = self._handle(conn, delivery)
                    if error is None:
                        acks.append(delivery)
                    else:
                        failures.append((delivery, error))
            remaining = remaining[count:]
        return acks, failures

    def _lock(self, conn: Connection, events: Sequence[DecodedEvent | None]) -> int:
        """Take the keyed locks of the first events before the transaction reads anything (see the module).

        Returns how many of the events the locks cover: those whose keys fit in MAX_KEYS_PER_TRANSACTION,
        and always the first. An undecodable event (None) has no keys; it is parked without touching state.
        """
        keys: set[str] = set()
        count = 0
        for decoded in events:
            own = self._keys_of(conn, decoded) if decoded is not None else set()
            if count and len(keys | own) > MAX_KEYS_PER_TRANSACTION:
                break
            keys |= own
            count += 1
        lock_keys(conn, keys)
        return count

    def _keys_of(self, conn: Connection, decoded: DecodedEvent) -> set[str]:
        if isinstance(self._handler, KeyedHandler):
            try:
                own = set(self._handler.keys(conn, decoded))
            except (pydantic.ValidationError, InvalidRecordError):
                # Its handler will fail on the same data, and the event goes to the retries.
                own = set()
            if own:
                return own
        return {f"inbox:{self._name}:{decoded.event.id}"}

    def _decodable(self, deliveries: list[Delivery]) -> list[DecodedEvent | None]:
        keyring = functools.partial(keyring_of, self._engine.dialect)
        events: list[DecodedEvent | None] = []
        for delivery in deliveries:
            try:
                events.append(DecodedEvent(decode_event(delivery.message.body, keyring)))
            except (pydantic.ValidationError, SealedFieldError):
                events.append(None)
        return events

    def _count(self, before: ConsumerStats) -> None:
        """Report what this batch did, once it is committed and settled."""
        label = self._name
        metrics.CONSUMER_HANDLED.labels(label).inc(self.stats.handled - before.handled)
        metrics.CONSUMER_DUPLICATES.labels(label).inc(self.stats.duplicates - before.duplicates)
        metrics.CONSUMER_INVALID.labels(label).inc(self.stats.invalid - before.invalid)
        metrics.CONSUMER_RETRIES.labels(label).inc(self.stats.retried - before.retried)
        metrics.CONSUMER_PARKED.labels(label).inc(self.stats.parked - before.parked)

    def _send_on(self, failures: list[tuple[Delivery, BaseException]]) -> None:
        """Publish each failed message to its next retry queue or the parking lot, then settle it."""
        hops: list[tuple[str, Message]] = []
        for delivery, error in failures:
            exchange, copy, parks = next_hop(delivery, error, self._retry)
            hops.append((exchange, copy))
            if parks:
                self.stats.parked += 1
                log.error("consumer %s parks message %s after %s", self._name, copy.message_id, error)
            else:
                self.stats.retried += 1
        for exchange, messages in group_by_exchange(hops).items():
            self.bus.publish(exchange, messages)
        for delivery, _ in failures:
            self.bus.ack(delivery)

    def _handle_whole(
        self, deliveries: list[Delivery]
    ) -> tuple[list[Delivery], list[tuple[Delivery, BaseException]]] | None:
        """Apply the batch in one transaction without savepoints; return (acks, failures) once committed.

        A handler that fails rolls the transaction back; its event is set aside as failed (its handler is
        not run again) and the rest is applied anew. Anything else that fails (an unreadable message, a
        concurrent consumer's inbox row) gives None for the event-by-event path, which finds the events
        committed already in the inbox. A batch with more keys than a transaction takes is committed in
        parts. Counters change only when a transaction commits, so an event done again is counted once.
        """
        keyring = functools.partial(keyring_of, self._engine.dialect)
        try:
            events = [DecodedEvent(decode_event(delivery.message.body, keyring)) for delivery in deliveries]
        except (pydantic.ValidationError, SealedFieldError):
            return None
        acks: list[Delivery] = []
        failures: list[tuple[Delivery, BaseException]] = []
        pending = list(zip(deliveries, events, strict=True))
        while pending:
            outcome = ConsumerStats()
            failed: tuple[int, BaseException] | None = None
            try:
                with self._engine.connect() as conn, transaction_work(conn) as work:
                    count, failed = self._apply_all(conn, [event for _, event in pending], outcome)
                    if failed is None:
                        work.finish(conn)
                        conn.commit()
                    else:
                        conn.rollback()
            except LockTimeoutError:
                raise
            except Exception:
                return None
            if failed is not None:
                index, error = failed
                delivery, decoded = pending.pop(index)
                event = decoded.event
                log.warning(
                    "consumer %s failed on event %s (%s): %s", self._name, event.id, event.type, error
                )
                failures.append((delivery, error))
                continue
            acks += [delivery for delivery, _ in pending[:count]]
            pending = pending[count:]
            self.stats.handled += outcome.handled
            self.stats.duplicates += outcome.duplicates
            for event_type, number in outcome.by_type.items():
                self.stats.by_type[event_type] = self.stats.by_type.get(event_type, 0) + number
        self.stats.failed += len(failures)
        return acks, failures

    def _apply_all(
        self, conn: Connection, events: list[DecodedEvent], outcome: ConsumerStats
    ) -> tuple[int, tuple[int, BaseException] | None]:
        """Apply the first events, as many as the locks cover, and add them to the inbox.

        Returns how many that is, and the position and error of a handler that failed (None if none did).
        """
        count = self._lock(conn, events)
        events = events[:count]
        seen = self._seen_of(conn, [decoded.event.id for decoded in events])
        rows: list[dict[str, object]] = []
        for index, decoded in enumerate(events):
            event = decoded.event
            if event.id in seen:
                outcome.duplicates += 1
                continue
            seen.add(event.id)
            try:
                self._handler(conn, decoded)
            except Exception as exc:
                return count, (index, exc)
            rows.append({"consumer": self._name, "event_id": event.id, "processed_at": utcnow()})
            outcome.handled += 1
            outcome.by_type[event.type] = outcome.by_type.get(event.type, 0) + 1
        if rows:
            conn.execute(_INBOX_ADD, rows)
        return count, None

    def _seen_of(self, conn: Connection, event_ids: list[str]) -> set[str]:
        query = sa.select(inbox.c.event_id).where(
            inbox.c.consumer == self._name, inbox.c.event_id.in_(event_ids)
        )
        return set(conn.execute(query).scalars())

    def _handle(self, conn: Connection, delivery: Delivery) -> BaseException | None:
        """Apply one delivery; return the handler's error if it failed (its savepoint is rolled back)."""
        message = delivery.message
        try:
            event = decode_event(message.body, functools.partial(keyring_of, self._engine.dialect))
        except pydantic.ValidationError as exc:
            self._park_invalid(conn, message, "envelope", f"is not a CloudEvent: {_brief(exc)}")
            return None
        except SealedFieldError as exc:
            self._park_invalid(conn, message, "sealed_field", str(exc))
            return None
        if self._seen(conn, event.id):
            self.stats.duplicates += 1
            return None
        savepoint = conn.begin_nested()
        try:
            conn.execute(_INBOX_ADD, {"consumer": self._name, "event_id": event.id, "processed_at": utcnow()})
            with transaction_work(conn) as work:
                self._handler(conn, DecodedEvent(event))
                work.finish(conn)
            savepoint.commit()
        except sa.exc.IntegrityError as exc:
            savepoint.rollback()
            if self._seen(conn, event.id):
                # Another consumer of the same queue committed this event id first.
                self.stats.duplicates += 1
                return None
            # The handler's own conflict: counting it as a duplicate would drop the event unapplied.
            log.warning("consumer %s failed on event %s (%s): %s", self._name, event.id, event.type, exc)
            self.stats.failed += 1
            return exc
        except Exception as exc:
            savepoint.rollback()
            log.warning("consumer %s failed on event %s (%s): %s", self._name, event.id, event.type, exc)
            self.stats.failed += 1
            return exc
        self.stats.handled += 1
        self.stats.by_type[event.type] = self.stats.by_type.get(event.type, 0) + 1
        return None

    def _park_invalid(self, conn: Connection, message: Message, reason_code: str, why: str) -> None:
        park(
            conn,
            kind="invalid",
            reason_code=reason_code,
            reason=f"message {message.message_id} on {self._queue} {why}",
            payload=message.body.decode("utf-8", errors="replace"),
            record_key=message.message_id,
        )
        self.stats.invalid += 1

    def _seen(self, conn: Connection, event_id: str) -> bool:
        return conn.execute(_INBOX_SEEN, {"consumer": self._name, "event_id": event_id}).first() is not None


def _brief(error: pydantic.ValidationError) -> str:
    """A one-line list of what is wrong, without pydantic's documentation links."""
    return "; ".join(f"{'.'.join(map(str, item['loc'])) or 'body'}: {item['msg']}" for item in error.errors())
