"""Cases open in their first stage, follow legal transitions, record anomalies and publish stage changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical_model.events import CASE_STAGE_CHANGED
from ground.errors import InvalidRecordError, SchemaViolationError
from pipeline.decoded import DecodedEvent
from store.schema import case_events, outbox, stage_visits
from workflow.cases import CaseTracker
from workflow.queries import count_cases, get_case, get_customer

from .events import application_event, customer_event, stage_report_event

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def _case(engine: Engine, application_no: str) -> dict[str, Any]:
    with engine.connect() as conn:
        case = get_case(conn, application_no, now=NOW)
    assert case is not None
    return case


def _published(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.event_type, outbox.c.routing_key, outbox.c.body).order_by(outbox.c.id)
        ).all()
    return [{"type": t, "key": k, **json.loads(body)["data"]} for t, k, body in rows]


def test_a_new_application_opens_a_case_with_a_first_timeline_entry(
    sqlite_engine: Engine, tracker: CaseTracker
) -> None:
    event = application_event("A1")
    with sqlite_engine.begin() as conn:
        tracker(conn, DecodedEvent(event))
    case = _case(sqlite_engine, "A1")
    assert case["stage"] == "acceptance"
    assert case["flow"] == "hv_single_source_4_step"
    assert case["customer_class"] == "hv_single_source"
    assert case["province"] == "henan"
    assert case["application"]["requested_capacity_kva"] == 630.0
    # 09:13:05 in Asia/Shanghai is 01:13:05 UTC, and must come back as such from SQLite.
    assert case["stage_entered_at"] == datetime(2026, 11, 20, 1, 13, 5, tzinfo=UTC)
    # Acceptance of a high-voltage 4-step flow: 2 working days after Friday 20 November.
    assert case["deadline"] == datetime(2026, 11, 24).date()
    assert case["overdue"] is True and case["working_days_left"] == -4
    [entry] = case["timeline"]
    assert entry["kind"] == "opened"
    assert entry["stage_from"] is None
    assert entry["stage_to"] == "acceptance"
    assert entry["source_system"] == "marketing"
    assert entry["source_event_id"] == event.id
    assert entry["responsible"] == "41401"
    [published] = _published(sqlite_engine)
    assert published["type"] == CASE_STAGE_CHANGED
    assert published["key"] == "case.stage_changed.hv_single_source"
    assert published["stage_to"] == "acceptance" and published["source_event_id"] == event.id


def test_an_older_update_does_not_overwrite_a_newer_one(sqlite_engine: Engine, tracker: CaseTracker) -> None:
    with sqlite_engine.begin() as conn:
        tracker(conn, DecodedEvent(application_event("A1", sequence=1, requested_capacity_kva=100.0)))
        tracker(conn, DecodedEvent(application_event("A1", sequence=3, requested_capacity_kva=300.0)))
        tracker(conn, DecodedEvent(application_event("A1", sequence=2, requested_capacity_kva=200.0)))
    with sqlite_engine.connect() as conn:
        assert count_cases(conn) == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(case_events)).scalar_one() == 3
    case = _case(sqlite_engine, "A1")
    assert case["application"]["requested_capacity_kva"] == 300.0
    assert len(case["timeline"]) == 1


def test_forward_moves_and_a_rework_are_tracked(sqlite_engine: Engine, tracker: CaseTracker) -> None:
    steps = [
        ("acceptance", "2026-11-20T09:13:05+08:00"),
        ("scheme_reply", "2026-11-23T10:00:00+08:00"),
        ("acceptance", "2026-11-24T10:00:00+08:00"),
        ("scheme_reply", "2026-11-25T10:00:00+08:00"),
    ]
    with sqlite_engine.begin() as conn:
        for sequence, (stage, at) in enumerate(steps, start=1):
            tracker(conn, DecodedEvent(application_event("A1", sequence, stage=stage, updated_at=at)))
    case = _case(sqlite_engine, "A1")
    kinds = [(e["kind"], e["stage_to"], e["visit"]) for e in case["timeline"]]
    assert kinds == [
        ("opened", "acceptance", "acceptance#1"),
        ("forward", "scheme_reply", "scheme_reply#1"),
        ("rework", "acceptance", "acceptance#2"),
        ("forward", "scheme_reply", "scheme_reply#2"),
    ]
    assert case["rework_count"] == 1
    assert case["anomaly_count"] == 0
    # Scheme reply of single-source high voltage: 15 working days from Wednesday 25 November.
    assert case["deadline"] == datetime(2026, 12, 16).date()


def test_a_rework_cause_is_stored_on_the_visit_left_and_on_the_timeline(
    sqlite_engine: Engine, tracker: CaseTracker
) -> None:
    steps = [
        ("acceptance", "2026-11-20T09:13:05+08:00", None),
        ("scheme_reply", "2026-11-23T10:00:00+08:00", None),
        ("acceptance", "2026-11-24T10:00:00+08:00", "information_error"),
        ("scheme_reply", "2026-11-25T10:00:00+08:00", None),
        ("acceptance", "2026-11-26T10:00:00+08:00", None),
    ]
    with sqlite_engine.begin() as conn:
        for sequence, (stage, at, cause) in enumerate(steps, start=1):
            extra = {"rework_cause": cause} if cause else {}
            tracker(
                conn, DecodedEvent(application_event("A1", sequence, stage=stage, updated_at=at, **extra))
            )
    with sqlite_engine.connect() as conn:
        visits = conn.execute(
            sa.select(stage_visits.c.visit, stage_visits.c.exit_kind, stage_visits.c.exit_cause)
            .where(stage_visits.c.application_no == "A1")
            .order_by(stage_visits.c.ordinal)
        ).all()
    assert [tuple(row) for row in visits] == [
        ("acceptance#1", "forward", None),
        ("scheme_reply#1", "rework", "information_error"),
        ("acceptance#2", "forward", None),
        ("scheme_reply#2", "rework", None),
        ("acceptance#3", None, None),
    ]
    case = _case(sqlite_engine, "A1")
    assert [(e["kind"], e["cause"]) for e in case["timeline"] if e["kind"] == "rework"] == [
        ("rework", "information_error"),
        ("rework", None),
    ]
    assert case["outcome"] is None and case["status"] == "open"
    rework = [p for p in _published(sqlite_engine) if p.get("kind") == "rework"]
    assert [p.get("cause") for p in rework] == ["information_error", None]


@pytest.mark.parametrize("outcome", ["withdrawn", "cancelled"])
def test_a_withdrawn_or_cancelled_case_is_closed_with_its_outcome_and_never_late(
    sqlite_engine: Engine, tracker: CaseTracker, outcome: str
) -> None:
    # Accepted 20 November, closed months later: far past the 22-day commitment, yet not missed.
    with sqlite_engine.begin() as conn:
        tracker(conn, DecodedEvent(application_event("A1", 1)))
        tracker(
            conn,
            DecodedEvent(application_event("A1", 2, stage=outcome, updated_at="2027-02-26T10:00:00+08:00")),
        )
        tracker(
            conn,
            DecodedEvent(
                application_event("A2", 1, stage="archived", updated_at="2027-02-26T10:00:00+08:00")
            ),
        )
    case = _case(sqlite_engine, "A1")
    assert (case["status"], case["stage"], case["outcome"]) == ("closed", outcome, outcome)
    assert case["closed_at"] == datetime(2027, 2, 26, 2, 0, tzinfo=UTC)
    assert case["overdue"] is False and case["at_risk"] is False
    assert case["end_to_end_status"] == outcome
    assert case["timeline"][-1]["kind"] == "closed"
    energised = _case(sqlite_engine, "A2")
    assert (energised["outcome"], energised["end_to_end_status"]) == ("energised", "missed")


def test_an_illegal_transition_is_an_anomaly_on_the_case_not_a_crash(
    sqlite_engine: Engine, tracker: CaseTracker
) -> None:
    with sqlite_engine.begin() as conn:
        tracker(conn, DecodedEvent(application_event("A1", 1)))
        skip = application_event("A1", 2, stage="energisation", updated_at="2026-11-23T10:00:00+08:00")
        tracker(conn, DecodedEvent(skip))
        foreign = application_event("A1", 3, stage="design_review", updated_at="2026-11-24T10:00:00+08:00")
        tracker(conn, DecodedEvent(foreign))
    case = _case(sqlite_engine, "A1")
    # A skip is followed (the legacy system is where the work is) and flagged.
    assert case["stage"] == "energisation"
    reasons = [(a["stage_to"], a["reason"], a["source_event_id"]) for a in case["anomalies"]]
    assert reasons == [
        ("energisation", "skips scheme_reply, external_works", skip.id),
        (
            "design_review",
            "stage 'design_review' is not part of flow hv_single_source_4_step;"
            " the case stays in energisation",
            foreign.id,
        ),
    ]
    assert case["anomaly_count"] == 2
    assert [e["kind"] for e in case["timeline"]] == ["opened", "anomaly", "anomaly"]


def test_a_stage_report_from_another_system_moves_the_case(
    sqlite_engine: Engine, tracker: CaseTracker
) -> None:
    with sqlite_engine.begin() as conn:
        tracker(conn, DecodedEvent(application_event("A1", 1)))
        tracker(
            conn,
            DecodedEvent(
                stage_report_event(
                    "A1", "scheme_reply", "2026-11-23T15:00:00+08:00", responsible="张工", note="方案已编制"
                )
            ),
        )
    [_, entry] = _case(sqlite_engine, "A1")["timeline"]
    assert (entry["kind"], entry["stage_to"], entry["source_system"]) == ("forward", "scheme_reply", "pms")
    assert (entry["responsible"], entry["note"]) == ("张工", "方案已编制")


def test_a_stage_report_before_its_application_waits_for_it(
    sqlite_engine: Engine, tracker: CaseTracker
) -> None:
    with sqlite_engine.begin() as conn:
        tracker(conn, DecodedEvent(stage_report_event("A1", "scheme_reply", "2026-11-23T15:00:00+08:00")))
        assert count_cases(conn) == 0
        tracker(conn, DecodedEvent(application_event("A1", 1)))
    assert _case(sqlite_engine, "A1")["stage"] == "scheme_reply"


def test_an_application_first_seen_mid_flow_opens_in_that_stage(
    sqlite_engine: Engine, tracker: CaseTracker
) -> None:
    with sqlite_engine.begin() as conn:
        tracker(
            conn,
            DecodedEvent(
                application_event("A1", 1, stage="external_works", updated_at="2026-11-25T10:00:00+08:00")
            ),
        )
    case = _case(sqlite_engine, "A1")
    [entry] = case["timeline"]
    assert (entry["kind"], entry["stage_to"]) == ("first_seen", "external_works")
    assert case["stage_entered_at"] == datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    assert case["opened_at"] == datetime(2026, 11, 20, 1, 13, 5, tzinfo=UTC)


def test_duplicates_change_nothing(sqlite_engine: Engine, tracker: CaseTracker) -> None:
    event = application_event("A1", 1)
    with sqlite_engine.begin() as conn:
        tracker(conn, DecodedEvent(event))
        tracker(conn, DecodedEvent(event))
    assert len(_published(sqlite_engine)) == 1
    assert len(_case(sqlite_engine, "A1")["timeline"]) == 1


def test_customer_projection_keeps_the_newest_document(sqlite_engine: Engine, tracker: CaseTracker) -> None:
    with sqlite_engine.begin() as conn:
        tracker(conn, DecodedEvent(customer_event("C1", sequence=2, name="新名称")))
        tracker(conn, DecodedEvent(customer_event("C1", sequence=1, name="旧名称")))
    with sqlite_engine.connect() as conn:
        customer = get_customer(conn, "C1")
    assert customer is not None and customer["name"] == "新名称"


def test_an_unknown_event_type_is_an_error_not_a_silent_drop(
    sqlite_engine: Engine, tracker: CaseTracker
) -> None:
    event = application_event("A1").model_copy(update={"type": "cn.yekuo.unknown.thing.v1"})
    with sqlite_engine.begin() as conn, pytest.raises(InvalidRecordError, match="no handler"):
        tracker(conn, DecodedEvent(event))


def test_an_invalid_application_document_names_the_event(sqlite_engine: Engine, tracker: CaseTracker) -> None:
    event = application_event("A1", customer_class="medium_voltage")
    with sqlite_engine.begin() as conn, pytest.raises(SchemaViolationError, match=event.id):
        tracker(conn, DecodedEvent(event))
