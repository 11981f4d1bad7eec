"""PMS test databases on SQLite, PostgreSQL and MariaDB, and the source's view of them for comparisons."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.pms.source import create_pms_engine
from simulators.pms.schema import coordinates, drop_pms_schema, transformers
from store.grid import grid_equipment
from tests.conftest import MARIADB_URL, POSTGRES_URL, require_service

BACKENDS = ("sqlite", "postgres", "mariadb")
# What the legacy YXZT codes mean, written out here so the comparison does not reuse the code table.
STATUS = {"10": "planned", "20": "in_service", "30": "decommissioned"}


@dataclass(frozen=True)
class PmsDatabase:
    """A PMS database: `writer` for the simulator, `reader` for the adapter (read-only where possible)."""

    backend: str
    url: str
    writer: Engine
    reader: Engine


def backend_url(backend: str, tmp_path: Path) -> str:
    """The URL of a test database of a backend; fails in CI (skips locally) when its server is down."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'pms.db'}"
    if backend == "postgres":
        require_service("PostgreSQL", 5432)
        return POSTGRES_URL
    if backend == "mariadb":
        require_service("MariaDB", 3306)
        return MARIADB_URL
    raise ValueError(f"unknown backend {backend!r}")


@contextmanager
def pms_database(
    backend: str, tmp_path: Path, *, reader_url: str | None = None, timeout_s: float = 10.0
) -> Iterator[PmsDatabase]:
    """Empty PMS tables on a backend (dropped before and after); reader_url reads through a relay."""
    url = backend_url(backend, tmp_path)
    writer = sa.create_engine(url)
    drop_pms_schema(writer)
    reader = create_pms_engine(reader_url or url, statement_timeout_s=timeout_s)
    try:
        yield PmsDatabase(backend, url, writer, reader)
    finally:
        reader.dispose()
        drop_pms_schema(writer)
        writer.dispose()


def source_transformers(engine: Engine) -> dict[str, dict[str, Any]]:
    """What the hub should know of every distribution transformer, computed from the PMS rows directly."""
    t, g = transformers, coordinates
    query = sa.select(t, g.c.JD, g.c.WD).select_from(t.outerjoin(g, g.c.SBID == t.c.OBJ_ID))
    expected = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            expected[row.OBJ_ID] = {
                "name": row.SBMC,
                "model": row.XH,
                "feeder_id": row.SSDKX,
                "substation_id": row.SSDZ,
                "rated_capacity_kva": float(row.EDRL),
                "status": STATUS[row.YXZT],
                "transformer_district_id": row.YXTQBH,
                "location": None if row.JD is None else (float(row.JD), float(row.WD)),
                "updated_at": None if row.GXSJ is None else row.GXSJ.strftime("%Y-%m-%dT%H:%M:%S+08:00"),
            }
    return expected


def projected_transformers(engine: Engine) -> dict[str, dict[str, Any]]:
    """The same view of the live distribution transformers in the hub's grid projection."""
    table = grid_equipment
    query = sa.select(table.c.equipment_id, table.c.document).where(
        table.c.kind == "transformer", table.c.deleted_at.is_(None)
    )
    found = {}
    with engine.connect() as conn:
        for equipment_id, document in conn.execute(query).tuples():
            location = document.get("location")
            found[equipment_id] = {
                "name": document["name"],
                "model": document.get("model"),
                "feeder_id": document.get("feeder_id"),
                "substation_id": document.get("substation_id"),
                "rated_capacity_kva": document["rated_capacity_kva"],
                "status": document["status"],
                "transformer_district_id": document.get("transformer_district_id"),
                "location": None if location is None else (location["lon"], location["lat"]),
                "updated_at": document.get("updated_at"),
            }
    return found
