"""Transactional outbox: events are written with the state change that caused them, then relayed to the bus.

The writer adds an event inside the caller's database transaction, so an adapter's checkpoint and the
events it covers commit together or not at all. The relay publishes committed events with publisher
confirms and marks them sent only after the broker confirmed them: a crash in between re-publishes,
which consumers absorb through their inbox (at-least-once on the bus, exactly-once effect).

The body is encoded for the bus when the event is staged, with its personal fields sealed under the
keyring of the connection's engine (pipeline/sealing.py): what the relay publishes carries no personal data
in clear. The events stage_events returns keep their data open, for the caller's own use.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pydantic
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bus.codec import cloudevent_wire
from bus.port import Bus, Confirmation, Message
from canonical_model.envelope import CloudEvent
from ground.errors import BusError, ConfigError, FencedOutError, UnroutableError
from ground.identity import DEFAULT_INSTANCE_URI, check_instance_uri
from ground.metrics import OUTBOX_PUBLISH_FAILURES, OUTBOX_PUBLISHED
from pipeline.records import EventDraft
from pipeline.sealing import seal_event_data
from store.crypto import keyring_of
from store.database import utcnow
from store.leases import Fence, check_fence
from store.schema import outbox
from store.sequences import allocate_sequences
from store.transaction_work import current_work

log = logging.getLogger(__name__)


def stage_event(conn: Connection, draft: EventDraft, *, correlation_id: str) -> CloudEvent:
    """Wrap a draft in its envelope and add it to the outbox inside the caller's transaction."""
    return stage_events(conn, [(draft, correlation_id)])[0]


_DEFERRED = "deferred_events"


def defer_event(conn: Connection, draft: EventDraft, *, correlation_id: str) -> None:
    """Stage a draft when the transaction's work is finished, with the others deferred in it.

    Events that need not be interleaved with the caller's other writes (notices that something was stored)
    are staged together in one round trip per batch. Outside an open TransactionWork: staged at once.
    """
    work = current_work(conn)
    if work is None:
        stage_event(conn, draft, correlation_id=correlation_id)
        return
    deferred: list[tuple[EventDraft, str]] | None = work.memo.get(_DEFERRED)
    if deferred is None:
        deferred = work.memo[_DEFERRED] = []
        pending = deferred

        def stage_deferred(end_conn: Connection) -> None:
            stage_events(end_conn, pending)

        work.before_end(stage_deferred)
    deferred.append((draft, correlation_id))


def stage_events(conn: Connection, drafts: Sequence[tuple[EventDraft, str]]) -> list[CloudEvent]:
    """Envelope (draft, correlation id) pairs in order and add them to the outbox in the caller's transaction.

    Sequences follow the order of drafts within each subject. The whole batch costs one sequence upsert
    and one multi-row insert, instead of two or three round trips per event.
    """
    if not drafts:
        return []
    keys = [f"{draft.source}|{draft.subject}" for draft, _ in drafts]
    counts = Counter(keys)
    last = allocate_sequences(conn, counts)
    following = {key: last[key] - count + 1 for key, count in counts.items()}
    now = utcnow()
    keyring = functools.partial(keyring_of, conn.dialect)
    events: list[CloudEvent] = []
    rows: list[dict[str, Any]] = []
    for (draft, correlation_id), key in zip(drafts, keys, strict=True):
        sequence = following[key]
        following[key] = sequence + 1
        event = CloudEvent(
            id=str(uuid.uuid4()),
            source=draft.source,
            type=draft.event_type,
            subject=draft.subject,
            time=draft.time or now,
            dataschema=draft.dataschema,
            correlationid=correlation_id,
            sequence=sequence,
            data=draft.data,
        )
        events.append(event)
        on_the_wire = event.model_copy(
            update={"data": seal_event_data(event.data, event.dataschema, keyring)}
        )
        rows.append(
            {
                "event_id": event.id,
                "event_type": event.type,
                "subject": event.subject,
                "exchange": draft.exchange,
                "routing_key": draft.routing_key,
                "correlation_id": correlation_id,
                "body": on_the_wire.model_dump_json().encode("utf-8"),
                "created_at": now,
                "attempts": 0,
            }
        )
    # A list of parameter sets: SQLAlchemy sends it as multi-row INSERTs, not one statement per row.
    conn.execute(outbox.insert(), rows)
    return events


def pending_count(conn: Connection) -> int:
    """Events committed to the outbox and not yet confirmed by the broker."""
    query = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
    return int(conn.execute(query).scalar_one())


def pending_backlog(conn: Connection) -> tuple[int, datetime | None]:
    """How many events wait for the broker's confirmation, and when the oldest of them was committed."""
    count, oldest = conn.execute(
        sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(outbox.c.sent_at.is_(None))
    ).one()
    return int(count), oldest


# A publish fails with a BusError, or with a ConfigError for a missing exchange (the operator's to fix):
# either is recorded on the group's rows and raised, and the events wait to be published again.
_PublishError = BusError | ConfigError
_PUBLISH_ERRORS = (BusError, ConfigError)

# Batches one relay pass publishes at most: the next is read and sent while the broker confirms the last.
PIPELINED_BATCHES = 8


class OutboxRelay:
    """Publishes committed outbox events in id order and marks them sent once confirmed."""

    def __init__(
        self, engine: Engine, bus: Bus, *, batch_size: int = 500, instance_uri: str = DEFAULT_INSTANCE_URI
    ) -> None:
        self._engine = engine
        self.bus = bus
        self._instance_uri = check_instance_uri(instance_uri)
        self._batch_size = batch_size
        self.published = 0

    def relay_batches(
        self,
        fence: Fence | None = None,
        still_held: Callable[[], bool] | None = None,
        *,
        batches: int = PIPELINED_BATCHES,
    ) -> int:
        """Publish up to `batches` batches, each sent before the last is settled; return the events confirmed.

        While the broker confirms one batch, the relay reads, builds and sends the next; a batch is marked
        sent once its own confirms are in, in id order. On an error the groups before the failed one are
        marked, the failed one is recorded and its error raised, so the caller can back off; the ones sent
        after it stay unsent, to be published again (consumers absorb the copies through their inbox).
        With fence (the relay's lease), the marks are written only while its token is current
        (FencedOutError otherwise, the marks roll back), and still_held (this instance's own view of the
        lease, by its clock) is asked before each group is sent, so a relay whose lease ran out sends no
        further group. Reading takes no lock: an idle relay polls every few milliseconds, and only the
        marks must be fenced.
        """
        confirmed = 0
        after = 0
        # Groups sent and not yet settled, in id order.
        pending: list[tuple[list[Any], Confirmation]] = []
        try:
            for _ in range(batches):
                rows = self._unsent(after)
                if not rows:
                    break
                after = rows[-1].id
                earlier = len(pending)
                for exchange, group in _group_by_exchange(rows):
                    if fence is not None and still_held is not None and not still_held():
                        confirmed += self._settle(pending, fence)
                        raise FencedOutError(fence.duty, fence.token, None, None)
                    messages = [self._message(row) for row in group]
                    try:
                        confirmation = self.bus.send(exchange, messages)
                    except _PUBLISH_ERRORS as exc:
                        self._record_failure(group, exc, fence)
                        confirmed += self._settle(pending, fence, failure=exc)
                        raise
                    pending.append((group, confirmation))
                # The earlier batch is settled while the broker confirms this one.
                confirmed += self._settle(pending[:earlier], fence)
                del pending[:earlier]
                if len(rows) < self._batch_size:
                    break
            confirmed += self._settle(pending, fence)
            pending.clear()
        finally:
            self.published += confirmed
            _drain(pending)
        return confirmed

    def _unsent(self, after: int) -> list[Any]:
        """The next batch of unsent events past id `after`, in id order."""
        with self._engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(
                        outbox.c.id,
                        outbox.c.event_id,
                        outbox.c.event_type,
                        outbox.c.exchange,
                        outbox.c.routing_key,
                        outbox.c.correlation_id,
                        outbox.c.body,
                    )
                    .where(outbox.c.sent_at.is_(None), outbox.c.id > after)
                    .order_by(outbox.c.id)
                    .limit(self._batch_size)
                ).all()
            )

    def _settle(
        self,
        sent: Sequence[tuple[list[Any], Confirmation]],
        fence: Fence | None,
        failure: _PublishError | None = None,
    ) -> int:
        """Wait for the groups' confirms and mark the confirmed ones sent; return how many were marked.

        The first group that fails is recorded and its error raised; the groups after it stay unsent. While
        a bus error (this one's, or the failure given) is on its way to the caller, a fence that refuses
        the marks is logged instead of raised: the caller must see the bus error to close the connection.
        """
        confirmed: list[Any] = []
        try:
            for group, confirmation in sent:
                try:
                    confirmation.wait()
                except _PUBLISH_ERRORS as exc:
                    self._record_failure(group, exc, fence)
                    failure = exc
                    raise
                confirmed += group
        finally:
            marked = self._mark_confirmed(confirmed, fence, failure)
        return marked

    def _mark_confirmed(self, rows: Sequence[Any], fence: Fence | None, failure: _PublishError | None) -> int:
        if not rows:
            return 0
        try:
            self._mark_sent([row.id for row in rows], fence)
        except FencedOutError as refused:
            if failure is None:
                raise
            log.warning(
                "%d confirmed outbox event(s) left unmarked, to be published again: %s", len(rows), refused
            )
            return 0
        OUTBOX_PUBLISHED.inc(len(rows))
        return len(rows)

    def _message(self, row: Any) -> Message:
        """The wire form of a staged event: its source absolute, its attributes also as properties.

        A body that is not an envelope (only the outbox writer adds rows, so it would be damaged) is sent
        as it is, without properties: the consumers park it as invalid, and the events behind it go on.
        """
        headers: dict[str, str] = {}
        try:
            event = CloudEvent.model_validate_json(row.body).published_by(self._instance_uri)
        except pydantic.ValidationError as exc:
            log.error("outbox event %s is not a CloudEvent, relayed as it is: %s", row.event_id, exc)
            body = bytes(row.body)
        else:
            body, headers = cloudevent_wire(event)
        return Message(
            body=body,
            routing_key=row.routing_key,
            message_id=row.event_id,
            headers=headers,
            correlation_id=row.correlation_id,
            type=row.event_type,
        )

    def _mark_sent(self, ids: Sequence[int], fence: Fence | None) -> None:
        with self._engine.begin() as conn:
            if fence is not None:
                check_fence(conn, fence)
            conn.execute(
                outbox.update().where(outbox.c.id.in_(ids)).values(sent_at=utcnow(), fence=_token(fence))
            )

    def _record_failure(self, rows: Sequence[Any], exc: _PublishError, fence: Fence | None) -> None:
        unroutable = set(exc.message_ids) if isinstance(exc, UnroutableError) else set()
        failed = len(rows)
        token = _token(fence)
        try:
            with self._engine.begin() as conn:
                if fence is not None:
                    check_fence(conn, fence)
                for row in rows:
                    if unroutable and row.event_id not in unroutable:
                        # The broker confirmed these; only the unroutable ones must stay behind.
                        conn.execute(
                            outbox.update().where(outbox.c.id == row.id).values(sent_at=utcnow(), fence=token)
                        )
                        failed -= 1
                        continue
                    conn.execute(
                        outbox.update()
                        .where(outbox.c.id == row.id)
                        .values(attempts=outbox.c.attempts + 1, last_error=str(exc)[:2000], fence=token)
                    )
        except FencedOutError as refused:
            # The bus error still reaches the caller, which must close the broken connection; the lost
            # lease shows at the relay's next fenced write or the keeper's next renewal.
            log.warning("outbox publish failure of %d event(s) left unrecorded: %s", len(rows), refused)
            return
        OUTBOX_PUBLISHED.inc(len(rows) - failed)
        OUTBOX_PUBLISH_FAILURES.labels(type(exc).__name__).inc(failed)
        log.error("outbox publish failed for %d event(s): %s", failed, exc)


def _drain(pending: Sequence[tuple[list[Any], Confirmation]]) -> None:
    """Wait for the confirms of groups left unsettled by an error; their rows stay unsent.

    The broker still answers for them: settled here, a late return cannot be taken for one of a later send
    of the same events.
    """
    for _, confirmation in pending:
        with contextlib.suppress(*_PUBLISH_ERRORS):
            confirmation.wait()


def _token(fence: Fence | None) -> int | None:
    return fence.token if fence is not None else None


def _group_by_exchange(rows: Sequence[Any]) -> list[tuple[str, list[Any]]]:
    """Consecutive runs of rows per exchange, keeping id order within the batch."""
    groups: list[tuple[str, list[Any]]] = []
    for row in rows:
        if groups and groups[-1][0] == row.exchange:
            groups[-1][1].append(row)
        else:
            groups.append((row.exchange, [row]))
    return groups
