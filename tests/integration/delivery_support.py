"""Helpers for the delivery-guarantee tests: seeding the outbox and waiting for the hub to settle."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical_model.registry import schema_uri
from pipeline.outbox import stage_event
from pipeline.records import EventDraft
from store.schema import cases, inbox, outbox, timeline

APPLICATION_CHANGED = "cn.yekuo.application.changed.v1"


def application_draft(application_no: str) -> EventDraft:
    """An application.changed event as the marketing route would produce it."""
    return EventDraft(
        event_type=APPLICATION_CHANGED,
        source="/marketing/application",
        subject=application_no,
        dataschema=schema_uri("application.v1"),
        data={
            "application_no": application_no,
            "business_type": "new_connection",
            # A customer of its own: the stream is of independent applications, none a duplicate of another.
            "customer_no": f"C{application_no}",
            "requested_capacity_kva": 8.0,
            "customer_class": "lv_residential",
            "channel": "online",
            "submitted_at": "2026-11-20T09:00:00+08:00",
            "updated_at": "2026-11-20T09:00:00+08:00",
        },
        exchange="yekuo.events",
        routing_key="application.changed.lv_residential",
    )


def stage_applications(engine: Engine, count: int, prefix: str = "CH") -> list[str]:
    """Put count application events in the outbox in one transaction; return their numbers."""
    numbers = [f"{prefix}{i:07d}" for i in range(count)]
    with engine.begin() as conn:
        for number in numbers:
            stage_event(conn, application_draft(number), correlation_id=str(uuid.uuid4()))
    return numbers


def wait_for(condition: Callable[[], bool], timeout_s: float, describe: Callable[[], str]) -> None:
    """Poll condition until true; fail with describe() when the time is up."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout_s:.0f} s: {describe()}")
        time.sleep(0.25)


def counts(engine: Engine) -> dict[str, int]:
    """What took effect: cases, legacy timeline entries, inbox entries, unsent application events."""
    with engine.connect() as conn:
        return {
            "cases": conn.execute(sa.select(sa.func.count()).select_from(cases)).scalar_one(),
            # Entries caused by the legacy events; the hub adds entries of its own (alerts, assignments).
            "timeline": conn.execute(
                sa.select(sa.func.count())
                .select_from(timeline)
                .where(timeline.c.source_system == "marketing")
            ).scalar_one(),
            "inbox": conn.execute(
                sa.select(sa.func.count()).select_from(inbox).where(inbox.c.consumer == "workflow")
            ).scalar_one(),
            # The stream under test; the hub's own case alerts keep joining the outbox meanwhile.
            "unsent": conn.execute(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(outbox.c.sent_at.is_(None), outbox.c.event_type == APPLICATION_CHANGED)
            ).scalar_one(),
        }
