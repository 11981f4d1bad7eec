"""Builders of canonical events for workflow tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from canonical_model.envelope import CloudEvent
from canonical_model.events import APPLICATION_CHANGED, CUSTOMER_CHANGED, STAGE_REPORTED
from canonical_model.registry import schema_uri
from pipeline.decoded import DecodedEvent


def application_event(
    application_no: str, sequence: int = 1, *, source: str = "/marketing/application", **data: Any
) -> CloudEvent:
    document: dict[str, Any] = {
        "application_no": application_no,
        "business_type": "new_connection",
        "customer_no": "4130012345",
        "requested_capacity_kva": 630.0,
        "customer_class": "hv_single_source",
        "channel": "service_hall",
        "submitted_at": "2026-11-20T09:13:05+08:00",
        "updated_at": "2026-11-20T09:13:05+08:00",
        "org_no": "41401",
    }
    if str(data.get("customer_class", "")).startswith("lv_") and "requested_capacity_kva" not in data:
        # A low-voltage customer of a realistic size: 630 kVA would be high voltage (feasibility/basis.py).
        document["requested_capacity_kva"] = 8.0 if data["customer_class"] == "lv_residential" else 50.0
    document.update(data)
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=source,
        type=APPLICATION_CHANGED,
        subject=application_no,
        time=datetime.now(UTC),
        dataschema=schema_uri("application.v1"),
        correlationid=str(uuid.uuid4()),
        sequence=sequence,
        data=document,
    )


def stage_report_event(
    application_no: str,
    stage: str,
    at: str,
    sequence: int = 1,
    *,
    source: str = "/pms/work_order",
    **data: Any,
) -> CloudEvent:
    document: dict[str, Any] = {"application_no": application_no, "stage": stage, "at": at, **data}
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=source,
        type=STAGE_REPORTED,
        subject=application_no,
        time=datetime.now(UTC),
        dataschema=schema_uri("stage_report.v1"),
        correlationid=str(uuid.uuid4()),
        sequence=sequence,
        data=document,
    )


def customer_event(customer_no: str, sequence: int = 1, **data: Any) -> CloudEvent:
    document: dict[str, Any] = {
        "customer_no": customer_no,
        "name": "南阳市宛城区李记餐馆",
        "category": "residential",
    }
    if str(data.get("customer_class", "")).startswith("lv_") and "requested_capacity_kva" not in data:
        # A low-voltage customer of a realistic size: 630 kVA would be high voltage (feasibility/basis.py).
        document["requested_capacity_kva"] = 8.0 if data["customer_class"] == "lv_residential" else 50.0
    document.update(data)
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/marketing/customer",
        type=CUSTOMER_CHANGED,
        subject=customer_no,
        time=datetime.now(UTC),
        dataschema=schema_uri("customer.v1"),
        correlationid=str(uuid.uuid4()),
        sequence=sequence,
        data=document,
    )


def track_stages(
    track: Callable[[Any, DecodedEvent], Any],
    conn: Any,
    number: str,
    days: list[tuple[str, str]],
    *,
    customer_no: str = "C1",
    org_no: str = "41401",
) -> None:
    """A residential application of 2026 through the given (stage, MM-DD) steps, one event each at 09:00
    Shanghai time, submitted on the first step's day, fed to a case tracker."""
    for sequence, (stage, day) in enumerate(days, start=1):
        track(
            conn,
            DecodedEvent(
                application_event(
                    number,
                    sequence,
                    stage=stage,
                    customer_class="lv_residential",
                    customer_no=customer_no,
                    submitted_at=f"2026-{days[0][1]}T09:00:00+08:00",
                    updated_at=f"2026-{day}T09:00:00+08:00",
                    org_no=org_no,
                )
            ),
        )
