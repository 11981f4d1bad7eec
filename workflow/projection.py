"""Announcing projection changes: an outbox event staged in the transaction that stored the change.

The outbox publishes it only after that transaction commits, so whoever receives it reads the projection
with the change in it. The notices of a consumer's batch are staged together when its work is finished.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy.engine import Connection

from canonical_model.envelope import CloudEvent
from canonical_model.events import PROJECTION_CHANNELS, PROJECTION_UPDATED, listed
from canonical_model.projection import ProjectionUpdate
from ground.settings import Settings
from pipeline.outbox import defer_event
from pipeline.records import EventDraft


@cache
def _exchange() -> str:
    return Settings().exchange


def routing_key(update: ProjectionUpdate) -> str:
    """projection.grid.<kind> or projection.loads."""
    kind = {"equipment_kind": update.equipment_kind} if update.equipment_kind else {}
    return PROJECTION_CHANNELS[update.projection].key(**kind)


def announce(conn: Connection, update: ProjectionUpdate, cause: CloudEvent) -> None:
    """Stage the notice of a stored change in the caller's transaction."""
    defer_event(
        conn,
        EventDraft(
            event_type=PROJECTION_UPDATED,
            source=f"/hub/projection/{update.projection.value}",
            subject=update.equipment_id,
            dataschema=listed(PROJECTION_UPDATED).dataschema,
            data=update.model_dump(mode="json", exclude_none=True),
            exchange=_exchange(),
            routing_key=routing_key(update),
        ),
        correlation_id=cause.correlationid,
    )
