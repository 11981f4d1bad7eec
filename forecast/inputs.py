"""What the equipment forecaster reads from the hub database: daily peaks and the application pipeline.

The pipeline of a piece of equipment is the applications that hold a capacity reservation on it (as
connection point, feeder or substation, as feasibility/inputs.read_reserved counts them) and are not yet
energised, with their reservation not lapsed. Applications not yet assessed hold no reservation and are
not in it: until the feasibility check has placed them, nothing says which equipment they will load.

Expected energisation: the case's end-to-end deadline (cases.end_to_end_deadline, the last working day
of the utility's commitment). It is the only date a case holds for energisation, and utilities are
held to it; None when the case is paused (the deadline is then unknown) or not tracked.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feasibility.inputs import TOTAL_PHASE
from store.feasibility import capacity_reservations, feasibility_assessments
from store.loads import load_profiles
from store.schema import cases


def daily_peaks(conn: Connection, equipment_id: str, *, min_good_points: int) -> list[tuple[date, float]]:
    """(day, peak kW) of every day with a complete total-phase profile, oldest first; where two measuring
    systems sent the day, the higher peak."""
    return daily_peaks_of(conn, [equipment_id], min_good_points=min_good_points).get(equipment_id, [])


def daily_peaks_of(
    conn: Connection, equipment_ids: Collection[str], *, min_good_points: int
) -> dict[str, list[tuple[date, float]]]:
    """daily_peaks of several pieces of equipment in one query, by equipment id (absent: no complete day)."""
    table = load_profiles
    query = (
        sa.select(table.c.equipment_id, table.c.data_date, sa.func.max(table.c.peak_kw))
        .where(
            table.c.equipment_id.in_(list(equipment_ids)),
            table.c.phase == TOTAL_PHASE,
            table.c.good_points >= min_good_points,
            table.c.peak_kw.is_not(None),
        )
        .group_by(table.c.equipment_id, table.c.data_date)
        .order_by(table.c.equipment_id, table.c.data_date)
    )
    found: dict[str, list[tuple[date, float]]] = {}
    for equipment_id, day, peak in conn.execute(query):
        found.setdefault(equipment_id, []).append((day, float(peak)))
    return found


@dataclass(frozen=True)
class PipelineRow:
    """One reservation of a not yet energised application on the equipment, with what the forecaster needs."""

    application_no: str
    reserved_kva: float
    application: dict[str, Any]
    province: str
    expected_energisation: date | None


def pipeline_rows(conn: Connection, equipment_id: str, *, now: datetime) -> list[PipelineRow]:
    """The pipeline's reservations on the equipment, in application order."""
    return pipeline_rows_of(conn, [equipment_id], now=now).get(equipment_id, [])


def pipeline_rows_of(
    conn: Connection, equipment_ids: Collection[str], *, now: datetime
) -> dict[str, list[PipelineRow]]:
    """pipeline_rows of several pieces of equipment in one query, by equipment id: a reservation on a
    transformer of a feeder is in the pipeline of both when both are asked for."""
    held = capacity_reservations
    wanted = list(equipment_ids)
    query = (
        sa.select(
            held.c.application_no,
            held.c.kva,
            feasibility_assessments.c.application,
            feasibility_assessments.c.province,
            cases.c.end_to_end_deadline,
            held.c.equipment_id,
            held.c.feeder_id,
            held.c.substation_id,
        )
        .join(feasibility_assessments, feasibility_assessments.c.application_no == held.c.application_no)
        .outerjoin(cases, cases.c.application_no == held.c.application_no)
        .where(
            sa.or_(
                held.c.equipment_id.in_(wanted),
                held.c.feeder_id.in_(wanted),
                held.c.substation_id.in_(wanted),
            ),
            held.c.energised_at.is_(None),
            sa.or_(held.c.expires_at.is_(None), held.c.expires_at > now),
        )
        .order_by(held.c.application_no, held.c.equipment_id)
    )
    asked = set(wanted)
    found: dict[str, list[PipelineRow]] = {}
    for row in conn.execute(query):
        item = PipelineRow(row[0], float(row[1]), dict(row[2]), str(row[3]), row[4])
        for equipment_id in {row[5], row[6], row[7]} & asked:
            found.setdefault(equipment_id, []).append(item)
    return found
