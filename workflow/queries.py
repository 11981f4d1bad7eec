"""Read side of the workflow state, for the API and the demo summary."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.schema import cases, customers, timeline


def get_case(conn: Connection, application_no: str) -> dict[str, Any] | None:
    """A case with its application document and its timeline, or None."""
    row = conn.execute(sa.select(cases).where(cases.c.application_no == application_no)).first()
    if row is None:
        return None
    entries = conn.execute(
        sa.select(timeline).where(timeline.c.application_no == application_no).order_by(timeline.c.id)
    ).all()
    return {
        "application_no": row.application_no,
        "customer_no": row.customer_no,
        "customer_class": row.customer_class,
        "business_type": row.business_type,
        "stage": row.stage,
        "stage_entered_at": row.stage_entered_at,
        "opened_at": row.opened_at,
        "updated_at": row.updated_at,
        "responsible": row.responsible,
        "application": row.application,
        "timeline": [
            {
                "at": entry.at,
                "stage_from": entry.stage_from,
                "stage_to": entry.stage_to,
                "source_system": entry.source_system,
                "source_event_id": entry.source_event_id,
                "responsible": entry.responsible,
                "note": entry.note,
            }
            for entry in entries
        ],
    }


def get_customer(conn: Connection, customer_no: str) -> dict[str, Any] | None:
    """The latest canonical customer document, or None."""
    value = conn.execute(
        sa.select(customers.c.document).where(customers.c.customer_no == customer_no)
    ).scalar()
    return dict(value) if value is not None else None


def count_cases(conn: Connection) -> int:
    """How many applications are tracked."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(cases)).scalar_one())
