"""Source checkpoints (watermarks, file states), written in the same transaction as the events they cover.

A polled source's checkpoint is its poller's duty state: written with the poller's lease token (fence), after
checking that token in the same transaction, so a poller that lost its lease cannot move it back.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.database import utcnow
from store.leases import Fence, check_fence
from store.schema import checkpoints


def load_checkpoint(conn: Connection, source: str) -> dict[str, Any] | None:
    """The last committed checkpoint of a source, or None before its first commit."""
    value = conn.execute(sa.select(checkpoints.c.value).where(checkpoints.c.source == source)).scalar()
    return dict(value) if value is not None else None


def save_checkpoint(
    conn: Connection, source: str, value: dict[str, Any], *, fence: Fence | None = None
) -> None:
    """Replace a source's checkpoint; with fence, only while its token is current (else FencedOutError)."""
    if fence is not None:
        check_fence(conn, fence)
    token = fence.token if fence is not None else None
    updated = conn.execute(
        checkpoints.update()
        .where(checkpoints.c.source == source)
        .values(value=value, updated_at=utcnow(), fence=token)
    )
    if updated.rowcount == 0:
        conn.execute(
            checkpoints.insert().values(source=source, value=value, updated_at=utcnow(), fence=token)
        )
