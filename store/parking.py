"""Parked messages: invalid input and dead letters, kept for an operator to inspect, replay or discard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.database import utcnow
from store.schema import parked

ParkedKind = Literal["invalid", "dead"]


@dataclass(frozen=True)
class ParkedMessage:
    """One parked message as an operator sees it."""

    id: int
    kind: str
    reason_code: str
    reason: str
    source_system: str | None
    record_type: str | None
    record_key: str | None
    position: dict[str, Any] | None
    payload: Any
    created_at: datetime
    status: str


def park(
    conn: Connection,
    *,
    kind: ParkedKind,
    reason_code: str,
    reason: str,
    payload: Any,
    source_system: str | None = None,
    record_type: str | None = None,
    record_key: str | None = None,
    position: dict[str, Any] | None = None,
) -> int:
    """Park a message inside the caller's transaction and return its id."""
    result = conn.execute(
        parked.insert().values(
            kind=kind,
            reason_code=reason_code,
            reason=reason,
            source_system=source_system,
            record_type=record_type,
            record_key=record_key,
            position=position,
            payload=payload,
            created_at=utcnow(),
            status="parked",
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def list_parked(
    conn: Connection, kind: ParkedKind | None = None, status: str = "parked"
) -> list[ParkedMessage]:
    """Parked messages in arrival order, optionally of one kind."""
    query = sa.select(parked).where(parked.c.status == status).order_by(parked.c.id)
    if kind is not None:
        query = query.where(parked.c.kind == kind)
    return [ParkedMessage(**row._mapping) for row in conn.execute(query)]


def count_parked(conn: Connection, kind: ParkedKind | None = None) -> int:
    """How many messages are parked and not yet replayed or discarded."""
    query = sa.select(sa.func.count()).select_from(parked).where(parked.c.status == "parked")
    if kind is not None:
        query = query.where(parked.c.kind == kind)
    return int(conn.execute(query).scalar_one())


def parked_by_kind(conn: Connection) -> dict[str, int]:
    """How many messages of each kind are parked and not yet replayed or discarded (kinds with none: 0)."""
    rows = conn.execute(
        sa.select(parked.c.kind, sa.func.count()).where(parked.c.status == "parked").group_by(parked.c.kind)
    ).all()
    return {"dead": 0, "invalid": 0} | {str(kind): int(count) for kind, count in rows}
