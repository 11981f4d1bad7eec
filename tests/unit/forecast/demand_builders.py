"""Application history as the hub holds it: the marketing simulator's multi-year history, mapped by the
shipped marketing mapping, stored as cases; and the dispatch simulator's curves stored as profiles."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from canonical_model.application import BusinessType
from forecast.applied import DemandHistory, demand_history
from ground.settings import PROJECT_ROOT
from mappings.codes import load_code_tables
from mappings.loader import load_mappings
from simulators.dispatch.history import HistoryDay
from simulators.marketing.history import generate_history
from store.loads import load_profiles
from store.schema import cases

STORED_AT = datetime(2020, 1, 1, tzinfo=UTC)


@functools.cache
def simulated_applications(
    seed: int, first_year: int, years: int, per_year: int
) -> tuple[dict[str, Any], ...]:
    """The canonical applications of a simulated history, as the marketing mapping makes them."""
    codes = load_code_tables(PROJECT_ROOT / "mappings" / "codes", root=PROJECT_ROOT)
    mapping = load_mappings(PROJECT_ROOT / "mappings", codes, root=PROJECT_ROOT)["marketing/application"]
    _, rows = generate_history(seed, 2000, first_year, years, per_year=per_year)
    return tuple(mapping.apply(row) for row in rows)


def store_cases(conn: Connection, applications: Iterable[Mapping[str, Any]]) -> None:
    """One case per application, holding it as the latest canonical application."""
    conn.execute(
        cases.insert(),
        [
            {
                "application_no": application.get("application_no", f"X{n}"),
                "customer_no": application.get("customer_no", "C"),
                "customer_class": application.get("customer_class", "lv_residential"),
                "business_type": application.get("business_type", "new_connection"),
                "importance_grade": "none",
                "flow": "test",
                "status": "open",
                "stage": "acceptance",
                "stage_visit": "acceptance#1",
                "stage_entered_at": STORED_AT,
                "deadline_provisional": False,
                "provisional": False,
                "calendar": "test",
                "end_to_end_commitment_days": 15,
                "end_to_end_provisional": False,
                "opened_at": STORED_AT,
                "updated_at": STORED_AT,
                "survey_pending": False,
                "rework_count": 0,
                "anomaly_count": 0,
                "event_count": 1,
                "application": dict(application),
                "anomalies": [],
            }
            for n, application in enumerate(applications)
        ],
    )


def history_of(conn: Connection, applications: Iterable[Mapping[str, Any]]) -> DemandHistory:
    """The demand history the hub reads back after storing the applications (new connections, increases)."""
    store_cases(conn, applications)
    return demand_history(conn, {BusinessType.NEW_CONNECTION, BusinessType.CAPACITY_INCREASE})


def store_curves(conn: Connection, days: Iterable[Sequence[HistoryDay]]) -> None:
    """Each simulated day as a metering profile with its 96 points (all good)."""
    rows = [
        {
            "equipment_id": curve.equipment.equipment_id,
            "data_date": curve.day,
            "phase": "total",
            "source": "metering",
            "peak_kw": max(curve.load_kw),
            "peak_point": curve.load_kw.index(max(curve.load_kw)),
            "good_points": 96,
            "document": {"points": [{"quality": None, "load_kw": load} for load in curve.load_kw]},
            "event_source": "/metering/profile",
            "sequence": n,
            "event_id": f"p{curve.equipment.equipment_id}{curve.day}",
            "updated_at": STORED_AT,
        }
        for n, day in enumerate(days)
        for curve in day
    ]
    conn.execute(load_profiles.insert(), rows)
