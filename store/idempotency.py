"""Idempotency keys of write requests: the first request's fingerprint and response, per caller and key.

A key is claimed (`pending`) before its request runs and completed with the response once it succeeded; a
failed request releases its claim so the caller can retry with the same key. A claim left pending by a
process that died is taken over after `stale_after`; completed keys expire after their retention.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection

from store.schema import KEY, UtcDateTime, metadata

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("principal", KEY, primary_key=True, comment="who sent the request (token sub or key name)"),
    sa.Column("idempotency_key", KEY, primary_key=True),
    sa.Column("state", sa.String(16), nullable=False, comment="pending | complete"),
    sa.Column("fingerprint", sa.String(64), nullable=True, comment="SHA-256 of method, path, query, body"),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("headers", sa.JSON, nullable=True, comment="response headers worth replaying"),
    sa.Column("body", sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql"), nullable=True),
    sa.Column("claimed_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
)


@dataclass(frozen=True)
class StoredResponse:
    """The response a completed key replays, and the fingerprint of the request that got it."""

    fingerprint: str
    status_code: int
    headers: dict[str, str]
    body: bytes


ClaimOutcome = Literal["claimed", "in_progress"]


def claim(
    conn: Connection, principal: str, key: str, *, now: datetime, stale_after: timedelta, retention: timedelta
) -> ClaimOutcome | StoredResponse:
    """Claim a key for a new request, or say why not: another request holds it, or here is its response.

    Runs in the caller's transaction; two concurrent claims of one key cannot both succeed (primary key).
    """
    row = _row(conn, principal, key)
    if row is not None:
        taken_over = (row.state == "pending" and row.claimed_at <= now - stale_after) or row.expires_at <= now
        if not taken_over:
            if row.state == "pending":
                return "in_progress"
            return StoredResponse(
                fingerprint=row.fingerprint,
                status_code=row.status_code,
                headers=dict(row.headers or {}),
                body=row.body or b"",
            )
        conn.execute(idempotency_keys.delete().where(_is(principal, key)))
    conn.execute(
        idempotency_keys.insert().values(
            principal=principal,
            idempotency_key=key,
            state="pending",
            claimed_at=now,
            expires_at=now + retention,
        )
    )
    return "claimed"


def complete(conn: Connection, principal: str, key: str, response: StoredResponse) -> None:
    """Keep the response of a claimed key's request."""
    conn.execute(
        idempotency_keys.update()
        .where(_is(principal, key))
        .values(
            state="complete",
            fingerprint=response.fingerprint,
            status_code=response.status_code,
            headers=response.headers,
            body=response.body,
        )
    )


def release(conn: Connection, principal: str, key: str) -> None:
    """Give a pending claim up (its request failed), so the key can be used again."""
    conn.execute(
        idempotency_keys.delete().where(_is(principal, key)).where(idempotency_keys.c.state == "pending")
    )


def purge_expired(conn: Connection, now: datetime) -> int:
    """Delete expired keys; returns how many."""
    return conn.execute(idempotency_keys.delete().where(idempotency_keys.c.expires_at <= now)).rowcount


def _row(conn: Connection, principal: str, key: str) -> sa.Row[Any] | None:
    return conn.execute(idempotency_keys.select().where(_is(principal, key))).first()


def _is(principal: str, key: str) -> sa.ColumnElement[bool]:
    return sa.and_(idempotency_keys.c.principal == principal, idempotency_keys.c.idempotency_key == key)
