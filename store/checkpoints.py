"""Source checkpoints (watermarks, file states), written in the same transaction as the events they cover."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.database import utcnow
from store.schema import checkpoints


def load_checkpoint(conn: Connection, source: str) -> dict[str, Any] | None:
    """The last committed checkpoint of a source, or None before its first commit."""
    value = conn.execute(sa.select(checkpoints.c.value).where(checkpoints.c.source == source)).scalar()
    return dict(value) if value is not None else None


def save_checkpoint(conn: Connection, source: str, value: dict[str, Any]) -> None:
    """Replace the checkpoint of a source."""
    updated = conn.execute(
        checkpoints.update().where(checkpoints.c.source == source).values(value=value, updated_at=utcnow())
    )
    if updated.rowcount == 0:
        conn.execute(checkpoints.insert().values(source=source, value=value, updated_at=utcnow()))
