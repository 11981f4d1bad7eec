"""The application history the hub holds, as demand: when, where, which industry and load type, how much.

Each case keeps the latest canonical application (cases.application); its acceptance time (submitted_at,
counted in Asia/Shanghai) places it in a month. A case whose stored application lacks a field the demand
needs is counted as unreadable and reported with the answer, never guessed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical_model.application import BusinessType, LoadType
from store.schema import cases

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class AppliedDemand:
    """One application's demand: acceptance day (Asia/Shanghai), supply unit, GB/T 4754 section, load type
    and requested kVA."""

    day: date
    unit: str | None
    section: str | None
    load_type: LoadType
    kva: float


@dataclass(frozen=True)
class DemandHistory:
    """The applications of the counted business types, and how many cases could not be read."""

    records: list[AppliedDemand]
    unreadable: int


def _demand(application: Mapping[str, Any]) -> tuple[BusinessType, AppliedDemand] | None:
    try:
        business = BusinessType(application["business_type"])
        submitted = datetime.fromisoformat(application["submitted_at"])
        kva = float(application["requested_capacity_kva"])
        load_type = LoadType(application.get("load_type", LoadType.GENERAL.value))
    except (KeyError, TypeError, ValueError):
        return None
    if submitted.tzinfo is None or kva <= 0:
        return None
    industry = application.get("industry_code")
    section = industry[0] if isinstance(industry, str) and industry else None
    unit = application.get("org_no")
    day = submitted.astimezone(SHANGHAI).date()
    return business, AppliedDemand(day, unit if isinstance(unit, str) else None, section, load_type, kva)


def demand_history(conn: Connection, business_types: Collection[BusinessType]) -> DemandHistory:
    """Every case's application of the given business types, oldest first."""
    records: list[AppliedDemand] = []
    unreadable = 0
    for (application,) in conn.execute(sa.select(cases.c.application)):
        read = _demand(application) if isinstance(application, Mapping) else None
        if read is None:
            unreadable += 1
        elif read[0] in business_types:
            records.append(read[1])
    records.sort(key=lambda record: record.day)
    return DemandHistory(records, unreadable)
