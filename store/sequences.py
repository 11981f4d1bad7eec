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
# Rows per upsert statement: well inside every driver's parameter limit.
_CHUNK = 1000


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
    if conn.dialect.name in ("postgresql", "sqlite"):
        last: dict[str, int] = {}
        for start in range(0, len(keys), _CHUNK):
            last.update(_upsert(conn, {key: counts[key] for key in keys[start : start + _CHUNK]}))
        return last
    return {key: _bump_one(conn, key, counts[key]) for key in keys}


def _upsert(conn: Connection, counts: Mapping[str, int]) -> dict[str, int]:
    insert = postgresql.insert(_table) if conn.dialect.name == "postgresql" else sqlite.insert(_table)
    statement = (
        insert.values([{"subject_key": key, "last_sequence": count} for key, count in counts.items()])
        .on_conflict_do_update(
            index_elements=[_table.c.subject_key],
            set_={"last_sequence": _table.c.last_sequence + insert.excluded.last_sequence},
        )
        .returning(_table.c.subject_key, _table.c.last_sequence)
    )
    return {row.subject_key: int(row.last_sequence) for row in conn.execute(statement)}


def _bump_one(conn: Connection, key: str, count: int) -> int:
    if conn.execute(_BUMP, {"key": key, "count": count}).rowcount == 0:
        conn.execute(_START, {"subject_key": key, "last_sequence": count})
        return count
    return int(conn.execute(_READ, {"key": key}).scalar_one())
