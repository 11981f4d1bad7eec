"""The versions of the PMS rows the hub has published, kept in the hub database (table source_rows).

Only committed versions are here: a poll's versions are written in the transaction that commits its events
and checkpoint (apply and clear take that transaction's connection), after the poller's fence check.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ground.errors import SourceUnavailableError
from store.grid import source_rows

_CHUNK = 500


@contextmanager
def hub_store_errors() -> Iterator[None]:
    """Turn a failure of the hub database into SourceUnavailableError, so the poll backs off and retries."""
    try:
        yield
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
        raise SourceUnavailableError(f"hub database unavailable for the PMS row versions: {exc}") from exc


class RowRegistry:
    """Row versions of one source in the hub database."""

    def __init__(self, engine: Engine, source: str) -> None:
        self._engine = engine
        self._source = source

    def apply(
        self, conn: Connection, pending: Mapping[str, Mapping[str, tuple[str, str | None] | None]]
    ) -> None:
        """Record versions in conn's transaction (a None version removes the row)."""
        table = source_rows
        for record, entries in pending.items():
            keys = list(entries)
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                conn.execute(
                    table.delete().where(
                        table.c.source == self._source,
                        table.c.record_type == record,
                        table.c.row_key.in_(chunk),
                    )
                )
                rows = [
                    {
                        "source": self._source,
                        "record_type": record,
                        "row_key": key,
                        "version": entry[0],
                        "changed_at": entry[1],
                    }
                    for key in chunk
                    if (entry := entries[key]) is not None
                ]
                if rows:
                    conn.execute(table.insert(), rows)

    def versions(self, record: str, keys: Sequence[str]) -> dict[str, str]:
        """The recorded version of each of these keys that has one."""
        table = source_rows
        found: dict[str, str] = {}
        with hub_store_errors(), self._engine.connect() as conn:
            for start in range(0, len(keys), _CHUNK):
                query = sa.select(table.c.row_key, table.c.version).where(
                    table.c.source == self._source,
                    table.c.record_type == record,
                    table.c.row_key.in_(keys[start : start + _CHUNK]),
                )
                found.update({row.row_key: row.version for row in conn.execute(query)})
        return found

    def page(self, record: str, after: str | None, limit: int) -> list[tuple[str, str | None]]:
        """Recorded (key, changed-at text) pairs after a key, in key order."""
        table = source_rows
        query = (
            sa.select(table.c.row_key, table.c.changed_at)
            .where(table.c.source == self._source, table.c.record_type == record)
            .order_by(table.c.row_key)
            .limit(limit)
        )
        if after is not None:
            query = query.where(table.c.row_key > after)
        with hub_store_errors(), self._engine.connect() as conn:
            return [(row.row_key, row.changed_at) for row in conn.execute(query)]

    def clear(self, conn: Connection, records: Sequence[str] | None = None) -> None:
        """Forget, in conn's transaction, the versions of some record types (None: all) of this source."""
        table = source_rows
        query = table.delete().where(table.c.source == self._source)
        if records is not None:
            query = query.where(table.c.record_type.in_(records))
        conn.execute(query)
