"""Per-subject sequence numbers, so consumers can ignore an update older than one already applied."""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from store.schema import subject_sequences

_table = subject_sequences
# Built once: the generic path runs per subject, and building a statement costs more than running it.
_BUMP = (
    _table.update()
    .where(_table.c.subject_key == sa.bindparam("key"))
    .values(last_sequence=_table.c.last_sequence + sa.bindparam("count"))
)
_START = _table.insert()
_READ = sa.select(_table.c.last_sequence).where(_table.c.subject_key == sa.bindparam("key"))


def _upsert_statement(insert: postgresql.Insert | sqlite.Insert) -> sa.Insert:
    return insert.on_conflict_do_update(
        index_elements=[_table.c.subject_key],
        set_={"last_sequence": _table.c.last_sequence + insert.excluded.last_sequence},
    ).returning(_table.c.subject_key, _table.c.last_sequence)


# Built once and sent with a list of parameter sets: SQLAlchemy batches them into multi-row upserts. The
# statement is compiled at each execution all the same (SQLAlchemy 2.0 keeps no cache key for a dialect's
# ON CONFLICT insert).
_UPSERTS = {
    "postgresql": _upsert_statement(postgresql.insert(_table)),
    "sqlite": _upsert_statement(sqlite.insert(_table)),
}


def next_sequence(conn: Connection, subject_key: str) -> int:
    """Allocate the next sequence number of one subject inside the caller's transaction."""
    return allocate_sequences(conn, {subject_key: 1})[subject_key]


def allocate_sequences(conn: Connection, counts: Mapping[str, int]) -> dict[str, int]:
    """Reserve counts[key] consecutive numbers per subject; return each subject's last number.

    The numbers of a subject are last - count + 1 .. last. Subjects are taken in sorted order, so two
    transactions allocating overlapping subjects lock them in the same order and cannot deadlock.
    PostgreSQL and SQLite do it in one upsert per thousand subjects; other databases per subject.
    """
    keys = sorted(counts)
    upsert = _UPSERTS.get(conn.dialect.name)
    if upsert is not None:
        rows = conn.execute(upsert, [{"subject_key": key, "last_sequence": counts[key]} for key in keys])
        return {row.subject_key: int(row.last_sequence) for row in rows}
    return {key: _bump_one(conn, key, counts[key]) for key in keys}


def _bump_one(conn: Connection, key: str, count: int) -> int:
    if conn.execute(_BUMP, {"key": key, "count": count}).rowcount == 0:
        conn.execute(_START, {"subject_key": key, "last_sequence": count})
        return count
    return int(conn.execute(_READ, {"key": key}).scalar_one())
