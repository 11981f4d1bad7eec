"""The end-to-end deadline of every case: counted from acceptance, paused by the customer's works, shown on
the case, and alerted at risk and overdue once each, checked against working days counted here directly
with the holidays package."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import holidays
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ground import clock
from pipeline.decoded import DecodedEvent
from store.schema import outbox
from workflow.cases import CaseTracker
from workflow.config import WorkflowConfig
from workflow.monitor import CaseMonitor
from workflow.queries import get_case
from workflow.workdays import WorkingCalendar

from .events import application_event

# Arrangements published up to 2026, as in November 2026.
AS_OF_NOV_2026 = range(2001, 2027)


def _due(start: date, days: int) -> date:
    """The days-th working day after start, counted straight from holidays.China."""
    china = holidays.country_holidays("CN", years=range(start.year, start.year + 2))
    day, counted = start, 0
    while counted < days:
        day += timedelta(days=1)
        if day in china.weekend_workdays or (day.weekday() < 5 and day not in china):
            counted += 1
    return day


def _working_days(after: date, until: date) -> int:
    china = holidays.country_holidays("CN", years=range(after.year, until.year + 1))
    days = (after + timedelta(days=n) for n in range(1, (until - after).days + 1))
    return sum(1 for d in days if d in china.weekend_workdays or (d.weekday() < 5 and d not in china))


@pytest.fixture
def tracker(config: WorkflowConfig) -> CaseTracker:
    return CaseTracker(config, WorkingCalendar(published_years=AS_OF_NOV_2026))


def _case(engine: Engine, number: str, at: datetime) -> dict[str, object]:
    with engine.connect() as conn:
        case = get_case(conn, number, now=at)
    assert case is not None
    return case


def test_a_case_is_due_its_commitment_after_acceptance_and_late_december_is_provisional(
    sqlite_engine: Engine, tracker: CaseTracker
) -> None:
    # Ordinary high-voltage single source: 22 working days from Friday 20 November 2026.
    with sqlite_engine.begin() as conn:
        tracker(conn, DecodedEvent(application_event("E1", 1)))
    case = _case(sqlite_engine, "E1", datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    assert case["end_to_end_commitment_days"] == 22
    assert case["end_to_end_deadline"] == _due(date(2026, 11, 20), 22) == date(2026, 12, 22)
    # It ends after 15 December while 2027's notice is not out: provisional.
    assert case["end_to_end_provisional"] is True
    assert case["end_to_end_status"] == "on_track"
    assert case["end_to_end_working_days_left"] == _working_days(date(2026, 11, 23), date(2026, 12, 22))


def test_the_customers_works_stop_the_clock_and_push_the_deadline_back(
    sqlite_engine: Engine, tracker: CaseTracker
) -> None:
    steps = [
        ("scheme_reply", "2026-11-23T10:00:00+08:00"),
        ("external_works", "2026-11-27T10:00:00+08:00"),
    ]
    with sqlite_engine.begin() as conn:
        tracker(conn, DecodedEvent(application_event("E2", 1)))
        for sequence, (stage, at) in enumerate(steps, 2):
            tracker(conn, DecodedEvent(application_event("E2", sequence, stage=stage, updated_at=at)))
    paused = _case(sqlite_engine, "E2", datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    assert (paused["end_to_end_status"], paused["end_to_end_deadline"]) == ("paused", None)

    with sqlite_engine.begin() as conn:
        tracker(
            conn,
            DecodedEvent(
                application_event("E2", 4, stage="energisation", updated_at="2026-12-04T10:00:00+08:00")
            ),
        )
    works = _working_days(date(2026, 11, 27), date(2026, 12, 4))
    due = _due(date(2026, 11, 20), 22 + works)
    resumed = _case(sqlite_engine, "E2", datetime(2026, 12, 4, 3, 0, tzinfo=UTC))
    assert works == 5 and resumed["end_to_end_deadline"] == due
    assert resumed["end_to_end_status"] == "on_track"

    with sqlite_engine.begin() as conn:
        tracker(
            conn,
            DecodedEvent(
                application_event("E2", 5, stage="archived", updated_at="2026-12-08T10:00:00+08:00")
            ),
        )
    closed = _case(sqlite_engine, "E2", datetime(2027, 3, 1, 3, 0, tzinfo=UTC))
    assert closed["end_to_end_status"] == "met" and closed["end_to_end_working_days_left"] is None


def _alerts(engine: Engine, event_type: str) -> list[tuple[str, dict[str, object]]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.routing_key, outbox.c.body).where(outbox.c.event_type == event_type)
        ).all()
    found = [(key, json.loads(body)["data"]) for key, body in rows]
    return [(key, data) for key, data in found if data["scope"] == "end_to_end"]


def test_end_to_end_at_risk_then_overdue_each_once_as_typed_events(
    sqlite_engine: Engine, tracker: CaseTracker
) -> None:
    # Residential 2-step: 5 working days from Friday 20 November, due Friday 27, at risk from Thursday 26.
    with sqlite_engine.begin() as conn:
        tracker(
            conn,
            DecodedEvent(
                application_event("E3", 1, customer_class="lv_residential", requested_capacity_kva=8)
            ),
        )
        tracker(
            conn,
            DecodedEvent(
                application_event(
                    "E3",
                    2,
                    customer_class="lv_residential",
                    requested_capacity_kva=8,
                    stage="energisation",
                    updated_at="2026-11-23T10:00:00+08:00",
                )
            ),
        )
    monitor = CaseMonitor(sqlite_engine, tracker)
    due = _due(date(2026, 11, 20), 5)
    with clock.frozen_at(datetime(2026, 11, 24, 2, 0, tzinfo=UTC)):
        monitor.tick()
    assert _alerts(sqlite_engine, "cn.yekuo.case.at_risk.v1") == []
    with clock.frozen_at(datetime(2026, 11, 26, 2, 0, tzinfo=UTC)) as frozen:
        monitor.tick()
        frozen.advance(timedelta(hours=3))
        monitor.tick()
    [(key, warning)] = _alerts(sqlite_engine, "cn.yekuo.case.at_risk.v1")
    assert key == "case.at_risk.lv_residential"
    assert (warning["visit"], warning["limit_days"], warning["deadline"]) == (
        "end_to_end",
        5,
        due.isoformat(),
    )
    assert warning["working_days_left"] == _working_days(date(2026, 11, 26), due) == 1
    assert warning["entered_at"] == "2026-11-20T09:13:05+08:00"
    assert (
        _case(sqlite_engine, "E3", datetime(2026, 11, 26, 2, 0, tzinfo=UTC))["end_to_end_status"] == "at_risk"
    )

    for moment in (datetime(2026, 11, 30, 2, 0, tzinfo=UTC), datetime(2026, 12, 1, 2, 0, tzinfo=UTC)):
        with clock.frozen_at(moment):
            monitor.tick()
    [(_, overdue)] = _alerts(sqlite_engine, "cn.yekuo.case.overdue.v1")
    assert overdue["deadline"] == due.isoformat() and overdue["working_days_left"] == -1
    case = _case(sqlite_engine, "E3", datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    assert case["end_to_end_status"] == "overdue" and case["end_to_end_working_days_left"] == -2
    notes = [e["note"] for e in case["timeline"] if e["visit"] == "end_to_end"]
    assert notes == [
        f"end to end: due {due.isoformat()}, 1 working day(s) left of 5",
        f"end to end: due {due.isoformat()}, -1 working day(s) left of 5",
    ]


def test_a_provisional_end_to_end_deadline_is_redone_once_the_calendar_knows_next_year(
    sqlite_engine: Engine, tracker: CaseTracker, config: WorkflowConfig
) -> None:
    with sqlite_engine.begin() as conn:
        tracker(conn, DecodedEvent(application_event("E4", 1)))
    moment = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert _case(sqlite_engine, "E4", moment)["end_to_end_provisional"] is True
    with clock.frozen_at(moment):
        assert CaseMonitor(sqlite_engine, tracker).tick().refreshed == 0
        updated = CaseTracker(config, WorkingCalendar(published_years=range(2001, 2028)))
        assert CaseMonitor(sqlite_engine, updated).tick().refreshed == 1
    case = _case(sqlite_engine, "E4", moment)
    assert (case["end_to_end_deadline"], case["end_to_end_provisional"]) == (date(2026, 12, 22), False)
