"""Per-subject sequence numbers, so consumers can ignore an update older than one already applied."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.schema import subject_sequences

# Built once: this runs for every staged event, and building a statement costs more than running it.
_table = subject_sequences
_BUMP = (
    _table.update()
    .where(_table.c.subject_key == sa.bindparam("key"))
    .values(last_sequence=_table.c.last_sequence + 1)
)
_START = _table.insert()
_READ = sa.select(_table.c.last_sequence).where(_table.c.subject_key == sa.bindparam("key"))


def next_sequence(conn: Connection, subject_key: str) -> int:
    """Allocate the next sequence number of a subject inside the caller's transaction."""
    updated = conn.execute(_BUMP, {"key": subject_key})
    if updated.rowcount == 0:
        conn.execute(_START, {"subject_key": subject_key, "last_sequence": 1})
        return 1
    return int(conn.execute(_READ, {"key": subject_key}).scalar_one())
