"""Cases open with their first stage and timeline entry, and only newer updates change them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from workflow.cases import FIRST_STAGE, handle_event
from workflow.queries import count_cases, get_case, get_customer

from .events import application_event, customer_event


def test_a_new_application_opens_a_case_with_a_first_timeline_entry(sqlite_engine: Engine) -> None:
    event = application_event("A1")
    with sqlite_engine.begin() as conn:
        handle_event(conn, event)
    with sqlite_engine.connect() as conn:
        case = get_case(conn, "A1")
    assert case is not None
    assert case["stage"] == FIRST_STAGE
    assert case["customer_class"] == "hv_single_source"
    assert case["application"]["requested_capacity_kva"] == 630.0
    # 09:13:05 in Asia/Shanghai is 01:13:05 UTC, and must come back as such from SQLite.
    assert case["stage_entered_at"] == datetime(2026, 11, 20, 1, 13, 5, tzinfo=UTC)
    [entry] = case["timeline"]
    assert entry["stage_from"] is None
    assert entry["stage_to"] == FIRST_STAGE
    assert entry["source_system"] == "marketing"
    assert entry["source_event_id"] == event.id
    assert entry["responsible"] == "41401"


def test_an_older_update_does_not_overwrite_a_newer_one(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        handle_event(conn, application_event("A1", sequence=1, requested_capacity_kva=100.0))
        handle_event(conn, application_event("A1", sequence=3, requested_capacity_kva=300.0))
        handle_event(conn, application_event("A1", sequence=2, requested_capacity_kva=200.0))
    with sqlite_engine.connect() as conn:
        case = get_case(conn, "A1")
        assert count_cases(conn) == 1
    assert case is not None
    assert case["application"]["requested_capacity_kva"] == 300.0
    assert len(case["timeline"]) == 1


def test_customer_projection_keeps_the_newest_document(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        handle_event(conn, customer_event("C1", sequence=2, name="新名称"))
        handle_event(conn, customer_event("C1", sequence=1, name="旧名称"))
    with sqlite_engine.connect() as conn:
        customer = get_customer(conn, "C1")
    assert customer is not None and customer["name"] == "新名称"


def test_an_unknown_event_type_is_an_error_not_a_silent_drop(sqlite_engine: Engine) -> None:
    event = application_event("A1").model_copy(update={"type": "cn.yekuo.unknown.thing.v1"})
    with sqlite_engine.begin() as conn, pytest.raises(ValueError, match="no handler"):
        handle_event(conn, event)
