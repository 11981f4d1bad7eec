"""Reading the engine's inputs from the hub database: equipment documents, recent peaks with the power
factor measured at them, reservations."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
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
    Three queries however many pieces of equipment are asked for: the database sums up each one's days (a
    year of rows per candidate is too many to carry into Python on every check), then the peak days are
    read, then their factor curves.
    """
    if not equipment_ids:
        return {}
    dates = basis_dates(rules, today)
    summaries = {row.equipment_id: row for row in conn.execute(_summary_query(equipment_ids, dates, rules))}
    based = {
        equipment_id: _reading(summaries.get(equipment_id), dates, rules) for equipment_id in equipment_ids
    }
    peak_rows = _peak_rows(conn, based, dates, rules.min_good_points)
    readings: dict[str, LoadReading] = {}
    for equipment_id, (reading, _) in based.items():
        row = peak_rows.get(equipment_id)
        if row is not None:
            basis = f"{reading.basis}, peak on {row.data_date}{_interval(row.peak_point)}"
            reading = dataclasses.replace(reading, data_date=row.data_date, basis=basis)
        readings[equipment_id] = reading
    peaks = [
        PeakPoint(equipment_id, row.data_date, row.source, row.peak_point)
        for equipment_id, row in peak_rows.items()
        if row.peak_point is not None
    ]
    factors = power_factors_at(conn, peaks, phase=TOTAL_PHASE)
    return {
        equipment_id: dataclasses.replace(reading, power_factor=factors.get(equipment_id))
        for equipment_id, reading in readings.items()
    }


def _summary_query(
    equipment_ids: Collection[str], dates: tuple[date, date, tuple[date, date]], rules: Rules
) -> sa.Select[Any]:
    """Per equipment: its latest day, what its fresh days hold, and the window's and last season's peaks."""
    table = load_profiles
    fresh, window, (season_from, season_to) = dates
    usable = sa.and_(table.c.good_points >= rules.min_good_points, table.c.peak_kw.is_not(None))
    is_fresh = table.c.data_date >= fresh
    in_window = table.c.data_date >= window
    # Last year's season before the window: what stands in for the part of the window a short record lacks.
    in_season = sa.and_(table.c.data_date >= season_from, table.c.data_date <= season_to, ~in_window)
    return (
        sa.select(
            table.c.equipment_id,
            sa.func.max(table.c.data_date).label("latest"),
            sa.func.max(sa.case((is_fresh, table.c.good_points))).label("fresh_good_points"),
            sa.func.count(sa.case((sa.and_(is_fresh, usable), 1))).label("fresh_usable"),
            sa.func.min(sa.case((in_window, table.c.data_date))).label("first"),
            sa.func.count(sa.case((sa.and_(in_window, usable), 1))).label("recent_days"),
            sa.func.max(sa.case((sa.and_(in_window, usable), table.c.peak_kw))).label("recent_peak"),
            sa.func.count(sa.case((sa.and_(in_season, usable), 1))).label("season_days"),
            sa.func.max(sa.case((sa.and_(in_season, usable), table.c.peak_kw))).label("season_peak"),
        )
        .where(table.c.equipment_id.in_(sorted(equipment_ids)), table.c.phase == TOTAL_PHASE)
        .group_by(table.c.equipment_id)
    )


@dataclass(frozen=True)
class _Wanted:
    """The peak a basis took, and the oldest day it may be on."""

    peak_kw: float
    since: date


def _reading(
    summary: Any | None, dates: tuple[date, date, tuple[date, date]], rules: Rules
) -> tuple[LoadReading, _Wanted | None]:
    """The reading, and which profile row holds its peak (None when there is no basis)."""
    fresh, window, (season_from, season_to) = dates
    latest: date | None = summary.latest if summary is not None else None
    if summary is None or latest is None:
        return LoadReading(None, None, "no load profile"), None
    if latest < fresh:
        stale = f"stale: latest profile is of {latest.isoformat()}, before {fresh}"
        return LoadReading(None, latest, stale), None
    if not summary.fresh_usable:
        best = summary.fresh_good_points or 0
        incomplete = (
            f"incomplete: at most {best} good points of 96 since {fresh} (need {rules.min_good_points})"
        )
        return LoadReading(None, latest, incomplete), None
    peak, since = float(summary.recent_peak), window
    basis = f"highest of {summary.recent_days} good day(s) in the last {rules.window_days} days"
    if summary.first > window + timedelta(days=rules.max_age_days):
        # The record is shorter than the window: last year's season stands in for the missing part.
        if summary.season_peak is not None and summary.season_peak > peak:
            peak, since = float(summary.season_peak), season_from
        basis += (
            f" (history from {summary.first.isoformat()} only) and {summary.season_days} of last year's "
            f"season {season_from.isoformat()}..{season_to.isoformat()}"
        )
    return LoadReading(peak, latest, basis=basis), _Wanted(peak, since)


def _peak_rows(
    conn: Connection,
    based: Mapping[str, tuple[LoadReading, _Wanted | None]],
    dates: tuple[date, date, tuple[date, date]],
    min_good_points: int,
) -> dict[str, Any]:
    """The profile row of each basis's peak: the earliest good day at that peak since the day it may be on."""
    wanted = {equipment_id: found for equipment_id, (_, found) in based.items() if found is not None}
    if not wanted:
        return {}
    table = load_profiles
    _, window, (season_from, _) = dates
    rows = conn.execute(
        sa.select(
            table.c.equipment_id, table.c.data_date, table.c.source, table.c.peak_kw, table.c.peak_point
        )
        .where(
            table.c.equipment_id.in_(sorted(wanted)),
            table.c.phase == TOTAL_PHASE,
            table.c.data_date >= min(window, season_from),
            table.c.good_points >= min_good_points,
            table.c.peak_kw.in_(sorted({found.peak_kw for found in wanted.values()})),
        )
        .order_by(table.c.data_date)
    ).all()
    found: dict[str, Any] = {}
    for row in rows:
        target = wanted[row.equipment_id]
        if row.peak_kw == target.peak_kw and row.data_date >= target.since:
            found.setdefault(row.equipment_id, row)
    return found


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
