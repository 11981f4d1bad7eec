"""The operator action log: who replayed or discarded which parked message, when, and with what outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.encrypted import SealedText
from store.schema import KEY, UtcDateTime, metadata

# No foreign key to parked: the log must outlive any clean-up of the rows it speaks of.
operator_actions = sa.Table(
    "operator_actions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("operator", KEY, nullable=False, comment="who acted: API X-Operator header or CLI --operator"),
    sa.Column("action", sa.String(16), nullable=False, comment="replay | discard"),
    sa.Column("parked_id", sa.BigInteger, nullable=False),
    # Sealed: a re-parked record's reason may quote the personal value it rejected.
    sa.Column("detail", SealedText("operator_actions.detail"), nullable=False, comment="what the action did"),
    sa.Index("ix_operator_actions_parked", "parked_id", "id"),
)


@dataclass(frozen=True)
class OperatorAction:
    """One recorded operator action."""

    id: int
    at: datetime
    operator: str
    action: str
    parked_id: int
    detail: str


def record_action(
    conn: Connection, *, at: datetime, operator: str, action: str, parked_id: int, detail: str
) -> int:
    """Record an action in the caller's transaction (the one that changed the parked row); return its id."""
    result = conn.execute(
        operator_actions.insert().values(
            at=at, operator=operator, action=action, parked_id=parked_id, detail=detail
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def list_actions(conn: Connection, parked_id: int | None = None) -> list[OperatorAction]:
    """Recorded actions in the order they happened, optionally those on one parked message."""
    query = sa.select(operator_actions).order_by(operator_actions.c.id)
    if parked_id is not None:
        query = query.where(operator_actions.c.parked_id == parked_id)
    return [OperatorAction(**row._mapping) for row in conn.execute(query)]
