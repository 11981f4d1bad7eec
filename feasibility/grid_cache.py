"""The whole grid in memory for feasibility checks, refreshed from the rows written since it was read.

Reading the equipment around a site from the database costs tens of milliseconds per check in a city
(a thousand transformer points for a 10 kV search); the engine itself needs about one. The cache holds
every live piece of equipment the engine uses and, on each check, asks the database for the grid
revision: unchanged, the check runs on memory; changed, only the rows written since are read. The answer
is therefore never older than the grid the check's own transaction can see.
"""

from __future__ import annotations

import threading

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feasibility.engine import Equipment, GridArea
from feasibility.inputs import KINDS, equipment_of
from store.grid import grid_equipment, grid_state


class GridCache:
    """A GridArea of every live piece of equipment, kept at the database's grid revision."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: tuple[str, int] | None = None
        self._items: dict[tuple[str, str], Equipment] = {}
        self._area = GridArea(())

    def area(self, conn: Connection) -> GridArea:
        """The grid as of the revision conn sees now."""
        state = grid_state(conn)
        if state is None:
            # Nothing was ever written through the projection: read what is there without caching it.
            return GridArea(item for item in self._read(conn, since=None).values() if item is not None)
        with self._lock:
            if state == self._state:
                return self._area
            known = self._state
            if known is None or known[0] != state[0] or known[1] > state[1]:
                self._items = {
                    key: item for key, item in self._read(conn, since=None).items() if item is not None
                }
            else:
                for key, item in self._read(conn, since=known[1]).items():
                    if item is None:
                        self._items.pop(key, None)
                    else:
                        self._items[key] = item
            self._area = GridArea(self._items.values())
            self._state = state
            return self._area

    @staticmethod
    def _read(conn: Connection, *, since: int | None) -> dict[tuple[str, str], Equipment | None]:
        """Live equipment (since None), or every row written after revision since, None for deleted rows."""
        table = grid_equipment
        query = sa.select(table.c.kind, table.c.equipment_id, table.c.document, table.c.deleted_at).where(
            table.c.kind.in_(KINDS)
        )
        if since is None:
            query = query.where(table.c.deleted_at.is_(None))
        else:
            query = query.where(table.c.revision > since)
        found: dict[tuple[str, str], Equipment | None] = {}
        for row in conn.execute(query):
            key = (row.kind, row.equipment_id)
            found[key] = None if row.deleted_at is not None else equipment_of(row.kind, row.document)
        return found
