"""Site-survey assignment: balanced by open workload, restricted to region and business type, explained."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical_model.case import SurveyAssignment, WorkloadFigure
from store.schema import cases
from workflow.config import StaffMember
from workflow.fold import CaseState


def open_workload(conn: Connection) -> dict[str, int]:
    """Open survey tasks per staff id: cases whose current survey visit is assigned to that person."""
    rows = conn.execute(
        sa.select(cases.c.assignee, sa.func.count())
        .where(cases.c.assignee.is_not(None))
        .group_by(cases.c.assignee)
    ).all()
    return {str(staff_id): int(count) for staff_id, count in rows}


def choose_assignee(
    state: CaseState, staff: Sequence[StaffMember], workload: Mapping[str, int], now: datetime
) -> SurveyAssignment | None:
    """The survey assignment for the case's current visit, or None when nobody eligible has room.

    Eligible: the person surveys the site's supply unit (region) and handles the business type. Among
    those with room, the lowest share of capacity in use wins; ties go to fewer open tasks, then staff id.
    """
    region = state.application.org_no or ""
    business_type = state.application.business_type
    eligible = [
        member
        for member in staff
        if region in member.regions and business_type.value in member.business_types
    ]
    with_room = [member for member in eligible if workload.get(member.id, 0) < member.capacity]
    if not with_room:
        return None
    chosen = min(
        with_room,
        key=lambda member: (
            workload.get(member.id, 0) / member.capacity,
            workload.get(member.id, 0),
            member.id,
        ),
    )
    load = workload.get(chosen.id, 0)
    others = len(with_room) - 1
    reason = (
        f"{chosen.name} ({chosen.id}) surveys supply unit {region} and handles {business_type.value}; "
        f"lowest workload {load}/{chosen.capacity} open survey tasks"
        + (f" among {len(with_room)} people with room" if others else ", the only one with room")
        + (
            f" ({len(eligible) - len(with_room)} eligible at capacity)"
            if len(eligible) > len(with_room)
            else ""
        )
    )
    return SurveyAssignment(
        application_no=state.application_no,
        visit=state.visit.key,
        stage=state.stage,
        staff_id=chosen.id,
        staff_name=chosen.name,
        unit=chosen.unit,
        assigned_at=now,
        region=region or "unknown",
        business_type=business_type,
        candidates=tuple(
            WorkloadFigure(
                staff_id=member.id, open_tasks=workload.get(member.id, 0), capacity=member.capacity
            )
            for member in eligible
        ),
        reason=reason,
    )
