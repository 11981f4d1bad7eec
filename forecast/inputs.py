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
    table = load_profiles
    query = (
        sa.select(table.c.data_date, sa.func.max(table.c.peak_kw))
        .where(
            table.c.equipment_id == equipment_id,
            table.c.phase == TOTAL_PHASE,
            table.c.good_points >= min_good_points,
            table.c.peak_kw.is_not(None),
        )
        .group_by(table.c.data_date)
        .order_by(table.c.data_date)
    )
    return [(row[0], float(row[1])) for row in conn.execute(query)]


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
    held = capacity_reservations
    query = (
        sa.select(
            held.c.application_no,
            held.c.kva,
            feasibility_assessments.c.application,
            feasibility_assessments.c.province,
            cases.c.end_to_end_deadline,
        )
        .join(feasibility_assessments, feasibility_assessments.c.application_no == held.c.application_no)
        .outerjoin(cases, cases.c.application_no == held.c.application_no)
        .where(
            sa.or_(
                held.c.equipment_id == equipment_id,
                held.c.feeder_id == equipment_id,
                held.c.substation_id == equipment_id,
            ),
            held.c.energised_at.is_(None),
            sa.or_(held.c.expires_at.is_(None), held.c.expires_at > now),
        )
        .order_by(held.c.application_no, held.c.equipment_id)
    )
    return [
        PipelineRow(row[0], float(row[1]), dict(row[2]), str(row[3]), row[4]) for row in conn.execute(query)
    ]
