"""What the workflow built, in a form two runs can compare (cases, timelines and stage visits), and the
tracker the incremental fold is compared with."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from store.schema import cases, stage_visits, timeline
from workflow.cases import CaseTracker
from workflow.events import CaseEvent
from workflow.fold import CaseState


def dump_cases(engine: Engine) -> tuple[list[dict[str, Any]], ...]:
    """Every case, timeline entry and stage visit in key order, without surrogate ids and write times."""
    with engine.connect() as conn:
        case_rows = conn.execute(sa.select(cases).order_by(cases.c.application_no)).mappings().all()
        entries = (
            conn.execute(sa.select(timeline).order_by(timeline.c.application_no, timeline.c.position))
            .mappings()
            .all()
        )
        visits = (
            conn.execute(
                sa.select(stage_visits).order_by(stage_visits.c.application_no, stage_visits.c.ordinal)
            )
            .mappings()
            .all()
        )
    return (
        [{k: v for k, v in row.items() if k != "updated_at"} for row in case_rows],
        [{k: v for k, v in row.items() if k != "id"} for row in entries],
        [{k: v for k, v in row.items() if k != "id"} for row in visits],
    )


class RebuildingTracker(CaseTracker):
    """The reference: every event rebuilds its case from all its events, never from its fold point."""

    def apply(self, conn: Connection, arrived: CaseEvent, *, correlation_id: str) -> CaseState | None:
        return self.rebuild(conn, arrived.application_no, correlation_id=correlation_id, arrived=arrived)
