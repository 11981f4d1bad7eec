"""A case is a pure function of the set of its events: any arrival order gives the same case."""

from __future__ import annotations

import itertools
import random
from datetime import datetime
from typing import Any

import pytest

from canonical_model.application import ReworkCause
from canonical_model.case import CaseOutcome, CaseStatus, TimelineKind
from canonical_model.events import APPLICATION_CHANGED, CASE_ASSIGNED, STAGE_REPORTED
from workflow.config import WorkflowConfig
from workflow.events import CaseEvent
from workflow.fold import CaseState, fold_case, order_events
from workflow.workdays import WorkingCalendar

APPLICATION: dict[str, Any] = {
    "application_no": "A1",
    "business_type": "new_connection",
    "customer_no": "4130012345",
    "requested_capacity_kva": 630.0,
    "customer_class": "hv_single_source",
    "channel": "service_hall",
    "submitted_at": "2026-11-20T09:00:00+08:00",
    "updated_at": "2026-11-20T09:00:00+08:00",
    "org_no": "41401",
}


def _app(sequence: int, stage: str, at: str, rework_cause: str | None = None) -> CaseEvent:
    data = {**APPLICATION, "stage": stage, "updated_at": at}
    if rework_cause is not None:
        data["rework_cause"] = rework_cause
    return CaseEvent(
        f"m{sequence}",
        "A1",
        "/marketing/application",
        sequence,
        APPLICATION_CHANGED,
        datetime.fromisoformat(at),
        data,
    )


def _report(sequence: int, stage: str, at: str) -> CaseEvent:
    data = {"application_no": "A1", "stage": stage, "at": at}
    return CaseEvent(
        f"p{sequence}", "A1", "/pms/work_order", sequence, STAGE_REPORTED, datetime.fromisoformat(at), data
    )


def _snapshot(state: CaseState | None) -> Any:
    assert state is not None
    return (
        state.stage,
        state.rework_count,
        [entry.model_dump() for entry in state.timeline],
        [anomaly.model_dump() for anomaly in state.anomalies],
        [(v.key, v.entered_at, v.left_at, v.deadline, v.duration_days, v.over_limit) for v in state.visits],
    )


STREAM = [
    _app(1, "acceptance", "2026-11-20T09:00:00+08:00"),
    _app(2, "scheme_reply", "2026-11-23T09:00:00+08:00"),
    _report(1, "acceptance", "2026-11-24T09:00:00+08:00"),  # PMS sends it back: a rework
    _app(3, "scheme_reply", "2026-11-25T09:00:00+08:00"),
    _report(2, "external_works", "2026-12-01T09:00:00+08:00"),
    _app(4, "energisation", "2026-12-20T09:00:00+08:00"),
]


def test_sources_are_merged_by_change_time_and_ordered_by_sequence_within_each() -> None:
    shuffled = list(reversed(STREAM))
    assert [e.event_id for e in order_events(shuffled)] == ["m1", "m2", "p1", "m3", "p2", "m4"]


def test_every_arrival_order_gives_the_same_case(config: WorkflowConfig, calendar: WorkingCalendar) -> None:
    expected = _snapshot(fold_case(STREAM, config, calendar))
    rng = random.Random(7)
    orders = [list(order) for order in itertools.islice(itertools.permutations(STREAM), 0, 720, 37)]
    orders += [rng.sample(STREAM, len(STREAM)) for _ in range(20)]
    for order in orders:
        assert _snapshot(fold_case(order, config, calendar)) == expected


def test_the_ordered_stream_gives_the_expected_timeline(
    config: WorkflowConfig, calendar: WorkingCalendar
) -> None:
    state = fold_case(STREAM, config, calendar)
    assert state is not None
    assert [(e.kind, e.stage_to, e.source_system) for e in state.timeline] == [
        (TimelineKind.OPENED, "acceptance", "marketing"),
        (TimelineKind.FORWARD, "scheme_reply", "marketing"),
        (TimelineKind.REWORK, "acceptance", "pms"),
        (TimelineKind.FORWARD, "scheme_reply", "marketing"),
        (TimelineKind.FORWARD, "external_works", "pms"),
        (TimelineKind.FORWARD, "energisation", "marketing"),
    ]
    assert state.rework_count == 1
    scheme = state.visits[3]
    # Scheme reply entered Wednesday 25 November 09:00, left Tuesday 1 December 09:00: 4 working days,
    # well within 15.
    assert scheme.key == "scheme_reply#2"
    assert scheme.duration_days is not None and abs(scheme.duration_days - 4.0) < 1e-9
    assert scheme.over_limit is False
    external = state.visits[4]
    # External works: 20 working days from 1 December end on 29 December; left on the 20th, in time.
    assert external.deadline is not None and external.deadline.due.isoformat() == "2026-12-29"


def test_no_application_yet_means_no_case(config: WorkflowConfig, calendar: WorkingCalendar) -> None:
    assert fold_case([_report(1, "scheme_reply", "2026-11-23T09:00:00+08:00")], config, calendar) is None


def test_hub_decisions_join_the_timeline_by_time_and_do_not_move_stages(
    config: WorkflowConfig, calendar: WorkingCalendar
) -> None:
    assignment = {
        "application_no": "A1",
        "visit": "scheme_reply#1",
        "stage": "scheme_reply",
        "staff_id": "NY01001",
        "staff_name": "王建国",
        "unit": "41401",
        "assigned_at": "2026-11-23T09:00:30+08:00",
        "region": "41401",
        "business_type": "new_connection",
        "candidates": [{"staff_id": "NY01001", "open_tasks": 0, "capacity": 8}],
        "reason": "only one",
    }
    decision = CaseEvent(
        "h1",
        "A1",
        "/hub/workflow",
        1,
        CASE_ASSIGNED,
        datetime.fromisoformat("2026-11-23T09:00:30+08:00"),
        assignment,
        "scheme_reply#1",
    )
    state = fold_case([*STREAM[:3], decision], config, calendar)
    assert state is not None
    assert [(e.kind, e.source_system) for e in state.timeline] == [
        (TimelineKind.OPENED, "marketing"),
        (TimelineKind.FORWARD, "marketing"),
        (TimelineKind.ASSIGNED, "hub"),
        (TimelineKind.REWORK, "pms"),
    ]
    assert [entry.position for entry in state.timeline] == [0, 1, 2, 3]
    assert state.stage == "acceptance"
    assert state.assignee is None  # the assignment belonged to the scheme-reply visit that was left


def test_a_rework_records_its_cause_on_the_entry_and_on_the_visit_it_left(
    config: WorkflowConfig, calendar: WorkingCalendar
) -> None:
    events = [
        _app(1, "acceptance", "2026-11-20T09:00:00+08:00"),
        _app(2, "scheme_reply", "2026-11-23T09:00:00+08:00"),
        _app(3, "acceptance", "2026-11-24T09:00:00+08:00", rework_cause="documents_missing"),
        _app(4, "scheme_reply", "2026-11-25T09:00:00+08:00"),
        _app(5, "external_works", "2026-11-26T09:00:00+08:00"),
        _app(6, "scheme_reply", "2026-11-27T09:00:00+08:00"),  # sent back without a cause
    ]
    state = fold_case(events, config, calendar)
    assert state is not None
    assert state.rework_count == 2
    reworks = [entry for entry in state.timeline if entry.kind is TimelineKind.REWORK]
    assert [(entry.stage_from, entry.stage_to, entry.cause) for entry in reworks] == [
        ("scheme_reply", "acceptance", ReworkCause.DOCUMENTS_MISSING),
        ("external_works", "scheme_reply", None),
    ]
    assert [(visit.key, visit.exit_kind, visit.exit_cause) for visit in state.visits] == [
        ("acceptance#1", TimelineKind.FORWARD, None),
        ("scheme_reply#1", TimelineKind.REWORK, ReworkCause.DOCUMENTS_MISSING),
        ("acceptance#2", TimelineKind.FORWARD, None),
        ("scheme_reply#2", TimelineKind.FORWARD, None),
        ("external_works#1", TimelineKind.REWORK, None),
        ("scheme_reply#3", None, None),
    ]


def test_a_cause_on_a_forward_move_is_not_a_rework_cause(
    config: WorkflowConfig, calendar: WorkingCalendar
) -> None:
    # A source that keeps the last return reason on the record after the case moves on again.
    events = [
        _app(1, "acceptance", "2026-11-20T09:00:00+08:00"),
        _app(2, "scheme_reply", "2026-11-23T09:00:00+08:00", rework_cause="design_change"),
    ]
    state = fold_case(events, config, calendar)
    assert state is not None
    assert [entry.cause for entry in state.timeline] == [None, None]
    assert state.visits[0].exit_cause is None


@pytest.mark.parametrize(
    ("stage", "outcome"), [("withdrawn", CaseOutcome.WITHDRAWN), ("cancelled", CaseOutcome.CANCELLED)]
)
def test_a_closing_stage_closes_the_case_from_any_stage_with_its_outcome(
    config: WorkflowConfig, calendar: WorkingCalendar, stage: str, outcome: CaseOutcome
) -> None:
    events = [
        _app(1, "acceptance", "2026-11-20T09:00:00+08:00"),
        _app(2, "scheme_reply", "2026-11-23T09:00:00+08:00"),
        _app(3, stage, "2026-11-24T10:00:00+08:00"),
    ]
    state = fold_case(events, config, calendar)
    assert state is not None
    assert (state.stage, state.status, state.outcome) == (stage, CaseStatus.CLOSED, outcome)
    assert state.closed_at == datetime.fromisoformat("2026-11-24T10:00:00+08:00")
    last = state.timeline[-1]
    assert (last.kind, last.stage_from, last.stage_to) == (TimelineKind.CLOSED, "scheme_reply", stage)
    assert state.anomalies == [] and state.rework_count == 0
    assert state.visits[-2].exit_kind is TimelineKind.CLOSED
    assert state.visits[-1].limit_days is None and state.visits[-1].deadline is None


def test_an_open_case_has_no_outcome_and_an_archived_one_was_energised(
    config: WorkflowConfig, calendar: WorkingCalendar
) -> None:
    opened = fold_case(STREAM[:2], config, calendar)
    assert opened is not None and opened.outcome is None and opened.status is CaseStatus.OPEN
    archived = fold_case([*STREAM, _app(5, "archived", "2026-12-21T09:00:00+08:00")], config, calendar)
    assert archived is not None
    assert (archived.status, archived.outcome) == (CaseStatus.CLOSED, CaseOutcome.ENERGISED)


def test_a_change_after_a_withdrawal_is_an_anomaly_the_case_follows(
    config: WorkflowConfig, calendar: WorkingCalendar
) -> None:
    events = [
        _app(1, "acceptance", "2026-11-20T09:00:00+08:00"),
        _app(2, "withdrawn", "2026-11-23T09:00:00+08:00"),
        _app(3, "scheme_reply", "2026-11-24T09:00:00+08:00"),
        _app(4, "cancelled", "2026-11-25T09:00:00+08:00"),
    ]
    state = fold_case(events, config, calendar)
    assert state is not None
    # The source re-opened the case: it follows and flags it; the cancellation then closes it normally.
    assert [anomaly.reason for anomaly in state.anomalies] == ["the case was closed in withdrawn"]
    assert [entry.kind for entry in state.timeline] == [
        TimelineKind.OPENED,
        TimelineKind.CLOSED,
        TimelineKind.ANOMALY,
        TimelineKind.CLOSED,
    ]
    assert state.outcome is CaseOutcome.CANCELLED


def test_a_case_first_seen_withdrawn_is_closed(config: WorkflowConfig, calendar: WorkingCalendar) -> None:
    state = fold_case([_app(1, "withdrawn", "2026-11-23T09:00:00+08:00")], config, calendar)
    assert state is not None
    assert [(entry.kind, entry.stage_to) for entry in state.timeline] == [
        (TimelineKind.FIRST_SEEN, "withdrawn")
    ]
    assert state.outcome is CaseOutcome.WITHDRAWN and state.anomalies == []
