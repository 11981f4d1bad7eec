"""Per-subject sequence numbers, so consumers can ignore an update older than one already applied."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.schema import subject_sequences


def next_sequence(conn: Connection, subject_key: str) -> int:
    """Allocate the next sequence number of a subject inside the caller's transaction."""
    table = subject_sequences
    updated = conn.execute(
        table.update()
        .where(table.c.subject_key == subject_key)
        .values(last_sequence=table.c.last_sequence + 1)
    )
    if updated.rowcount == 0:
        conn.execute(table.insert().values(subject_key=subject_key, last_sequence=1))
        return 1
    value = conn.execute(
        sa.select(table.c.last_sequence).where(table.c.subject_key == subject_key)
    ).scalar_one()
    return int(value)
