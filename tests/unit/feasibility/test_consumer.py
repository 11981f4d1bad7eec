"""Grid, load and customer changes mark applications due; the consumer's deferred step re-checks each once."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bus import open_bus
from bus.memory import discard_broker, unique_url
from canonical_model.envelope import CloudEvent
from canonical_model.events import FEASIBILITY_ASSESSED, PROJECTION_UPDATED
from canonical_model.projection import Projection, ProjectionUpdate
from canonical_model.registry import schema_uri
from feasibility import consumer as feasibility_consumer
from feasibility.config import load_feasibility_config
from feasibility.consumer import RETRY_AFTER, FeasibilityHandler
from feasibility.service import FeasibilityService
from ground import clock
from pipeline.consumer import InboxConsumer
from pipeline.consumers import ConsumerSpec, consumer_topology
from pipeline.decoded import DecodedEvent
from store.feasibility import feasibility_rechecks, mark_due
from store.schema import outbox
from store.transaction_work import transaction_work
from tests.unit.feasibility.builders import (
    LV_UPSTREAM_PEAKS_KW,
    NOW,
    ROOT,
    application,
    lv_upstream,
    reservations,
    store_grid,
    store_peak,
    transformer,
)
from tests.unit.workflow.events import customer_event

EXCHANGE = "yekuo.events"
SPEC = ConsumerSpec("feasibility", ("projection.#",), feasibility_consumer.handle_feasibility_event)


@pytest.fixture(autouse=True)
def _hub_clock_at_now() -> Iterator[None]:
    """The builders date the load readings from NOW, so the hub's clock reads NOW too."""
    with clock.frozen_at(NOW):
        yield


@pytest.fixture
def handler(sqlite_engine: Engine) -> FeasibilityHandler:
    """Three open applications of 30 kVA on a 400 kVA transformer peaking at 150 kW: all feasible."""
    handler = FeasibilityHandler(FeasibilityService(load_feasibility_config(ROOT), clock=lambda: NOW))
    with sqlite_engine.begin() as conn:
        store_grid(conn, *lv_upstream(), transformer("T1", "F1", "S1", 50, rated_kva=400))
        store_peak(conn, "T1", 150)
        for equipment_id, peak_kw in LV_UPSTREAM_PEAKS_KW.items():
            store_peak(conn, equipment_id, peak_kw)
        for number in ("A1", "A2", "A3"):
            handler.service.assess_application(conn, application(number, 30), correlation_id="c")
    return handler


def _load_notice(equipment_id: str) -> DecodedEvent:
    update = ProjectionUpdate(
        projection=Projection.LOADS,
        equipment_id=equipment_id,
        source_event_id=str(uuid.uuid4()),
        source_event_type="cn.yekuo.load.profile.recorded.v1",
    )
    return DecodedEvent(
        CloudEvent(
            id=str(uuid.uuid4()),
            source="/hub/projection/loads",
            type=PROJECTION_UPDATED,
            subject=equipment_id,
            time=NOW,
            dataschema=schema_uri("projection_update.v1"),
            correlationid=f"notice-{uuid.uuid4()}",
            sequence=1,
            data=update.model_dump(mode="json"),
        )
    )


def _assessed(engine: Engine) -> list[tuple[str, str]]:
    """(application, verdict) of every feasibility result in the outbox, in order."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.subject, outbox.c.body)
            .where(outbox.c.event_type == FEASIBILITY_ASSESSED)
            .order_by(outbox.c.id)
        ).all()
    return [(row.subject, CloudEvent.model_validate_json(row.body).data["verdict"]) for row in rows]


def _due(conn: Connection) -> list[str]:
    return sorted(conn.execute(sa.select(feasibility_rechecks.c.application_no)).scalars())


def _clock_at(handler: FeasibilityHandler, now: datetime) -> None:
    handler.service.clock = lambda: now


def _drain_all(handler: FeasibilityHandler, engine: Engine, *, limit: int = 50) -> int:
    rounds = 0
    while handler.drain(engine, limit=limit):
        rounds += 1
    return rounds


def test_many_notices_for_one_transformer_re_assess_each_application_once(
    sqlite_engine: Engine, handler: FeasibilityHandler
) -> None:
    before = len(_assessed(sqlite_engine))
    with sqlite_engine.begin() as conn:
        store_peak(conn, "T1", 200)
    notices = [_load_notice("T1") for _ in range(40)]
    for notice in notices:
        with sqlite_engine.begin() as conn:
            handler(conn, notice)
    with sqlite_engine.connect() as conn:
        # One row per application however many notices named it; it carries the latest notice's id.
        assert _due(conn) == ["A1", "A2", "A3"]
        correlations = set(conn.execute(sa.select(feasibility_rechecks.c.correlation_id)).scalars())
    assert correlations == {notices[-1].event.correlationid}
    assert handler.drain(sqlite_engine) == 3
    assert handler.drain(sqlite_engine) == 0
    # 200 kW / 0.9 = 222.2 kVA + 30 kVA each is within 0.8 x 400 = 320 kVA: still feasible, assessed anew.
    assert Counter(subject for subject, _ in _assessed(sqlite_engine)[before:]) == {"A1": 1, "A2": 1, "A3": 1}


def test_a_re_check_whose_inputs_did_not_change_publishes_nothing(
    sqlite_engine: Engine, handler: FeasibilityHandler
) -> None:
    # A1 and A2 were assessed before the others reserved: a first change has them count what A2 and A3 hold.
    with sqlite_engine.begin() as conn:
        handler(conn, _load_notice("T1"))
    assert handler.drain(sqlite_engine) == 3
    published = _assessed(sqlite_engine)
    with sqlite_engine.begin() as conn:
        kept = dict(
            conn.execute(sa.text("SELECT application_no, event_id FROM feasibility_assessments")).all()
        )
        handler(conn, _load_notice("T1"))
    assert handler.drain(sqlite_engine) == 3
    assert _assessed(sqlite_engine) == published
    with sqlite_engine.connect() as conn:
        assert _due(conn) == []
        # The kept results are the same ones, with their reservations.
        assert (
            dict(conn.execute(sa.text("SELECT application_no, event_id FROM feasibility_assessments")).all())
            == kept
        )
        assert reservations(conn) == [("A1", "T1", 30.0), ("A2", "T1", 30.0), ("A3", "T1", 30.0)]


def test_a_changed_reading_gives_the_new_verdict_and_reservations(
    sqlite_engine: Engine, handler: FeasibilityHandler
) -> None:
    before = len(_assessed(sqlite_engine))
    # 380 kW / 0.9 = 422 kVA: T1 is past its 400 kVA rating and takes no more load; nothing stays promised.
    with sqlite_engine.begin() as conn:
        store_peak(conn, "T1", 380)
        handler(conn, _load_notice("T1"))
    assert _drain_all(handler, sqlite_engine) == 1
    assert _assessed(sqlite_engine)[before:] == [
        ("A1", "not_feasible"),
        ("A2", "not_feasible"),
        ("A3", "not_feasible"),
    ]
    with sqlite_engine.connect() as conn:
        assert reservations(conn) == []


def test_a_customer_record_marks_its_open_applications_due(
    sqlite_engine: Engine, handler: FeasibilityHandler
) -> None:
    record = customer_event("CA2", 1, contract_capacity_kva=50.0)
    with sqlite_engine.begin() as conn:
        handler(conn, DecodedEvent(record))
        assert _due(conn) == ["A2"]
    assert handler.drain(sqlite_engine) == 1
    with sqlite_engine.connect() as conn:
        assert _due(conn) == []


def test_a_failed_re_check_leaves_its_applications_due_for_the_next(
    sqlite_engine: Engine, handler: FeasibilityHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _assessed(sqlite_engine)
    with sqlite_engine.begin() as conn:
        store_peak(conn, "T1", 380)
        handler(conn, _load_notice("T1"))
    reassess = handler.service.reassess

    def fails_after_the_work(conn: Connection, *args: Any, **kwargs: Any) -> int:
        reassess(conn, *args, **kwargs)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(handler.service, "reassess", fails_after_the_work)
    # The batch, then each application alone, fail after their work: none was cleared.
    assert handler.drain(sqlite_engine) == 0
    # Rolled back whole: nothing published, every application still due.
    assert _assessed(sqlite_engine) == before
    with sqlite_engine.connect() as conn:
        assert _due(conn) == ["A1", "A2", "A3"]
    monkeypatch.setattr(handler.service, "reassess", reassess)
    _clock_at(handler, NOW + RETRY_AFTER)
    assert _drain_all(handler, sqlite_engine) == 1
    assert _assessed(sqlite_engine)[len(before) :] == [
        ("A1", "not_feasible"),
        ("A2", "not_feasible"),
        ("A3", "not_feasible"),
    ]


def test_a_drain_takes_at_most_its_batch_and_the_longest_due_first(
    sqlite_engine: Engine, handler: FeasibilityHandler
) -> None:
    with sqlite_engine.begin() as conn:
        store_peak(conn, "T1", 200)
        mark_due(conn, {"A3": "first"}, since=NOW - timedelta(minutes=9))
        mark_due(conn, {"A1": "later", "A2": "later"}, since=NOW - timedelta(minutes=5))
        # Marked again: it keeps the time it was first due.
        mark_due(conn, {"A3": "again"}, since=NOW)
    assert handler.drain(sqlite_engine, limit=2) == 2
    with sqlite_engine.connect() as conn:
        assert _due(conn) == ["A2"]
    assert handler.drain(sqlite_engine, limit=2) == 1


def test_an_application_whose_re_check_fails_stays_due_without_holding_back_the_others(
    sqlite_engine: Engine, handler: FeasibilityHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = len(_assessed(sqlite_engine))
    with sqlite_engine.begin() as conn:
        store_peak(conn, "T1", 380)
        handler(conn, _load_notice("T1"))
    reassess = handler.service.reassess

    def fails_on_a2(conn: Connection, application_nos: Any, **kwargs: Any) -> int:
        if "A2" in application_nos:
            raise ValueError("A2's kept application no longer reads")
        return reassess(conn, application_nos, **kwargs)

    monkeypatch.setattr(handler.service, "reassess", fails_on_a2)
    assert handler.drain(sqlite_engine) == 2
    assert _assessed(sqlite_engine)[before:] == [("A1", "not_feasible"), ("A3", "not_feasible")]
    with sqlite_engine.connect() as conn:
        assert _due(conn) == ["A2"]
    monkeypatch.setattr(handler.service, "reassess", reassess)
    # Postponed: not tried again before its wait is over.
    _clock_at(handler, NOW + RETRY_AFTER - timedelta(seconds=1))
    assert handler.drain(sqlite_engine) == 0
    _clock_at(handler, NOW + RETRY_AFTER)
    assert _drain_all(handler, sqlite_engine) == 1
    assert _assessed(sqlite_engine)[before:][-1] == ("A2", "not_feasible")


def test_an_application_that_always_fails_leaves_the_consumer_idle_and_stays_due(
    sqlite_engine: Engine, handler: FeasibilityHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = len(_assessed(sqlite_engine))
    with sqlite_engine.begin() as conn:
        store_peak(conn, "T1", 380)
        handler(conn, _load_notice("T1"))
    reassess = handler.service.reassess

    def fails_on_a2(conn: Connection, application_nos: Any, **kwargs: Any) -> int:
        if "A2" in application_nos:
            raise ValueError("A2's kept application no longer reads")
        return reassess(conn, application_nos, **kwargs)

    monkeypatch.setattr(handler.service, "reassess", fails_on_a2)
    url = unique_url("feasibility")
    bus = open_bus(url)
    try:
        bus.declare(consumer_topology([EXCHANGE], [SPEC]))
        consumer = InboxConsumer(
            sqlite_engine, bus, queue=SPEC.queue, name=SPEC.name, handler=handler, deferred=handler.drain
        )
        # The others are cleared; A2 alone is left, and no step finds work in it while it waits.
        assert consumer.work_once(timeout_s=0) is True
        assert consumer.work_once(timeout_s=0) is False
        # Its wait over, it is tried again, fails again, and still leaves the consumer idle.
        _clock_at(handler, NOW + RETRY_AFTER)
        assert consumer.work_once(timeout_s=0) is False
        assert consumer.work_once(timeout_s=0) is False
    finally:
        bus.close()
        discard_broker(url)
    assert _assessed(sqlite_engine)[before:] == [("A1", "not_feasible"), ("A3", "not_feasible")]
    with sqlite_engine.connect() as conn:
        assert _due(conn) == ["A2"]
        (postponed,) = conn.execute(sa.select(feasibility_rechecks.c.due_since)).scalars()
    assert postponed == NOW + 2 * RETRY_AFTER


def test_a_consumer_batch_marks_each_application_once_at_its_end_however_many_of_its_notices_name_it(
    sqlite_engine: Engine, handler: FeasibilityHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    marked: list[list[str]] = []
    monkeypatch.setattr(
        feasibility_consumer,
        "mark_due",
        lambda conn, marks, **kwargs: (marked.append(list(marks)), mark_due(conn, marks, **kwargs)),
    )
    first, second = _load_notice("T1"), _load_notice("T1")
    with sqlite_engine.connect() as conn, transaction_work(conn) as work:
        handler(conn, first)
        handler(conn, second)
        assert marked == []
        work.finish(conn)
        conn.commit()
    assert marked == [["A1", "A2", "A3"]]
    with sqlite_engine.connect() as conn:
        correlations = set(conn.execute(sa.select(feasibility_rechecks.c.correlation_id)).scalars())
    assert correlations == {first.event.correlationid}
