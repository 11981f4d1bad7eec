"""Reading the engine's inputs from the hub database: equipment documents, recent peaks, reservations."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical_model.common import GeoPoint
from feasibility.config import Rules
from feasibility.engine import (
    FEEDER,
    MAIN_TRANSFORMER,
    SUBSTATION,
    TRANSFORMER,
    Equipment,
    LoadReading,
)
from feasibility.spatial import METRES_PER_DEGREE_LAT
from store.feasibility import capacity_reservations
from store.loads import load_profiles

KINDS = (TRANSFORMER, FEEDER, SUBSTATION, MAIN_TRANSFORMER)
TOTAL_PHASE = "total"
ID_FIELDS = {
    TRANSFORMER: "transformer_id",
    MAIN_TRANSFORMER: "transformer_id",
    FEEDER: "feeder_id",
    SUBSTATION: "substation_id",
}


def equipment_of(kind: str, document: Mapping[str, Any]) -> Equipment:
    """The engine's view of a canonical grid document (DistributionTransformer, Feeder, ...)."""
    location = document.get("location") or {}
    return Equipment(
        kind=kind,
        equipment_id=str(document[ID_FIELDS[kind]]),
        name=document.get("name"),
        status=document.get("status"),
        lon=location.get("lon"),
        lat=location.get("lat"),
        substation_id=document.get("substation_id") if kind != SUBSTATION else None,
        feeder_id=document.get("feeder_id") if kind == TRANSFORMER else None,
        rated_kva=document.get("rated_capacity_kva"),
        voltage_kv=document.get("voltage_kv"),
        allowed_current_a=document.get("allowed_current_a"),
        tie_switches=document.get("tie_switch_count"),
        public=document.get("ownership") != "dedicated",
    )


def bbox_around(site: GeoPoint, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat) of a square holding the circle of the radius around the site."""
    dlat = radius_m / METRES_PER_DEGREE_LAT
    dlon = dlat / max(math.cos(math.radians(min(89.9, abs(site.lat) + dlat))), 1e-6)
    return site.lon - dlon, site.lat - dlat, site.lon + dlon, site.lat + dlat


def read_loads(
    conn: Connection, equipment_ids: Collection[str], rules: Rules, today: date
) -> dict[str, LoadReading]:
    """The recent peak of each piece of equipment, or why there is none.

    Recent means a profile dated within rules.max_age_days before today; only profiles with at least
    rules.min_good_points good points count, and their peak is over good points only.
    """
    if not equipment_ids:
        return {}
    table = load_profiles
    oldest = today - timedelta(days=rules.max_age_days)
    rows = conn.execute(
        sa.select(table.c.equipment_id, table.c.data_date, table.c.peak_kw, table.c.good_points).where(
            table.c.equipment_id.in_(sorted(equipment_ids)), table.c.phase == TOTAL_PHASE
        )
    ).all()
    by_equipment: dict[str, list[Any]] = {}
    for row in rows:
        by_equipment.setdefault(row.equipment_id, []).append(row)
    readings: dict[str, LoadReading] = {}
    for equipment_id in equipment_ids:
        readings[equipment_id] = _reading(by_equipment.get(equipment_id, []), oldest, rules)
    return readings


def _reading(rows: Iterable[Any], oldest: date, rules: Rules) -> LoadReading:
    rows = list(rows)
    if not rows:
        return LoadReading(None, None, "no load profile")
    recent = [row for row in rows if row.data_date >= oldest]
    latest = max(row.data_date for row in rows)
    if not recent:
        return LoadReading(None, latest, f"stale: latest profile is of {latest.isoformat()}, before {oldest}")
    usable = [row for row in recent if row.peak_kw is not None and row.good_points >= rules.min_good_points]
    if not usable:
        best = max(row.good_points for row in recent)
        return LoadReading(
            None,
            latest,
            f"incomplete: at most {best} good points of 96 since {oldest} (need {rules.min_good_points})",
        )
    peak = max(usable, key=lambda row: row.peak_kw)
    return LoadReading(float(peak.peak_kw), peak.data_date)


def read_reserved(conn: Connection, equipment_ids: Iterable[str], *, exclude: str | None) -> dict[str, float]:
    """kVA promised to other open applications on each connection point, feeder and substation."""
    table = capacity_reservations
    ids = sorted(set(equipment_ids))
    if not ids:
        return {}
    query = sa.select(table.c.equipment_id, table.c.feeder_id, table.c.substation_id, table.c.kva).where(
        sa.or_(table.c.equipment_id.in_(ids), table.c.feeder_id.in_(ids), table.c.substation_id.in_(ids))
    )
    if exclude is not None:
        query = query.where(table.c.application_no != exclude)
    wanted = set(ids)
    totals = dict.fromkeys(ids, 0.0)
    for row in conn.execute(query):
        # A reservation counts once on every piece of equipment it loads: its point, feeder and substation.
        for key in {row.equipment_id, row.feeder_id, row.substation_id}:
            if key in wanted:
                totals[key] += float(row.kva)
    return totals
