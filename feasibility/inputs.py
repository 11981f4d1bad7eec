"""Reading the engine's inputs from the hub database: equipment documents, recent peaks with the power
factor measured at them, reservations."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime, timedelta
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
from store.loads import PeakPoint, load_profiles, power_factors_at

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
        area_class=document.get("supply_area_class"),
        route_length_m=document.get("route_length_m"),
        district_id=document.get("transformer_district_id") if kind == TRANSFORMER else None,
        bus_section=document.get("bus_section"),
        spare_bays=document.get("spare_bays"),
    )


def bbox_around(site: GeoPoint, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat) of a square holding the circle of the radius around the site."""
    dlat = radius_m / METRES_PER_DEGREE_LAT
    dlon = dlat / max(math.cos(math.radians(min(89.9, abs(site.lat) + dlat))), 1e-6)
    return site.lon - dlon, site.lat - dlat, site.lon + dlon, site.lat + dlat


def basis_dates(rules: Rules, today: date) -> tuple[date, date, tuple[date, date]]:
    """(oldest day of the stale check, oldest day of the window, last year's season around today).

    The load basis is the highest good day of the last rules.window_days. Where an equipment's history is
    shorter than that window, the same season of last year (rules.same_season_days either side of today a
    year ago) counts too, so a short record does not miss the season's peak.
    """
    fresh = today - timedelta(days=rules.max_age_days)
    window = today - timedelta(days=rules.window_days)
    year_ago = today - timedelta(days=365)
    half = timedelta(days=rules.same_season_days)
    return fresh, window, (year_ago - half, year_ago + half)


def read_loads(
    conn: Connection, equipment_ids: Collection[str], rules: Rules, today: date
) -> dict[str, LoadReading]:
    """The load basis of each piece of equipment, or why there is none.

    Without a profile dated within rules.max_age_days before today, or with none of those days complete
    (rules.min_good_points good points), the data is stale or incomplete: no basis. Otherwise the basis is
    the highest good point of the complete days in the window, and of last year's season where the window's
    history is shorter than the window (basis_dates).

    The power factor is the one measured at the basis's peak point (power_factors_at), where a factor
    curve of that day has a good value there; otherwise None, and the engine uses the configured factor.
    At most three queries, however many pieces of equipment are asked for.
    """
    if not equipment_ids:
        return {}
    table = load_profiles
    fresh, window, season = basis_dates(rules, today)
    columns = (table.c.equipment_id, table.c.data_date, table.c.source, table.c.peak_kw, table.c.peak_point)
    rows = conn.execute(
        sa.select(*columns, table.c.good_points).where(
            table.c.equipment_id.in_(sorted(equipment_ids)),
            table.c.phase == TOTAL_PHASE,
            table.c.data_date >= min(window, season[0]),
        )
    ).all()
    by_equipment: dict[str, list[Any]] = {}
    for row in rows:
        by_equipment.setdefault(row.equipment_id, []).append(row)
    latest = {key: max(row.data_date for row in found) for key, found in by_equipment.items()}
    unseen = [key for key in equipment_ids if key not in latest]
    if unseen:
        # Nothing in the basis window: only the date of an older profile is wanted, for the message.
        latest.update(_latest_dates(conn, unseen))
    based = {
        equipment_id: _reading(
            by_equipment.get(equipment_id, []), latest.get(equipment_id), (fresh, window, season), rules
        )
        for equipment_id in equipment_ids
    }
    peaks = [
        PeakPoint(equipment_id, peak.data_date, peak.source, peak.peak_point)
        for equipment_id, (_, peak) in based.items()
        if peak is not None and peak.peak_point is not None
    ]
    factors = power_factors_at(conn, peaks, phase=TOTAL_PHASE)
    return {
        equipment_id: dataclasses.replace(reading, power_factor=factors.get(equipment_id))
        for equipment_id, (reading, _) in based.items()
    }


def _latest_dates(conn: Connection, equipment_ids: Collection[str]) -> dict[str, date]:
    table = load_profiles
    query = (
        sa.select(table.c.equipment_id, sa.func.max(table.c.data_date))
        .where(table.c.equipment_id.in_(sorted(equipment_ids)), table.c.phase == TOTAL_PHASE)
        .group_by(table.c.equipment_id)
    )
    return {row[0]: row[1] for row in conn.execute(query)}


def _reading(
    rows: list[Any], latest: date | None, dates: tuple[date, date, tuple[date, date]], rules: Rules
) -> tuple[LoadReading, Any | None]:
    """The reading, and the profile row of its peak (None when there is no basis)."""
    fresh, window, (season_from, season_to) = dates
    if latest is None:
        return LoadReading(None, None, "no load profile"), None
    if latest < fresh:
        stale = f"stale: latest profile is of {latest.isoformat()}, before {fresh}"
        return LoadReading(None, latest, stale), None
    usable = [row for row in rows if row.peak_kw is not None and row.good_points >= rules.min_good_points]
    if not any(row.data_date >= fresh for row in usable):
        best = max((row.good_points for row in rows if row.data_date >= fresh), default=0)
        incomplete = (
            f"incomplete: at most {best} good points of 96 since {fresh} (need {rules.min_good_points})"
        )
        return LoadReading(None, latest, incomplete), None
    recent = [row for row in usable if row.data_date >= window]
    first = min(row.data_date for row in rows if row.data_date >= window)
    basis = f"highest of {len(recent)} good day(s) in the last {rules.window_days} days"
    if first > window + timedelta(days=rules.max_age_days):
        # The record is shorter than the window: last year's season stands in for the missing part.
        seasonal = [row for row in usable if season_from <= row.data_date <= season_to and row not in recent]
        recent += seasonal
        basis += (
            f" (history from {first.isoformat()} only) and {len(seasonal)} of last year's season "
            f"{season_from.isoformat()}..{season_to.isoformat()}"
        )
    peak = max(recent, key=lambda row: row.peak_kw)
    basis += f", peak on {peak.data_date}{_interval(peak.peak_point)}"
    return LoadReading(float(peak.peak_kw), peak.data_date, basis=basis), peak


def _interval(point: int | None) -> str:
    """' at 20:00-20:15' for point 80 (P81); '' for a profile stored without its peak point."""
    if point is None:
        return ""
    start, end = point * 15, (point + 1) * 15
    return f" at {start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def read_reserved(
    conn: Connection, equipment_ids: Iterable[str], *, exclude: str | None, now: datetime
) -> dict[str, float]:
    """kVA promised to other open applications on each connection point, feeder and substation; a
    reservation past its expiry no longer counts."""
    table = capacity_reservations
    ids = sorted(set(equipment_ids))
    if not ids:
        return {}
    query = sa.select(table.c.equipment_id, table.c.feeder_id, table.c.substation_id, table.c.kva).where(
        sa.or_(table.c.equipment_id.in_(ids), table.c.feeder_id.in_(ids), table.c.substation_id.in_(ids)),
        sa.or_(table.c.expires_at.is_(None), table.c.expires_at > now),
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
