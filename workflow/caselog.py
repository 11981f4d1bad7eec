"""The case feed consumer: keeps every case event the hub publishes, as a notification and audit feed.

Stage changes, assignments and deadline alerts land in case_feed, newest last per application, so a
dashboard or a notification service reads one table instead of the bus; the API shows them per application.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical_model.events import CASE_EVENTS
from ground.errors import InvalidRecordError
from pipeline.decoded import DecodedEvent
from store.database import utcnow
from store.schema import case_feed


def record_case_event(conn: Connection, decoded: DecodedEvent) -> None:
    """Store one case event of the hub (idempotent on the event id), with its data as it came."""
    event = decoded.event
    if event.type not in CASE_EVENTS:
        raise InvalidRecordError(f"the case feed takes case events only, not {event.type} (event {event.id})")
    exists = conn.execute(sa.select(case_feed.c.event_id).where(case_feed.c.event_id == event.id)).first()
    if exists is not None:
        return
    conn.execute(
        case_feed.insert().values(
            event_id=event.id,
            event_type=event.type,
            application_no=event.subject,
            stage=event.data.get("stage_to") or event.data.get("stage"),
            time=event.time,
            data=event.data,
            received_at=utcnow(),
        )
    )


def case_feed_of(conn: Connection, application_no: str) -> list[dict[str, Any]]:
    """The case events received for an application, oldest first."""
    rows = conn.execute(
        sa.select(case_feed)
        .where(case_feed.c.application_no == application_no)
        .order_by(case_feed.c.time, case_feed.c.event_id)
    ).all()
    return [
        {
            "event_id": row.event_id,
            "type": row.event_type,
            "stage": row.stage,
            "time": row.time,
            "data": row.data,
        }
        for row in rows
    ]
