"""The operator service over parked messages: list, show, replay and discard, for the admin API and the CLI.

Replaying a dead letter publishes the original message again through the default exchange to the
queue of the consumer that gave up on it, so no other consumer sees it twice; if the consumer had
applied it after all, its inbox makes the replay a no-op. Replaying an invalid record runs it through
ingest again (after the data or the mapping was fixed); if it is still invalid it is parked anew with
its new reason. Either way the parked row is marked in the same transaction as the action is recorded,
and a row that is no longer parked cannot be acted on twice. The same transaction chains the action into
the audit log (store.audit), so an action and its audit entry commit together or not at all.

What an operator is shown (browse, inspect, and the result of an action) has its personal data masked
(pipeline.masking). Only a named PiiReader sees it unmasked, and each message whose personal data it was
shown is chained into the audit log as a pii.read entry: who, through which view, which message, which
fields.

Errors (all YekuoError): OperationError for a request that cannot be carried out (no operator given),
with UnknownParkedError (no such message of that kind), NotParkedError (already replayed or
discarded) and NotReplayableError (nothing to replay it into); BusError when the republish failed, in
which case the row stays parked.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bus.factory import open_bus as open_bus_url
from bus.port import Bus, Message
from ground.errors import BusError, ConfigError, YekuoError
from ground.settings import Settings
from pipeline.config import load_hub_config
from pipeline.ingest import Ingestor
from pipeline.masking import LegacyPii, mask_parked
from pipeline.records import RawRecord
from pipeline.sealing import SealedFieldError, open_event_body
from store.audit import append_entry
from store.crypto import keyring_of
from store.database import utcnow
from store.operations import OperatorAction, list_actions, record_action
from store.parking import ParkedKind, ParkedMessage
from store.schema import parked

log = logging.getLogger(__name__)

ParkedStatus = Literal["parked", "replayed", "discarded"]
Action = Literal["replay", "discard"]
BusOpener = Callable[[], Bus]

KINDS: tuple[str, ...] = get_args(ParkedKind)
STATUSES: tuple[str, ...] = get_args(ParkedStatus)
MAX_PAGE = 500
MAX_OPERATOR_CHARS = 191  # the operator column's length (store.schema.KEY)
# Retry bookkeeping of the failed attempts: a replay starts the message's retries afresh.
BOOKKEEPING_HEADER_PREFIXES = (
    "x-yekuo-attempt",
    "x-death",
    "x-first-death",
    "x-last-death",
    "x-delivery-count",
)
REPLAYED_BY_HEADER = "x-yekuo-replayed-by"
PII_READ_ACTION = "pii.read"  # the audit action of an unmasked read, as for customers (store.audit)


class OperationError(YekuoError):
    """An operator request that cannot be carried out as asked."""


class UnknownParkedError(OperationError):
    """No parked message has this id (of the kind asked for)."""


class NotParkedError(OperationError):
    """The message was already replayed or discarded; acting on it again is refused."""


class NotReplayableError(OperationError):
    """The parked message holds nothing a replay could send again; discard it instead."""


@dataclass(frozen=True)
class ParkedPage:
    """One page of parked messages, oldest first; next_after is the cursor of the next page (None: last)."""

    items: list[ParkedMessage]
    total: int
    next_after: int | None


@dataclass(frozen=True)
class PiiReader:
    """Who is shown personal data unmasked (the audit actor) and through which view, e.g. an API route."""

    actor: str
    view: str


@dataclass(frozen=True)
class ParkedDetail:
    """One parked message and the actions taken on it, as shown; hidden names what was masked."""

    message: ParkedMessage
    actions: list[OperatorAction]
    hidden: tuple[str, ...]


@dataclass(frozen=True)
class ActionResult:
    """What an operator action did: the row afterwards, and for a re-parked record the new row's id."""

    action: Action
    operator: str
    message: ParkedMessage
    detail: str
    reparked_id: int | None = None
    events: int = 0


def origin(message: ParkedMessage) -> str:
    """Where a parked message came from, in one short phrase: the consumer queue or the legacy record."""
    if message.kind == "dead" and isinstance(message.payload, Mapping):
        return str(message.payload.get("queue", "?"))
    if message.source_system is None:
        return "bus message"
    return f"{message.source_system}/{message.record_type} {message.record_key}"


class Operations:
    """List, inspect, replay and discard parked messages; every action is recorded with its operator.

    open_bus opens a bus connection for a replay (default: the configured bus URL); ingestor routes a
    replayed invalid record (default: built on first use from the configured mappings and routes);
    personal_data names the legacy fields holding personal data (default: derived on first use from the
    configured mappings).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        open_bus: BusOpener | None = None,
        ingestor: Ingestor | None = None,
        settings: Settings | None = None,
        personal_data: LegacyPii | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings or Settings()
        self.open_bus: BusOpener = open_bus or functools.partial(
            open_bus_url, self._settings.bus_url, self._settings.bus_namespace
        )
        self._ingestor = ingestor
        self._ingestor_lock = threading.Lock()
        self._personal_data = personal_data
        self._personal_data_lock = threading.Lock()

    def list_messages(
        self,
        *,
        kind: ParkedKind | None = None,
        status: ParkedStatus | None = "parked",
        after: int | None = None,
        limit: int = 50,
    ) -> ParkedPage:
        """Parked messages oldest first, filtered by kind and status (None: any), after the cursor id."""
        _check_choice("kind", kind, KINDS)
        _check_choice("status", status, STATUSES)
        if not 1 <= limit <= MAX_PAGE:
            raise OperationError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
        conditions = []
        if kind is not None:
            conditions.append(parked.c.kind == kind)
        if status is not None:
            conditions.append(parked.c.status == status)
        query = sa.select(parked).where(*conditions).order_by(parked.c.id)
        if after is not None:
            query = query.where(parked.c.id > after)
        with self._engine.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(parked).where(*conditions)
            ).scalar_one()
            rows = conn.execute(query.limit(limit + 1)).all()
        items = [ParkedMessage(**row._mapping) for row in rows[:limit]]
        next_after = items[-1].id if len(rows) > limit else None
        return ParkedPage(items=items, total=int(total), next_after=next_after)

    def show(self, parked_id: int, *, kind: ParkedKind | None = None) -> ParkedMessage:
        """One parked message as stored, personal data included; what an operator sees comes from inspect."""
        with self._engine.connect() as conn:
            return _fetch(conn, parked_id, kind)

    def browse(
        self,
        *,
        kind: ParkedKind | None = None,
        status: ParkedStatus | None = "parked",
        after: int | None = None,
        limit: int = 50,
        reader: PiiReader | None = None,
    ) -> ParkedPage:
        """A page of list_messages as an operator sees it: reasons masked, unless a reader is named.

        A reader's read is audited for every message of the page whose reason quoted personal data.
        """
        found = self.list_messages(kind=kind, status=status, after=after, limit=limit)
        views = [mask_parked(message, self.personal_data) for message in found.items]
        if reader is None:
            return replace(found, items=[view.message for view in views])
        revealed = [view.message.id for view in views if "reason" in view.hidden]
        if revealed:
            with self._engine.begin() as conn:
                for parked_id in revealed:
                    _audit_read(conn, reader, parked_id, ["reason"])
        return found

    def inspect(
        self, parked_id: int, *, kind: ParkedKind | None = None, reader: PiiReader | None = None
    ) -> ParkedDetail:
        """One parked message with its payload and its actions as an operator sees it: personal data
        masked, unless a reader is named; that read is audited in the same transaction when it showed any.
        """
        with self._engine.begin() as conn:
            message = _fetch(conn, parked_id, kind)
            actions = list_actions(conn, parked_id)
            masked = mask_parked(message, self.personal_data)
            masked_actions = [replace(action, detail=masked.mask_text(action.detail)) for action in actions]
            hidden = masked.hidden + (("actions",) if masked_actions != actions else ())
            if reader is None:
                return ParkedDetail(masked.message, masked_actions, hidden)
            if hidden:
                _audit_read(conn, reader, parked_id, hidden)
        return ParkedDetail(self._opened(message), actions, ())

    def _opened(self, message: ParkedMessage) -> ParkedMessage:
        """A dead letter with the personal fields its event carries sealed (pipeline/sealing.py) opened."""
        payload = message.payload
        if (
            message.kind != "dead"
            or not isinstance(payload, dict)
            or not isinstance(payload.get("body"), str)
        ):
            return message
        try:
            body = open_event_body(payload["body"], functools.partial(keyring_of, self._engine.dialect))
        except SealedFieldError as exc:
            # Shown sealed: the reader learns why, and the message stays as it is for a replay.
            log.warning("parked message %s: %s", message.id, exc)
            return message
        return replace(message, payload={**payload, "body": body})

    def replay(self, parked_id: int, *, operator: str, kind: ParkedKind | None = None) -> ActionResult:
        """Send a parked message through the hub again and mark it replayed.

        A dead letter goes back to its consumer's queue only; an invalid record goes through ingest.
        Nothing changes if the republish fails (BusError) or the message cannot be replayed.
        """
        who = _check_operator(operator)
        reparked_id: int | None = None
        events = 0
        with _refusals_logged(who, "replay", parked_id), self._engine.begin() as conn:
            message = _claim(conn, parked_id, kind, "replayed")
            if message.kind == "dead":
                detail = self._republish(message, who)
            else:
                record = _raw_record(message)
                outcome = self.ingestor.ingest([record], conn=conn)
                events = outcome.events
                if outcome.parked_ids:
                    reparked_id = outcome.parked_ids[0]
                    reason = conn.execute(
                        sa.select(parked.c.reason).where(parked.c.id == reparked_id)
                    ).scalar_one()
                    detail = f"still invalid, parked again as #{reparked_id}: {reason}"
                else:
                    detail = f"ingested again: {events} event(s) staged in the outbox"
            record_action(
                conn, at=utcnow(), operator=who, action="replay", parked_id=parked_id, detail=detail
            )
            _audit(conn, who, "replay", message, reparked_id=reparked_id, events=events)
            message = _fetch(conn, parked_id, None)
        # Not the detail: a re-parked record's reason may quote a personal value.
        result = f"parked again as #{reparked_id}" if reparked_id is not None else f"{events} event(s)"
        log.info(
            "operator %s replayed parked #%d (%s, %s): %s",
            who,
            parked_id,
            message.kind,
            origin(message),
            "republished" if message.kind == "dead" else result,
        )
        return self._masked(
            ActionResult("replay", who, message, detail, reparked_id=reparked_id, events=events)
        )

    def discard(self, parked_id: int, *, operator: str, kind: ParkedKind | None = None) -> ActionResult:
        """Mark a parked message discarded: an operator decided it must not be processed."""
        who = _check_operator(operator)
        with _refusals_logged(who, "discard", parked_id), self._engine.begin() as conn:
            message = _claim(conn, parked_id, kind, "discarded")
            detail = f"discarded {message.kind} message from {origin(message)} ({message.reason_code})"
            record_action(
                conn, at=utcnow(), operator=who, action="discard", parked_id=parked_id, detail=detail
            )
            _audit(conn, who, "discard", message)
            message = _fetch(conn, parked_id, None)
        log.info("operator %s discarded parked #%d: %s", who, parked_id, detail)
        return self._masked(ActionResult("discard", who, message, detail))

    @property
    def ingestor(self) -> Ingestor:
        """The ingest pipeline replayed records go through."""
        with self._ingestor_lock:
            if self._ingestor is None:
                config = load_hub_config(self._settings.config_dir)
                self._ingestor = Ingestor(self._engine, config.router)
            return self._ingestor

    @property
    def personal_data(self) -> LegacyPii:
        """Which legacy fields hold personal data, derived from the configured mappings."""
        with self._personal_data_lock:
            if self._personal_data is None:
                try:
                    mappings = load_hub_config(self._settings.config_dir).mappings.values()
                    self._personal_data = LegacyPii.from_mappings(mappings)
                except ConfigError as exc:
                    log.warning(
                        "the mappings cannot be read, so every value of a parked legacy record is shown "
                        "masked: %s",
                        exc,
                    )
                    self._personal_data = LegacyPii.unknown()
            return self._personal_data

    def _masked(self, result: ActionResult) -> ActionResult:
        """What an action did, as shown: its detail may quote the record's reason, and with it PII."""
        masked = mask_parked(result.message, self.personal_data)
        return replace(result, message=masked.message, detail=masked.mask_text(result.detail))

    def _republish(self, message: ParkedMessage, operator: str) -> str:
        original = _original_message(message, operator)
        bus = self.open_bus()
        try:
            bus.publish("", [original])
        finally:
            bus.close()
        return f"republished message {original.message_id} to queue {original.routing_key}"


@contextlib.contextmanager
def _refusals_logged(operator: str, action: Action, parked_id: int) -> Iterator[None]:
    """Log who tried an action that was refused or failed; the action log keeps only what took effect."""
    try:
        yield
    except (OperationError, BusError) as exc:
        log.warning("operator %s could not %s parked #%d: %s", operator, action, parked_id, exc)
        raise


def _audit(
    conn: Connection,
    operator: str,
    action: Action,
    message: ParkedMessage,
    *,
    reparked_id: int | None = None,
    events: int = 0,
) -> None:
    """Chain the action into the audit log with the action itself; no reason text, which may quote PII."""
    detail: dict[str, Any] = {
        "kind": message.kind,
        "origin": origin(message),
        "reason_code": message.reason_code,
    }
    if action == "replay":
        detail.update(reparked_id=reparked_id, events=events)
    subject = f"parked/{message.id}"
    append_entry(conn, actor=operator, action=f"parked.{action}", subject=subject, detail=detail)


def _audit_read(conn: Connection, reader: PiiReader, parked_id: int, fields: Sequence[str]) -> None:
    """Chain an unmasked read: who, through which view, which message, which fields it showed."""
    append_entry(
        conn,
        actor=_check_operator(reader.actor),
        action=PII_READ_ACTION,
        subject=f"parked/{parked_id}",
        detail={"view": reader.view, "fields": sorted(fields)},
    )


def _check_operator(operator: str) -> str:
    who = operator.strip() if isinstance(operator, str) else ""
    if not who:
        raise OperationError("an operator name is required for every action (who is acting?)")
    if len(who) > MAX_OPERATOR_CHARS:
        raise OperationError(
            f"operator name is {len(who)} characters long; at most {MAX_OPERATOR_CHARS} are allowed"
        )
    return who


def _check_choice(name: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise OperationError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _fetch(conn: Connection, parked_id: int, kind: ParkedKind | None) -> ParkedMessage:
    row = conn.execute(sa.select(parked).where(parked.c.id == parked_id)).first()
    if row is None or (kind is not None and row.kind != kind):
        what = {"dead": "dead letter", "invalid": "invalid message"}.get(kind or "", "parked message")
        raise UnknownParkedError(f"no {what} with id {parked_id}")
    return ParkedMessage(**row._mapping)


def _claim(conn: Connection, parked_id: int, kind: ParkedKind | None, status: ParkedStatus) -> ParkedMessage:
    """Move a parked row to its new status inside the transaction, refusing a row no longer parked.

    The conditional update is the claim: of two operators acting at once, the second updates nothing.
    """
    message = _fetch(conn, parked_id, kind)
    if message.status != "parked":
        raise NotParkedError(f"parked message {parked_id} is already {message.status}; nothing to do")
    changed = conn.execute(
        parked.update().where(parked.c.id == parked_id, parked.c.status == "parked").values(status=status)
    ).rowcount
    if changed != 1:
        raise NotParkedError(f"parked message {parked_id} was just replayed or discarded by someone else")
    return message


def _raw_record(message: ParkedMessage) -> RawRecord:
    if message.source_system is None or message.record_type is None or message.record_key is None:
        raise NotReplayableError(
            f"parked message {message.id} ({message.reason_code}) is a bus message that was not a readable "
            "event, not a legacy record: there is nothing to ingest again; fix the producer and discard it"
        )
    if not isinstance(message.payload, Mapping):
        raise NotReplayableError(
            f"parked message {message.id}: payload is {type(message.payload).__name__}, "
            "not the legacy record's fields; it cannot be ingested again"
        )
    position = message.position if isinstance(message.position, Mapping) else {}
    return RawRecord(
        system=message.source_system,
        record_type=message.record_type,
        key=message.record_key,
        payload=dict(message.payload),
        position=dict(position),
    )


def _original_message(message: ParkedMessage, operator: str) -> Message:
    """The dead letter as it was first published, addressed to its consumer's queue only."""
    payload = message.payload
    if not isinstance(payload, Mapping):
        raise NotReplayableError(f"dead letter {message.id}: payload is not the recorded message")
    missing = [name for name in ("queue", "message_id", "body") if not isinstance(payload.get(name), str)]
    if missing:
        raise NotReplayableError(
            f"dead letter {message.id}: the recorded message lacks {', '.join(missing)}; "
            "it cannot be sent again"
        )
    raw_headers = payload.get("headers") or {}
    if not isinstance(raw_headers, Mapping):
        raise NotReplayableError(f"dead letter {message.id}: headers are {raw_headers!r}, not a table")
    headers: dict[str, Any] = {
        name: value
        for name, value in raw_headers.items()
        if not str(name).startswith(BOOKKEEPING_HEADER_PREFIXES)
    }
    headers[REPLAYED_BY_HEADER] = operator
    return Message(
        body=str(payload["body"]).encode("utf-8"),
        routing_key=str(payload["queue"]),
        message_id=str(payload["message_id"]),
        headers=headers,
        content_type=str(payload.get("content_type") or Message.content_type),
        correlation_id=_text_or_none(payload.get("correlation_id")),
        type=_text_or_none(payload.get("type")),
    )


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)
