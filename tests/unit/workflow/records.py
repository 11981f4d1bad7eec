"""Builders of the records consistency tests use: a PMS transformer of a district, and a low-voltage
customer and application that agree with it unless told otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from canonical_model.envelope import CloudEvent
from canonical_model.registry import schema_uri

from .events import application_event, customer_event

AT = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def transformer_event(district: str, sequence: int = 1, **changes: Any) -> CloudEvent:
    document: dict[str, Any] = {
        "transformer_id": "PB1",
        "name": "PB1号公变",
        "rated_capacity_kva": 400.0,
        "voltage_kv": 10.0,
        "status": "in_service",
        "ownership": "public",
        "transformer_district_id": district,
        "location": {"lon": 112.5, "lat": 33.0},
        "updated_at": "2026-11-26T10:00:00+08:00",
    }
    document.update(changes)
    return CloudEvent(
        id=f"grid-{district}-{sequence}",
        source="/pms/transformer",
        type="cn.yekuo.grid.transformer.changed.v1",
        subject=document["transformer_id"],
        time=AT,
        dataschema=schema_uri("distribution_transformer.v1"),
        correlationid="c",
        sequence=sequence,
        data=document,
    )


def low_voltage(number: str, sequence: int = 1, **changes: Any) -> CloudEvent:
    data: dict[str, Any] = {
        "customer_no": "4130000001",
        "customer_class": "lv_non_residential",
        "requested_capacity_kva": 50.0,
        "site_location": {"lon": 112.5005, "lat": 33.0005},
        "site_address": "南阳市卧龙区中州路12号",
        "industry_code": "H6210",
        "urban_rural": "urban",
        "updated_at": f"2026-11-20T09:{13 + sequence:02d}:05+08:00",
    }
    data.update(changes)
    return application_event(number, sequence, **data)


def the_customer(sequence: int = 1, **changes: Any) -> CloudEvent:
    data: dict[str, Any] = {
        "category": "general_commercial",
        "industry_code": "H6210",
        "transformer_district_id": "TG0000001",
        "contract_capacity_kva": 50.0,
        "supply_voltage_kv": 0.38,
        "urban_rural": "urban",
    }
    data.update(changes)
    return customer_event("4130000001", sequence, **data)
