"""Monitoring: balanced, explained survey assignment; at-risk and overdue alerts once per stage visit;
provisional deadlines redone when the calendar knows their year."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipeline.decoded import DecodedEvent
from store.schema import cases, outbox
from workflow.cases import CaseTracker
from workflow.config import StaffMember, WorkflowConfig
from workflow.monitor import CaseMonitor, MonitorLoop
from workflow.queries import get_case
from workflow.workdays import WorkingCalendar

from .events import application_event

SCHEME_REPLY = {"stage": "scheme_reply", "updated_at": "2026-11-23T10:00:00+08:00"}


def _staff(staff_id: str, capacity: int, regions: tuple[str, ...] = ("41401",)) -> StaffMember:
    return StaffMember(
        staff_id, f"name-{staff_id}", "41401", frozenset(regions), frozenset({"new_connection"}), capacity
    )


def _published(engine: Engine, event_type: str) -> list[tuple[str, dict[str, object]]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.routing_key, outbox.c.body).where(outbox.c.event_type == event_type)
        ).all()
    return [(key, json.loads(body)["data"]) for key, body in rows]


def _open_cases(engine: Engine, tracker: CaseTracker, numbers: list[str], **data: str) -> None:
    with engine.begin() as conn:
        for number in numbers:
            tracker(conn, DecodedEvent(application_event(number, 1)))
            tracker(conn, DecodedEvent(application_event(number, 2, **{**SCHEME_REPLY, **data})))


def test_survey_tasks_go_to_the_least_loaded_eligible_person_with_the_reasons(
    sqlite_engine: Engine, config: WorkflowConfig, calendar: WorkingCalendar
) -> None:
    roster = (_staff("A", 2), _staff("B", 1), _staff("ELSEWHERE", 9, regions=("41407",)))
    tracker = CaseTracker(dataclasses.replace(config, staff=roster), calendar)
    _open_cases(sqlite_engine, tracker, ["C1", "C2", "C3", "C4"])
    monitor = CaseMonitor(sqlite_engine, tracker)
    report = monitor.tick(datetime(2026, 11, 23, 3, 0, tzinfo=UTC))
    assert report.assigned == 3 and report.unassigned == ["C4"]
    with sqlite_engine.connect() as conn:
        assignees = {
            row[0]: row[1] for row in conn.execute(sa.select(cases.c.application_no, cases.c.assignee))
        }
        c3 = get_case(conn, "C3")
    assert assignees == {"C1": "A", "C2": "B", "C3": "A", "C4": None}
    assert c3 is not None
    assignment = c3["assignment"]
    assert assignment["region"] == "41401" and assignment["business_type"] == "new_connection"
    assert assignment["candidates"] == [
        {"staff_id": "A", "open_tasks": 1, "capacity": 2},
        {"staff_id": "B", "open_tasks": 1, "capacity": 1},
    ]
    assert "lowest workload 1/2" in assignment["reason"] and "1 eligible at capacity" in assignment["reason"]
    assert [e["kind"] for e in c3["timeline"]] == ["opened", "forward", "assigned"]
    assert len(_published(sqlite_engine, "cn.yekuo.case.assigned.v1")) == 3

    # C1 leaves the survey stage, which frees A for C4; a second tick assigns nothing twice.
    with sqlite_engine.begin() as conn:
        tracker(
            conn,
            DecodedEvent(
                application_event("C1", 3, stage="external_works", updated_at="2026-11-24T10:00:00+08:00")
            ),
        )
    again = monitor.tick(datetime(2026, 11, 24, 3, 0, tzinfo=UTC))
    assert again.assigned == 1 and again.unassigned == []
    with sqlite_engine.connect() as conn:
        assignees = {
            row[0]: row[1] for row in conn.execute(sa.select(cases.c.application_no, cases.c.assignee))
        }
    assert assignees == {"C1": None, "C2": "B", "C3": "A", "C4": "A"}


def test_nobody_is_assigned_outside_their_business_types(
    sqlite_engine: Engine, config: WorkflowConfig, calendar: WorkingCalendar
) -> None:
    tracker = CaseTracker(dataclasses.replace(config, staff=(_staff("A", 5),)), calendar)
    _open_cases(sqlite_engine, tracker, ["C1"], business_type="capacity_reduction")
    report = CaseMonitor(sqlite_engine, tracker).tick(datetime(2026, 11, 23, 3, 0, tzinfo=UTC))
    assert report.assigned == 0 and report.unassigned == ["C1"]


def test_at_risk_then_overdue_each_once_per_stage_visit(sqlite_engine: Engine, tracker: CaseTracker) -> None:
    # Acceptance (2 working days) entered Friday 20 November: due Tuesday 24, at risk from Monday 23.
    with sqlite_engine.begin() as conn:
        tracker(conn, DecodedEvent(application_event("A1", 1)))
    monitor = CaseMonitor(sqlite_engine, tracker)
    assert monitor.tick(datetime(2026, 11, 20, 8, 0, tzinfo=UTC)).at_risk == 0
    first = monitor.tick(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    assert (first.at_risk, first.overdue) == (1, 0)
    assert monitor.tick(datetime(2026, 11, 24, 2, 0, tzinfo=UTC)).at_risk == 0
    late = monitor.tick(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    assert (late.at_risk, late.overdue) == (0, 1)
    assert monitor.tick(datetime(2026, 11, 26, 2, 0, tzinfo=UTC)).overdue == 0

    [(key, alert)] = _published(sqlite_engine, "cn.yekuo.case.overdue.v1")
    assert key == "case.overdue.hv_single_source"
    assert alert["visit"] == "acceptance#1" and alert["deadline"] == "2026-11-24"
    assert alert["working_days_left"] == -1
    [(_, warning)] = _published(sqlite_engine, "cn.yekuo.case.at_risk.v1")
    assert warning["working_days_left"] == 1

    # A rework back into acceptance is a new visit with its own alerts.
    with sqlite_engine.begin() as conn:
        tracker(conn, DecodedEvent(application_event("A1", 2, **SCHEME_REPLY)))
        tracker(
            conn,
            DecodedEvent(
                application_event("A1", 3, stage="acceptance", updated_at="2026-11-26T09:00:00+08:00")
            ),
        )
    assert monitor.tick(datetime(2026, 12, 1, 2, 0, tzinfo=UTC)).overdue == 1
    with sqlite_engine.connect() as conn:
        case = get_case(conn, "A1")
    assert case is not None
    alerts = [(e["kind"], e["visit"]) for e in case["timeline"] if e["kind"] in ("at_risk", "overdue")]
    assert alerts == [("at_risk", "acceptance#1"), ("overdue", "acceptance#1"), ("overdue", "acceptance#2")]


def test_provisional_deadlines_are_redone_when_the_calendar_knows_the_year(
    sqlite_engine: Engine, config: WorkflowConfig
) -> None:
    as_of_2026 = CaseTracker(config, WorkingCalendar(published_years=range(2001, 2027)))
    with sqlite_engine.begin() as conn:
        as_of_2026(
            conn,
            DecodedEvent(
                application_event("A1", 1, **{**SCHEME_REPLY, "updated_at": "2026-12-15T10:00:00+08:00"})
            ),
        )
    with sqlite_engine.connect() as conn:
        row = conn.execute(sa.select(cases.c.deadline, cases.c.deadline_provisional)).one()
    assert (row.deadline, row.deadline_provisional) == (date(2027, 1, 6), True)
    assert CaseMonitor(sqlite_engine, as_of_2026).tick().refreshed == 0

    with_2027 = CaseTracker(config, WorkingCalendar(published_years=range(2001, 2028)))
    assert CaseMonitor(sqlite_engine, with_2027).tick(datetime(2026, 12, 15, tzinfo=UTC)).refreshed == 1
    with sqlite_engine.connect() as conn:
        row = conn.execute(
            sa.select(cases.c.deadline, cases.c.deadline_provisional, cases.c.provisional)
        ).one()
    assert (row.deadline, row.deadline_provisional, row.provisional) == (date(2027, 1, 6), False, False)


def test_the_loop_runs_a_pass_every_interval(sqlite_engine: Engine, tracker: CaseTracker) -> None:
    now = [100.0]
    loop = MonitorLoop(CaseMonitor(sqlite_engine, tracker), 30.0, clock=lambda: now[0])
    assert loop.step() is False and loop.last_report is not None
    first = loop.last_report
    now[0] += 29.0
    loop.step()
    assert loop.last_report is first
    now[0] += 1.0
    loop.step()
    assert loop.last_report is not first


def test_a_pass_stops_between_two_cases_and_the_next_pass_does_the_rest(
    sqlite_engine: Engine, tracker: CaseTracker
) -> None:
    with sqlite_engine.begin() as conn:
        for number in ("A1", "A2", "A3"):
            tracker(conn, DecodedEvent(application_event(number, 1)))
    monitor = CaseMonitor(sqlite_engine, tracker)
    asked: list[int] = []

    def stop_after_two() -> bool:
        asked.append(1)
        return len(asked) > 2

    at = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    partial = monitor.tick(at, stopping=stop_after_two)
    assert partial.interrupted and partial.overdue == 2
    rest = monitor.tick(at)
    assert not rest.interrupted and rest.overdue == 1
    assert len(_published(sqlite_engine, "cn.yekuo.case.overdue.v1")) == 3
