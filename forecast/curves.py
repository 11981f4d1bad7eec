"""The stored 96-point curves of some equipment, as the load-share analysis reads them."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feasibility.inputs import TOTAL_PHASE
from forecast.load_share import POINTS, DayCurve
from store.loads import load_profiles


def _loads(document: Mapping[str, Any]) -> list[float | None] | None:
    """The good loads of a stored profile (None where missing or flagged), or None for a malformed one."""
    points = document.get("points")
    if not isinstance(points, list) or len(points) != POINTS:
        return None
    loads: list[float | None] = []
    for point in points:
        load = point.get("load_kw") if isinstance(point, Mapping) else None
        good = isinstance(load, int | float) and not point.get("quality")
        loads.append(float(load) if good and load is not None else None)
    return loads


def day_curves(conn: Connection, equipment_ids: Collection[str]) -> Iterator[DayCurve]:
    """Each equipment's total-phase day curves; where two measuring systems sent a day, the one with more
    good points."""
    table = load_profiles
    query = (
        sa.select(table.c.equipment_id, table.c.data_date, table.c.good_points, table.c.document)
        .where(table.c.equipment_id.in_(list(equipment_ids)), table.c.phase == TOTAL_PHASE)
        .order_by(table.c.equipment_id, table.c.data_date, table.c.good_points.desc())
    )
    last: tuple[str, date] | None = None
    for equipment_id, day, _, document in conn.execute(query):
        if (equipment_id, day) == last:
            continue
        loads = _loads(document) if isinstance(document, Mapping) else None
        if loads is not None:
            last = (equipment_id, day)
            yield DayCurve(equipment_id, day, loads)
