"""The loads consumer: keeps the load projection (profiles with their good-point peak and where it was,
power-factor curves, telemetry values).

A stored profile or factor curve is announced (workflow/projection.py) for the feasibility checks that
depend on its peak: the factor at the peak turns it into kVA.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.engine import Connection

from canonical_model.envelope import CloudEvent
from canonical_model.events import (
    LOAD_MEASUREMENT_RECORDED,
    LOAD_POWER_FACTOR_RECORDED,
    LOAD_PROFILE_RECORDED,
)
from canonical_model.load import LoadProfile, Measurement, PowerFactorProfile
from canonical_model.projection import Projection, ProjectionUpdate
from ground.errors import InvalidRecordError
from pipeline.decoded import DecodedEvent
from store.loads import FactorCurve, upsert_measurement, upsert_power_factors, upsert_profile
from workflow.projection import announce


def handle_load_event(conn: Connection, decoded: DecodedEvent) -> None:
    """Apply one load event; an older profile of the same source and subject does not replace a newer one."""
    event = decoded.event
    if event.type == LOAD_PROFILE_RECORDED:
        profile = decoded.payload_as(LoadProfile)
        stored = upsert_profile(
            conn,
            profile.model_dump(mode="json", exclude_none=True),
            peak_kw=profile.peak_kw,
            peak_point=profile.peak_point,
            good_points=profile.good_points,
            event_source=event.producer,
            sequence=event.sequence,
            event_id=event.id,
        )
        if stored:
            _announce(conn, event, profile.equipment_id, profile.data_date)
    elif event.type == LOAD_POWER_FACTOR_RECORDED:
        factors = decoded.payload_as(PowerFactorProfile)
        curve = FactorCurve(
            equipment_id=factors.equipment_id,
            data_date=factors.data_date,
            phase=factors.phase.value,
            source=factors.source.value,
            factors=factors.good_factors,
            equipment_name=factors.equipment_name,
        )
        if upsert_power_factors(
            conn, curve, event_source=event.producer, sequence=event.sequence, event_id=event.id
        ):
            _announce(conn, event, factors.equipment_id, factors.data_date)
    elif event.type == LOAD_MEASUREMENT_RECORDED:
        measurement = decoded.payload_as(Measurement)
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


def _announce(conn: Connection, event: CloudEvent, equipment_id: str, data_date: date) -> None:
    update = ProjectionUpdate(
        projection=Projection.LOADS,
        equipment_id=equipment_id,
        data_date=data_date,
        source_event_id=event.id,
        source_event_type=event.type,
    )
    announce(conn, update, event)
