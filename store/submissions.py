"""Tables of the marketing exchange: the push inbox, online submissions and write-backs, with their queries.

marketing_push      records the marketing system pushed (or the hub fetched after creating them), kept
                    before the push is acknowledged; the marketing poller stages them in `seq` order.
submissions         applications new platforms submitted (POST /v1/applications), until the marketing
                    system has created them and answered their application number.
marketing_writebacks stage changes (and other results) the hub writes back into the marketing system.

Push sequence numbers come from a row lock (store.sequences), so pushes commit in the order of their
numbers and a reader that has seen number n has seen every number below it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ground import clock
from store.encrypted import SealedJson
from store.schema import KEY, UtcDateTime, metadata
from store.sequences import next_sequence

PUSH_SEQUENCE_KEY = "marketing|push"
LEGACY_TIME = sa.String(19)

marketing_push = sa.Table(
    "marketing_push",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False, comment="staging order"),
    sa.Column("app_no", KEY, nullable=False),
    sa.Column("update_time", LEGACY_TIME, nullable=False, comment="UPDATE_TIME of the record version"),
    sa.Column("notification_id", KEY, nullable=True),
    sa.Column("via", sa.String(16), nullable=False, comment="push | create"),
    sa.Column("application", sa.JSON, nullable=False, comment="the application record, legacy layout"),
    sa.Column("customer", SealedJson("marketing_push.customer"), nullable=True, comment="its customer"),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("app_no", "update_time", name="uq_marketing_push_version"),
    sa.Index("ix_marketing_push_app", "app_no", "seq"),
)

submissions = sa.Table(
    "submissions",
    metadata,
    sa.Column("tracking_id", KEY, primary_key=True),
    sa.Column("idempotency_key", KEY, nullable=True, unique=True),
    sa.Column("request_hash", sa.String(64), nullable=False, comment="SHA-256 of the validated request"),
    # Sealed whole: a new customer's identity document, bank account and phones travel in both.
    sa.Column("request", SealedJson("submissions.request"), nullable=False, comment="as submitted"),
    sa.Column("arguments", SealedJson("submissions.arguments"), nullable=False, comment="legacy names"),
    sa.Column("status", sa.String(16), nullable=False, comment="pending | submitted | failed"),
    sa.Column("application_no", KEY, nullable=True),
    sa.Column("customer_no", KEY, nullable=True),
    sa.Column("reason", sa.Text, nullable=True, comment="why it failed"),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
    sa.Column("lease_until", UtcDateTime(), nullable=True, comment="a writer is working on it until then"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("submitted_at", UtcDateTime(), nullable=True),
    sa.Index("ix_submissions_due", "status", "next_attempt_at"),
    sa.Index("ix_submissions_application", "application_no"),
)

marketing_writebacks = sa.Table(
    "marketing_writebacks",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("event_id", KEY, nullable=False, unique=True, comment="the hub event written back"),
    sa.Column("event_type", KEY, nullable=False),
    sa.Column("operation", sa.String(64), nullable=False, comment="SOAP operation of the marketing system"),
    sa.Column("application_no", KEY, nullable=False),
    sa.Column("arguments", sa.JSON, nullable=False, comment="its arguments, requestId included"),
    sa.Column("status", sa.String(16), nullable=False, comment="pending | done | failed"),
    sa.Column("reason", sa.Text, nullable=True, comment="why it failed"),
    sa.Column("result", sa.JSON, nullable=True, comment="the marketing system's answer"),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
    sa.Column("lease_until", UtcDateTime(), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("done_at", UtcDateTime(), nullable=True),
    sa.Index("ix_marketing_writebacks_due", "status", "id"),
)


def utcnow() -> datetime:
    """The current time, from the hub's clock (store.database imports this module, so it lives here too)."""
    return clock.now()


@dataclass(frozen=True)
class PushReceipt:
    """What storing a pushed record did: its sequence number, or the earlier one of the same version."""

    seq: int
    duplicate: bool


@dataclass(frozen=True)
class PushedRecord:
    """A record in the push inbox."""

    seq: int
    app_no: str
    update_time: str
    via: str
    application: dict[str, Any]
    customer: dict[str, Any] | None


def store_push(
    conn: Connection,
    application: Mapping[str, Any],
    customer: Mapping[str, Any] | None = None,
    *,
    notification_id: str | None = None,
    via: str = "push",
) -> PushReceipt:
    """Keep a pushed application record (and its customer) inside the caller's transaction.

    A version already kept (same APP_NO and UPDATE_TIME) is not kept twice. The sequence number is taken
    first: its row lock makes concurrent pushers wait, so they commit in sequence order.
    """
    app_no, update_time = str(application["APP_NO"]), str(application["UPDATE_TIME"])
    seq = next_sequence(conn, PUSH_SEQUENCE_KEY)
    earlier = conn.execute(
        sa.select(marketing_push.c.seq).where(
            marketing_push.c.app_no == app_no, marketing_push.c.update_time == update_time
        )
    ).scalar()
    if earlier is not None:
        return PushReceipt(int(earlier), True)
    conn.execute(
        marketing_push.insert().values(
            seq=seq,
            app_no=app_no,
            update_time=update_time,
            notification_id=notification_id,
            via=via,
            application=dict(application),
            customer=dict(customer) if customer is not None else None,
            received_at=utcnow(),
        )
    )
    return PushReceipt(seq, False)


def store_push_once(
    engine: Engine,
    application: Mapping[str, Any],
    customer: Mapping[str, Any] | None = None,
    *,
    notification_id: str | None = None,
    via: str = "push",
) -> PushReceipt:
    """Keep a pushed application record (and its customer) in a transaction of its own, as store_push.

    When the same version arrives twice at once, the request that commits second is answered with the
    first one's sequence number, as a duplicate. Raises sqlalchemy.exc.SQLAlchemyError when it cannot
    be stored.
    """
    try:
        with engine.begin() as conn:
            return store_push(conn, application, customer, notification_id=notification_id, via=via)
    except sa.exc.IntegrityError:
        with engine.connect() as conn:
            seq = conn.execute(
                sa.select(marketing_push.c.seq).where(
                    marketing_push.c.app_no == application["APP_NO"],
                    marketing_push.c.update_time == application["UPDATE_TIME"],
                )
            ).scalar()
        if seq is None:
            raise
        return PushReceipt(int(seq), True)


def pushes_after(conn: Connection, seq: int, limit: int) -> list[PushedRecord]:
    """Kept pushes with a sequence number above seq, in sequence order."""
    rows = conn.execute(
        sa.select(marketing_push)
        .where(marketing_push.c.seq > seq)
        .order_by(marketing_push.c.seq)
        .limit(limit)
    ).all()
    return [
        PushedRecord(
            seq=int(row.seq),
            app_no=row.app_no,
            update_time=row.update_time,
            via=row.via,
            application=dict(row.application),
            customer=dict(row.customer) if row.customer is not None else None,
        )
        for row in rows
    ]


def newest_pushed(conn: Connection, app_nos: Iterable[str], up_to_seq: int) -> dict[str, str]:
    """Per application, the newest UPDATE_TIME among the pushes numbered up to up_to_seq."""
    wanted = sorted(set(app_nos))
    newest: dict[str, str] = {}
    # Bounded IN lists: every backend accepts a few hundred parameters.
    for start in range(0, len(wanted), 500):
        rows = conn.execute(
            sa.select(marketing_push.c.app_no, sa.func.max(marketing_push.c.update_time))
            .where(marketing_push.c.app_no.in_(wanted[start : start + 500]))
            .where(marketing_push.c.seq <= up_to_seq)
            .group_by(marketing_push.c.app_no)
        ).all()
        newest.update({row[0]: row[1] for row in rows})
    return newest


def push_counts(conn: Connection, taken_up_to: int) -> tuple[int, int]:
    """How many pushes were kept in all, and how many wait above taken_up_to."""
    total = conn.execute(sa.select(sa.func.count()).select_from(marketing_push)).scalar_one()
    waiting = conn.execute(
        sa.select(sa.func.count()).select_from(marketing_push).where(marketing_push.c.seq > taken_up_to)
    ).scalar_one()
    return int(total), int(waiting)


@dataclass(frozen=True)
class Submission:
    """An online application and how far its creation in the marketing system got."""

    tracking_id: str
    idempotency_key: str | None
    request_hash: str
    request: dict[str, Any]
    arguments: dict[str, Any]
    status: str
    application_no: str | None
    customer_no: str | None
    reason: str | None
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None


def _submission(row: Any) -> Submission:
    return Submission(
        tracking_id=row.tracking_id,
        idempotency_key=row.idempotency_key,
        request_hash=row.request_hash,
        request=dict(row.request),
        arguments=dict(row.arguments),
        status=row.status,
        application_no=row.application_no,
        customer_no=row.customer_no,
        reason=row.reason,
        attempts=int(row.attempts),
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        submitted_at=row.submitted_at,
    )


def add_submission(
    conn: Connection,
    *,
    tracking_id: str,
    idempotency_key: str | None,
    request_hash: str,
    request: Mapping[str, Any],
    arguments: Mapping[str, Any],
) -> None:
    """Keep a new submission, due at once, inside the caller's transaction."""
    now = utcnow()
    conn.execute(
        submissions.insert().values(
            tracking_id=tracking_id,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            request=dict(request),
            arguments=dict(arguments),
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
    )


def add_submission_once(
    engine: Engine,
    *,
    tracking_id: str,
    idempotency_key: str | None,
    request_hash: str,
    request: Mapping[str, Any],
    arguments: Mapping[str, Any],
) -> Submission | None:
    """Keep a new submission, as add_submission, in a transaction of its own; None once it is kept.

    When a concurrent request with the same Idempotency-Key was kept first, nothing is kept and that
    submission is returned.
    """
    try:
        with engine.begin() as conn:
            add_submission(
                conn,
                tracking_id=tracking_id,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                request=request,
                arguments=arguments,
            )
    except sa.exc.IntegrityError:
        with engine.connect() as conn:
            earlier = submission_by_key(conn, idempotency_key) if idempotency_key is not None else None
        if earlier is None:
            raise
        return earlier
    return None


def get_submission(conn: Connection, tracking_id: str) -> Submission | None:
    """A submission by tracking id."""
    row = conn.execute(sa.select(submissions).where(submissions.c.tracking_id == tracking_id)).first()
    return _submission(row) if row is not None else None


def submission_by_key(conn: Connection, idempotency_key: str) -> Submission | None:
    """The submission an Idempotency-Key made, if any."""
    row = conn.execute(sa.select(submissions).where(submissions.c.idempotency_key == idempotency_key)).first()
    return _submission(row) if row is not None else None


def due_submissions(conn: Connection, now: datetime, limit: int) -> list[Submission]:
    """Pending submissions whose next attempt is due and that no writer holds, oldest first."""
    rows = conn.execute(
        sa.select(submissions)
        .where(submissions.c.status == "pending", submissions.c.next_attempt_at <= now)
        .where(sa.or_(submissions.c.lease_until.is_(None), submissions.c.lease_until < now))
        .order_by(submissions.c.created_at, submissions.c.tracking_id)
        .limit(limit)
    ).all()
    return [_submission(row) for row in rows]


@dataclass(frozen=True)
class Writeback:
    """A write into the marketing system the hub owes it."""

    id: int
    event_id: str
    event_type: str
    operation: str
    application_no: str
    arguments: dict[str, Any]
    status: str
    reason: str | None
    attempts: int
    next_attempt_at: datetime
    lease_until: datetime | None
    last_error: str | None


def add_writeback(
    conn: Connection,
    *,
    event_id: str,
    event_type: str,
    operation: str,
    application_no: str,
    arguments: Mapping[str, Any],
) -> bool:
    """Queue a write-back inside the caller's transaction; False when this event was queued before."""
    exists = conn.execute(
        sa.select(marketing_writebacks.c.id).where(marketing_writebacks.c.event_id == event_id)
    ).first()
    if exists is not None:
        return False
    now = utcnow()
    conn.execute(
        marketing_writebacks.insert().values(
            event_id=event_id,
            event_type=event_type,
            operation=operation,
            application_no=application_no,
            arguments=dict(arguments),
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
    )
    return True


def pending_writebacks(conn: Connection, limit: int) -> list[Writeback]:
    """Pending write-backs in the order they were queued (due or not: order per application matters)."""
    rows = conn.execute(
        sa.select(marketing_writebacks)
        .where(marketing_writebacks.c.status == "pending")
        .order_by(marketing_writebacks.c.id)
        .limit(limit)
    ).all()
    return [
        Writeback(
            id=int(row.id),
            event_id=row.event_id,
            event_type=row.event_type,
            operation=row.operation,
            application_no=row.application_no,
            arguments=dict(row.arguments),
            status=row.status,
            reason=row.reason,
            attempts=int(row.attempts),
            next_attempt_at=row.next_attempt_at,
            lease_until=row.lease_until,
            last_error=row.last_error,
        )
        for row in rows
    ]


def writebacks_of(conn: Connection, application_no: str) -> list[dict[str, Any]]:
    """Every write-back of an application, oldest first, as plain dicts."""
    rows = conn.execute(
        sa.select(marketing_writebacks)
        .where(marketing_writebacks.c.application_no == application_no)
        .order_by(marketing_writebacks.c.id)
    ).all()
    return [dict(row._mapping) for row in rows]


def status_counts(conn: Connection, table: sa.Table) -> dict[str, int]:
    """How many rows of submissions or marketing_writebacks are in each status."""
    rows = conn.execute(sa.select(table.c.status, sa.func.count()).group_by(table.c.status)).all()
    return {str(row[0]): int(row[1]) for row in rows}


def claim(conn: Connection, table: sa.Table, key: sa.Column[Any], value: object, until: datetime) -> bool:
    """Take a pending row for a writer until `until`; False when another writer holds it or it is done."""
    now = utcnow()
    taken = conn.execute(
        table.update()
        .where(key == value, table.c.status == "pending")
        .where(sa.or_(table.c.lease_until.is_(None), table.c.lease_until < now))
        .values(lease_until=until)
    )
    return bool(taken.rowcount == 1)


def settle(conn: Connection, table: sa.Table, key: sa.Column[Any], value: object, **values: Any) -> None:
    """Update a row and release its lease."""
    conn.execute(table.update().where(key == value).values(lease_until=None, updated_at=utcnow(), **values))
