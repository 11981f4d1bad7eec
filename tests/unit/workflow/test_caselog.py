"""The case feed keeps each case event the hub publishes once, and refuses other events."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical_model.envelope import CloudEvent
from ground.errors import InvalidRecordError
from pipeline.decoded import DecodedEvent
from store.schema import outbox
from workflow.caselog import case_feed_of, record_case_event
from workflow.cases import CaseTracker

from .events import application_event


def test_published_case_events_land_in_the_feed_once(sqlite_engine: Engine, tracker: CaseTracker) -> None:
    with sqlite_engine.begin() as conn:
        tracker(conn, DecodedEvent(application_event("A1", 1)))
        tracker(
            conn,
            DecodedEvent(
                application_event("A1", 2, stage="scheme_reply", updated_at="2026-11-23T09:00:00+08:00")
            ),
        )
    with sqlite_engine.connect() as conn:
        bodies = conn.execute(sa.select(outbox.c.body).order_by(outbox.c.id)).scalars().all()
    events = [CloudEvent.model_validate(json.loads(body)) for body in bodies]
    with sqlite_engine.begin() as conn:
        for event in [*events, events[0]]:
            record_case_event(conn, DecodedEvent(event))
    with sqlite_engine.connect() as conn:
        feed = case_feed_of(conn, "A1")
    assert [(item["type"], item["stage"]) for item in feed] == [
        ("cn.yekuo.case.stage_changed.v1", "acceptance"),
        ("cn.yekuo.case.stage_changed.v1", "scheme_reply"),
    ]
    assert feed[1]["data"]["stage_from"] == "acceptance"


def test_the_feed_takes_case_events_only(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn, pytest.raises(InvalidRecordError, match="case events only"):
        record_case_event(conn, DecodedEvent(application_event("A1")))
