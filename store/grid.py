"""Hub tables of the grid: the equipment projection the API reads, and the row versions a table poller sent.

grid_equipment holds the latest canonical document of every piece of grid equipment, one row per kind and
PMS id, with the fields the API filters on copied into columns. A deletion marks the row (deleted_at)
instead of removing it, so an older change that arrives after it cannot bring the equipment back.

source_rows is owned by table-polling adapters: the version (a hash of the row as read) of every source
row they have published, so an overlapping re-read publishes nothing twice and a key-set comparison finds
rows deleted at the source.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from store.schema import KEY, UtcDateTime, metadata
from store.transaction_work import current_work

# Side of a square cell of the coarse spatial key, in degrees (about 1.1 km north-south). A search reads
# the cells its box covers through an index instead of scanning a whole longitude band.
CELL_DEGREES = 0.01
_LON_CELLS = 100_000
# Beyond this many cells a search is wider than the key helps with; it filters on the box alone.
_MAX_CELLS = 2_000


def cell_of(lon: float | None, lat: float | None) -> int | None:
    """The spatial cell of a point, or None for equipment without a location."""
    if lon is None or lat is None:
        return None
    return math.floor(lat / CELL_DEGREES) * _LON_CELLS + math.floor(lon / CELL_DEGREES) + _LON_CELLS // 2


def cells_covering(min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> list[int] | None:
    """Every cell a box touches, or None when there are too many to be worth listing."""
    lat_cells = range(math.floor(min_lat / CELL_DEGREES), math.floor(max_lat / CELL_DEGREES) + 1)
    lon_cells = range(math.floor(min_lon / CELL_DEGREES), math.floor(max_lon / CELL_DEGREES) + 1)
    if len(lat_cells) * len(lon_cells) > _MAX_CELLS:
        return None
    return [y * _LON_CELLS + x + _LON_CELLS // 2 for y in lat_cells for x in lon_cells]


def _cell_default(context: Any) -> int | None:
    values = context.get_current_parameters()
    return cell_of(values.get("lon"), values.get("lat"))


grid_equipment = sa.Table(
    "grid_equipment",
    metadata,
    sa.Column("kind", sa.String(32), primary_key=True, comment="substation, feeder, transformer, ..."),
    sa.Column("equipment_id", KEY, primary_key=True, comment="PMS equipment id (the event subject)"),
    sa.Column("name", sa.String(255), nullable=True),
    sa.Column("status", sa.String(32), nullable=True),
    sa.Column("substation_id", KEY, nullable=True),
    sa.Column("feeder_id", KEY, nullable=True),
    sa.Column("lon", sa.Float, nullable=True),
    sa.Column("lat", sa.Float, nullable=True),
    # An insert that leaves it out gets it from lon and lat; an update that moves equipment sets it.
    sa.Column("cell", sa.BigInteger, nullable=True, default=_cell_default, comment="cell_of(lon, lat)"),
    sa.Column("document", sa.JSON, nullable=False, comment="latest canonical document"),
    sa.Column("source_updated_at", UtcDateTime(), nullable=True, comment="the document's updated_at"),
    sa.Column("change_sequence", sa.BigInteger, nullable=True, comment="sequence of the change applied"),
    sa.Column("change_source", sa.String(128), nullable=True, comment="source of that change (/pms/feeder)"),
    sa.Column("deleted_at", UtcDateTime(), nullable=True, comment="when the source deletion was found"),
    sa.Column("deleted_version_at", UtcDateTime(), nullable=True, comment="last_changed_at of the deletion"),
    sa.Column("last_event_id", KEY, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=True, comment="grid_revision.revision of the last write"),
    sa.Index("ix_grid_equipment_feeder", "kind", "feeder_id", "equipment_id"),
    sa.Index("ix_grid_equipment_substation", "kind", "substation_id", "equipment_id"),
    sa.Index("ix_grid_equipment_cell", "kind", "cell"),
    sa.Index("ix_grid_equipment_revision", "revision"),
)

# One row: a counter every write to grid_equipment bumps in its own transaction. The row stays locked
# until that transaction commits, so revisions become visible in order, and a reader that has seen
# revision R can fetch exactly the rows written since the revision it knew.
grid_revision = sa.Table(
    "grid_revision",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("generation", sa.String(36), nullable=False, comment="new when the projection starts afresh"),
)


_REVISION_MEMO = "grid_revision"


def bump_grid_revision(conn: Connection) -> int:
    """The next grid revision, for the caller to stamp on the rows it writes in its transaction.

    Within an open TransactionWork the revision is bumped once: every row the transaction writes carries
    it, and a reader fetching the rows written after an earlier revision gets them all at its commit.
    """
    work = current_work(conn)
    if work is not None:
        if _REVISION_MEMO not in work.memo:
            work.memo[_REVISION_MEMO] = _bump(conn)
        return int(work.memo[_REVISION_MEMO])
    return _bump(conn)


def _bump(conn: Connection) -> int:
    if conn.dialect.name in ("postgresql", "sqlite"):
        insert = (
            postgresql.insert(grid_revision)
            if conn.dialect.name == "postgresql"
            else sqlite.insert(grid_revision)
        )
        statement = (
            insert.values(id=1, revision=1, generation=str(uuid.uuid4()))
            .on_conflict_do_update(
                index_elements=[grid_revision.c.id], set_={"revision": grid_revision.c.revision + 1}
            )
            .returning(grid_revision.c.revision)
        )
        return int(conn.execute(statement).scalar_one())
    bumped = conn.execute(
        grid_revision.update().where(grid_revision.c.id == 1).values(revision=grid_revision.c.revision + 1)
    )
    if bumped.rowcount == 0:
        conn.execute(grid_revision.insert().values(id=1, revision=1, generation=str(uuid.uuid4())))
        return 1
    return int(conn.execute(sa.select(grid_revision.c.revision)).scalar_one())


# Read before every consistency check: built once, so it keeps its cache key.
_GRID_STATE = sa.select(grid_revision.c.generation, grid_revision.c.revision)


def grid_state(conn: Connection) -> tuple[str, int] | None:
    """(generation, revision) of the grid projection, or None before its first write."""
    row = conn.execute(_GRID_STATE).first()
    return None if row is None else (str(row.generation), int(row.revision))


source_rows = sa.Table(
    "source_rows",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True, comment="adapter instance, e.g. pms"),
    sa.Column("record_type", sa.String(64), primary_key=True),
    sa.Column("row_key", KEY, primary_key=True),
    sa.Column("version", sa.String(32), nullable=False, comment="hash of the row as published"),
    sa.Column("changed_at", sa.String(32), nullable=True, comment="its last-changed value, as read"),
)
