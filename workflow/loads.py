"""The loads consumer: keeps the load projection (profiles with their good-point peak, telemetry values).

A stored profile is announced (workflow/projection.py) for the feasibility checks that depend on its peak.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from canonical_model.envelope import CloudEvent
from canonical_model.load import LoadProfile, Measurement
from canonical_model.projection import Projection, ProjectionUpdate
from store.loads import upsert_measurement, upsert_profile
from workflow.projection import announce
from yekuo.errors import InvalidRecordError

PROFILE_RECORDED = "cn.yekuo.load.profile.recorded.v1"
MEASUREMENT_RECORDED = "cn.yekuo.load.measurement.recorded.v1"


def handle_load_event(conn: Connection, event: CloudEvent) -> None:
    """Apply one load event; an older profile of the same source and subject does not replace a newer one."""
    if event.type == PROFILE_RECORDED:
        profile = LoadProfile.model_validate(event.data)
        stored = upsert_profile(
            conn,
            profile.model_dump(mode="json", exclude_none=True),
            peak_kw=profile.peak_kw,
            good_points=profile.good_points,
            event_source=event.producer,
            sequence=event.sequence,
            event_id=event.id,
        )
        if stored:
            update = ProjectionUpdate(
                projection=Projection.LOADS,
                equipment_id=profile.equipment_id,
                data_date=profile.data_date,
                source_event_id=event.id,
                source_event_type=event.type,
            )
            announce(conn, update, event)
    elif event.type == MEASUREMENT_RECORDED:
        measurement = Measurement.model_validate(event.data)
        upsert_measurement(
            conn,
            {
                "measurement_id": measurement.measurement_id,
                "measured_at": measurement.measured_at,
                "equipment_id": measurement.equipment_id,
                "load_kw": measurement.load_kw,
                "quality": measurement.quality,
                "good": measurement.good,
                "event_id": event.id,
            },
        )
    else:
        raise InvalidRecordError(f"the loads consumer has no handler for {event.type} (event {event.id})")
