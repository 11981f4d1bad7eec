"""Which PMS tables are polled (from the route table) and the SQL that reads them, on any SQL backend.

A route whose source carries `table`, `key` and `changed_at` makes its record type a polled table; nothing
else in the code names a PMS table. The tables are reflected from the database on first use, so a missing
table or column is a ConfigError that names the route's file and line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from adapters.pms.state import Position
from ground.errors import ConfigError
from routes.table import Route, TableSource

_IN_CHUNK = 1000


@dataclass(frozen=True)
class PolledTable:
    """One polled table: its record type, its options from the route, and where they were written."""

    record_type: str
    source: TableSource
    route: str
    file: str

    def error(self, message: str) -> ConfigError:
        """A ConfigError pointing at the route's source options."""
        return ConfigError(f"route {self.route!r}: {message}", file=self.file, line=self.source.line)


def polled_tables(routes: Sequence[Route], system: str) -> tuple[PolledTable, ...]:
    """The polled tables of a system, in route order, one per record type."""
    found: dict[str, PolledTable] = {}
    for route in routes:
        if route.source_system == system and route.table is not None and route.record_type not in found:
            found[route.record_type] = PolledTable(route.record_type, route.table, route.name, route.file)
    return tuple(found.values())


_AS_IS = frozenset({type(None), bool, int, float, str})


def plain(value: Any) -> Any:
    """A column value as plain JSON-ready data: numbers, text (times as 'YYYY-MM-DD HH:MM:SS'), or None."""
    # Checked by exact type first: this runs for every column of every row read.
    if type(value) in _AS_IS:
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


class BoundTable:
    """A polled table reflected from the database, with the queries the adapter runs on it."""

    def __init__(self, spec: PolledTable, conn: Connection) -> None:
        self.spec = spec
        self.main = self._reflect(conn, spec.source.table)
        self.key = self._column(self.main, spec.source.key)
        self.changed_at = self._column(self.main, spec.source.changed_at, times=True)
        join = spec.source.join
        self.joined: sa.Table | None = None
        self.joined_key: sa.Column[Any] | None = None
        self.joined_changed_at: sa.Column[Any] | None = None
        if join is not None:
            self.joined = self._reflect(conn, join.table)
            self.joined_key = self._column(self.joined, join.key)
            self.joined_changed_at = self._column(self.joined, join.changed_at, times=True)
            if join.alias in self.main.c:
                raise spec.error(f"join alias {join.alias!r} is also a column of {spec.source.table}")
        self._columns = [*self.main.c, *(self.joined.c if self.joined is not None else ())]
        self._main_width = len(self.main.c)
        self._key_index = list(self.main.c).index(self.key)
        try:
            self._key_type: type | None = self.key.type.python_type
        except NotImplementedError:
            self._key_type = None

    def _reflect(self, conn: Connection, name: str) -> sa.Table:
        try:
            return sa.Table(name, sa.MetaData(), autoload_with=conn)
        except sa.exc.NoSuchTableError:
            raise self.spec.error(f"the PMS database has no table {name}") from None

    def _column(self, table: sa.Table, name: str, *, times: bool = False) -> sa.Column[Any]:
        if name not in table.c:
            raise self.spec.error(
                f"table {table.name} has no column {name} (columns: {', '.join(table.c.keys())})"
            )
        column: sa.Column[Any] = table.c[name]
        if not times:
            return column
        kind = column.type
        if not isinstance(kind, sa.DateTime):
            raise self.spec.error(
                f"{table.name}.{name} must be a date-time column to poll changes by, not {kind}"
            )
        if kind.timezone:
            # Positions and the overlap window are local wall times, as PMS writes them.
            raise self.spec.error(
                f"{table.name}.{name} holds times with a zone; a changed-at column must hold local times"
            )
        return column

    def key_value(self, text: str) -> Any:
        """A key as the database compares it (keys travel as text; some tables have numeric keys)."""
        if self._key_type is int:
            return int(text)
        return text

    def _select(self, *, joined_first: bool = False) -> sa.Select[Any]:
        query = sa.select(*self._columns)
        if self.joined is None or self.joined_key is None:
            return query.select_from(self.main)
        if joined_first:
            return query.select_from(self.joined.join(self.main, self.key == self.joined_key))
        return query.select_from(self.main.outerjoin(self.joined, self.joined_key == self.key))

    def without_changed_at(self, conn: Connection, after: str | None, limit: int) -> list[Row[Any]]:
        """Rows whose changed-at is NULL, in key order after a key."""
        query = self._select().where(self.changed_at.is_(None))
        if after is not None:
            query = query.where(self.key > self.key_value(after))
        return list(conn.execute(query.order_by(self.key).limit(limit)))

    def changed_since(self, conn: Connection, position: Position, limit: int) -> list[Row[Any]]:
        """Rows after a (changed_at, key) position, in that order."""
        query = self._select().where(self.changed_at.is_not(None))
        query = _after(query, self.changed_at, self.key, position, self.key_value)
        return list(conn.execute(query.order_by(self.changed_at, self.key).limit(limit)))

    def joined_changed_since(self, conn: Connection, position: Position, limit: int) -> list[Row[Any]]:
        """Rows whose joined row changed after a (changed_at, key) position of the joined table."""
        assert self.joined_changed_at is not None and self.joined_key is not None
        query = self._select(joined_first=True).where(self.joined_changed_at.is_not(None))
        query = _after(query, self.joined_changed_at, self.joined_key, position, self.key_value)
        return list(conn.execute(query.order_by(self.joined_changed_at, self.joined_key).limit(limit)))

    def existing(self, conn: Connection, keys: Sequence[str]) -> set[str]:
        """Which of these keys still exist (asked in chunks that every backend accepts)."""
        found: set[str] = set()
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = [self.key_value(key) for key in keys[start : start + _IN_CHUNK]]
            found.update(
                str(value) for value in conn.execute(sa.select(self.key).where(self.key.in_(chunk))).scalars()
            )
        return found

    def key_of(self, row: Row[Any]) -> str:
        """The row's key as text."""
        return str(row[self._key_index])

    def changed_at_of(self, row: Row[Any]) -> dt.datetime | None:
        """The row's changed-at value."""
        value: dt.datetime | None = row._mapping[self.changed_at]
        return value

    def joined_position(self, row: Row[Any]) -> Position:
        """The joined table's (changed_at, key) position of a row read by joined_changed_since()."""
        assert self.joined_changed_at is not None
        return Position(row._mapping[self.joined_changed_at], self.key_of(row))

    def payload(self, row: Row[Any]) -> dict[str, Any]:
        """The row as a legacy payload: main columns by name, the joined row nested under its alias."""
        values = list(row)
        data = {column.name: plain(value) for column, value in zip(self.main.c, values, strict=False)}
        join = self.spec.source.join
        if join is not None and self.joined is not None and self.joined_key is not None:
            joined_values = values[self._main_width :]
            present = row._mapping[self.joined_key] is not None
            data[join.alias] = (
                {
                    column.name: plain(value)
                    for column, value in zip(self.joined.c, joined_values, strict=True)
                }
                if present
                else None
            )
        return data


def _after(
    query: sa.Select[Any], changed_at: sa.Column[Any], key: sa.Column[Any], position: Position, key_value: Any
) -> sa.Select[Any]:
    """Restrict a query to rows after a keyset position.

    Written as `changed_at >= t AND (changed_at > t OR key > k)` rather than a row comparison: every
    backend turns the first term into an index range.
    """
    if position.at is None:
        return query
    if position.key is None:
        return query.where(changed_at >= position.at)
    return query.where(
        changed_at >= position.at, sa.or_(changed_at > position.at, key > key_value(position.key))
    )
