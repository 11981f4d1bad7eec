"""Hub rows a forecast reads: daily load profiles, and pipeline applications with reservation and case."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime

from sqlalchemy.engine import Connection

from canonical_model.application import ConnectionApplication
from store.feasibility import capacity_reservations, feasibility_assessments
from store.loads import load_profiles
from store.schema import cases


def store_days(
    conn: Connection, equipment_id: str, days: Iterable[tuple[date, float]], good: int = 96
) -> None:
    """One dispatch profile per day with the given peak (kW); the document is not what a forecast reads."""
    moment = datetime(2020, 1, 1, tzinfo=UTC)
    conn.execute(
        load_profiles.insert(),
        [
            {
                "equipment_id": equipment_id,
                "data_date": day,
                "phase": "total",
                "source": "dispatch",
                "peak_kw": peak,
                "peak_point": 60,
                "good_points": good,
                "document": {},
                "event_source": "/dispatch/profile",
                "sequence": n,
                "event_id": f"e{equipment_id}{n}",
                "updated_at": moment,
            }
            for n, (day, peak) in enumerate(days)
        ],
    )


def store_pipeline(
    conn: Connection,
    application: ConnectionApplication,
    *,
    feeder_id: str,
    point_id: str,
    reserved_kva: float,
    deadline: date | None,
    reserved_at: datetime,
    energised_at: datetime | None = None,
) -> None:
    """An assessed application holding reserved_kva on a transformer of the feeder, with its open case."""
    number = application.application_no
    conn.execute(
        capacity_reservations.insert().values(
            application_no=number,
            equipment_id=point_id,
            feeder_id=feeder_id,
            substation_id=None,
            kva=reserved_kva,
            reserved_at=reserved_at,
            expires_at=None,
            energised_at=energised_at,
        )
    )
    conn.execute(
        feasibility_assessments.insert().values(
            application_no=number,
            province="default",
            verdict="feasible",
            document={},
            application=application.model_dump(mode="json", exclude_none=True),
            is_open=True,
            assessed_at=reserved_at,
            event_id=f"a{number}",
        )
    )
    conn.execute(
        cases.insert().values(
            application_no=number,
            customer_no=application.customer_no,
            customer_class=application.customer_class.value,
            business_type=application.business_type.value,
            importance_grade=application.importance_grade.value,
            flow="test",
            status="open",
            stage="acceptance",
            stage_visit="acceptance#1",
            stage_entered_at=reserved_at,
            deadline_provisional=False,
            provisional=False,
            calendar="test",
            end_to_end_commitment_days=15,
            end_to_end_deadline=deadline,
            end_to_end_provisional=False,
            opened_at=reserved_at,
            updated_at=reserved_at,
            survey_pending=False,
            rework_count=0,
            anomaly_count=0,
            event_count=1,
            application={},
            anomalies=[],
        )
    )
