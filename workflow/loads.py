"""The loads consumer: keeps the load projection (profiles with their good-point peak, telemetry values)."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from canonical_model.envelope import CloudEvent
from canonical_model.load import LoadProfile, Measurement
from store.loads import upsert_measurement, upsert_profile
from yekuo.errors import InvalidRecordError

PROFILE_RECORDED = "cn.yekuo.load.profile.recorded.v1"
MEASUREMENT_RECORDED = "cn.yekuo.load.measurement.recorded.v1"


def handle_load_event(conn: Connection, event: CloudEvent) -> None:
    """Apply one load event; an older profile of the same source and subject does not replace a newer one."""
    if event.type == PROFILE_RECORDED:
        profile = LoadProfile.model_validate(event.data)
        upsert_profile(
            conn,
            profile.model_dump(mode="json", exclude_none=True),
            peak_kw=profile.peak_kw,
            good_points=profile.good_points,
            event_source=event.source,
            sequence=event.sequence,
            event_id=event.id,
        )
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
