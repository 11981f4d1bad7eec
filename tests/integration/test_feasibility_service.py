"""Feasibility on the hub database (SQLite): reservations, stale data, triggers, kept results, the API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.context import ApiContext, install_context
from api.feasibility import router as feasibility_router
from canonical_model.application import ConnectionApplication
from canonical_model.envelope import CloudEvent
from canonical_model.events import APPLICATION_CHANGED, FEASIBILITY_ASSESSED, PROJECTION_UPDATED
from canonical_model.feasibility import FeasibilityAssessment, RuleResult, Verdict
from canonical_model.projection import Projection, ProjectionUpdate
from canonical_model.registry import schema_uri
from feasibility.config import load_feasibility_config
from feasibility.consumer import TOPICS, FeasibilityHandler
from feasibility.service import FeasibilityService
from ground import clock
from pipeline.decoded import DecodedEvent
from store.schema import outbox
from tests.unit.feasibility.builders import (
    LV_UPSTREAM_PEAKS_KW,
    NOW,
    ROOT,
    TODAY,
    application,
    lv_upstream,
    reservations,
    store_grid,
    store_peak,
    transformer,
)
from workflow.grid import handle_grid_event
from yekuo.consumers import CONSUMERS

CONFIG = load_feasibility_config(ROOT)


@pytest.fixture(autouse=True)
def _hub_clock_at_now() -> Iterator[None]:
    """The builders date the load readings from NOW, so every part of the hub (the API too) reads NOW."""
    with clock.frozen_at(NOW):
        yield


@pytest.fixture
def service() -> FeasibilityService:
    return FeasibilityService(CONFIG, clock=lambda: NOW)


@pytest.fixture
def grid(sqlite_engine: Engine) -> Engine:
    """A 400 kVA public transformer 50 m from the site, peaking at 150 kW, on a lightly loaded feeder."""
    with sqlite_engine.begin() as conn:
        store_grid(conn, *lv_upstream(), transformer("T1", "F1", "S1", 50, rated_kva=400))
        store_peak(conn, "T1", 150)
        for equipment_id, peak_kw in LV_UPSTREAM_PEAKS_KW.items():
            store_peak(conn, equipment_id, peak_kw)
    return sqlite_engine


def _event(event_type: str, subject: str, data: dict[str, Any], schema: str) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/test",
        type=event_type,
        subject=subject,
        time=datetime.now(UTC),
        dataschema=schema_uri(schema),
        correlationid=str(uuid.uuid4()),
        sequence=1,
        data=data,
    )


def _load_update(equipment_id: str) -> CloudEvent:
    """The loads consumer's notice that a profile of the equipment was stored."""
    update = ProjectionUpdate(
        projection=Projection.LOADS,
        equipment_id=equipment_id,
        source_event_id=str(uuid.uuid4()),
        source_event_type="cn.yekuo.load.profile.recorded.v1",
    )
    return _event(PROJECTION_UPDATED, equipment_id, update.model_dump(mode="json"), "projection_update.v1")


def _outbox_events(engine: Engine, event_type: str) -> list[CloudEvent]:
    with engine.connect() as conn:
        bodies = conn.execute(sa.select(outbox.c.body).where(outbox.c.event_type == event_type)).scalars()
        return [CloudEvent.model_validate_json(body) for body in bodies]


def _application_event(app: ConnectionApplication) -> CloudEvent:
    return _event(APPLICATION_CHANGED, app.application_no, app.model_dump(mode="json"), "application.v1")


def _published(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.event_type, outbox.c.subject, outbox.c.routing_key).order_by(outbox.c.id)
        )
        return [tuple(row) for row in rows]


def test_the_second_of_two_competing_applications_is_not_told_feasible(
    grid: Engine, service: FeasibilityService
) -> None:
    # Headroom: 400 kVA x 0.8 - 150 kW / 0.9 = 320 - 166.67 = 153.33 kVA; each asks 100 kVA (90 kW, 0.38 kV).
    with grid.begin() as conn:
        first = service.assess_application(conn, application("A1", 100), correlation_id="c1")
    with grid.begin() as conn:
        second = service.assess_application(conn, application("A2", 100), correlation_id="c2")
    assert first.assessment.verdict is Verdict.FEASIBLE
    assert first.reserved_kva == 100
    # A2 sees A1's 100 kVA: (166.67 + 100 + 100) / 400 = 0.917 > 0.8
    assert second.assessment.verdict is Verdict.NEEDS_REINFORCEMENT
    rate = next(c for c in second.assessment.trace if c.rule == "transformer_load_rate")
    assert rate.inputs["reserved_kva"] == 100
    assert rate.result is RuleResult.FAIL
    assert second.reserved_kva == 0
    with grid.connect() as conn:
        assert reservations(conn) == [("A1", "T1", 100.0)]


def test_re_assessing_an_application_does_not_count_its_own_reservation(
    grid: Engine, service: FeasibilityService
) -> None:
    for _ in range(2):
        with grid.begin() as conn:
            outcome = service.assess_application(conn, application("A1", 140), correlation_id="c")
        # (166.67 + 140) / 400 = 0.767 <= 0.8 both times
        assert outcome.assessment.verdict is Verdict.FEASIBLE
    with grid.connect() as conn:
        assert reservations(conn) == [("A1", "T1", 140.0)]


def test_stale_load_data_gives_insufficient_data(sqlite_engine: Engine, service: FeasibilityService) -> None:
    with sqlite_engine.begin() as conn:
        store_grid(conn, transformer("T1", "F1", "S1", 50))
        store_peak(conn, "T1", 150, day=TODAY - timedelta(days=8))  # max age is 7 days
        outcome = service.assess_application(conn, application("A1", 100), correlation_id="c")
    assessment = outcome.assessment
    # Stale data is no basis for a promise: the verdict says so and nothing is reserved.
    assert assessment.verdict is Verdict.INSUFFICIENT_DATA
    condition = assessment.conditions[0]
    assert condition.code == "insufficient_data"
    assert "stale: latest profile is of 2026-11-12, before 2026-11-13" in condition.detail
    assert outcome.reserved_kva == 0
    with sqlite_engine.connect() as conn:
        assert reservations(conn) == []
    assert (
        next(c for c in assessment.trace if c.rule == "transformer_load_rate").result
        is RuleResult.INSUFFICIENT_DATA
    )


def test_a_day_with_too_few_good_points_is_not_used(
    sqlite_engine: Engine, service: FeasibilityService
) -> None:
    with sqlite_engine.begin() as conn:
        store_grid(conn, transformer("T1", "F1", "S1", 50))
        store_peak(conn, "T1", 150, good=40)  # 40 < 72 good points of 96
        outcome = service.assess_application(conn, application("A1", 100), correlation_id="c")
    assert "incomplete: at most 40 good points" in outcome.assessment.conditions[0].detail


def test_the_flagged_points_never_count_toward_the_peak(
    sqlite_engine: Engine, service: FeasibilityService
) -> None:
    with sqlite_engine.begin() as conn:
        store_grid(conn, transformer("T1", "F1", "S1", 50))
        store_peak(conn, "T1", 150, good=90)  # 6 invalid points at 1350 kW are ignored
        outcome = service.assess_application(conn, application("A1", 100), correlation_id="c")
    assert outcome.assessment.schemes[0].sources[0].peak_load_kva == pytest.approx(166.667, abs=0.001)


def test_the_consumer_assesses_publishes_reassesses_and_releases(
    grid: Engine, service: FeasibilityService
) -> None:
    handler = FeasibilityHandler(service)
    with grid.begin() as conn:
        handler(conn, DecodedEvent(_application_event(application("A1", 100))))
    assert _published(grid) == [(FEASIBILITY_ASSESSED, "A1", "feasibility.assessed.feasible")]
    # A new profile of the transformer it used runs the assessment again: 270 kW / 0.9 = 300 kVA is within
    # 0.8 x 400 = 320 kVA before the request, and 300 + 100 = 400 > 320 after it: the request itself needs
    # reinforcement.
    with grid.begin() as conn:
        store_peak(conn, "T1", 270)
        handler(conn, DecodedEvent(_load_update("T1")))
    # The notice marks A1 due; the consumer's deferred step re-checks it.
    assert handler.drain(grid) == 1
    assert _published(grid)[-1] == (FEASIBILITY_ASSESSED, "A1", "feasibility.assessed.needs_reinforcement")
    with grid.connect() as conn:
        assert reservations(conn) == []
        kept = service.stored(conn, "A1")
    assert kept is not None and kept["verdict"] == "needs_reinforcement"
    with grid.begin() as conn:
        store_peak(conn, "T1", 150)
        handler(conn, DecodedEvent(_load_update("T1")))
    assert handler.drain(grid) == 1
    with grid.connect() as conn:
        assert reservations(conn) == [("A1", "T1", 100.0)]
    with grid.begin() as conn:
        handler(conn, DecodedEvent(_application_event(application("A1", 100, stage="energisation"))))
    with grid.connect() as conn:
        # Energised: the capacity stays promised until the new load shows in T1's measured peaks.
        assert reservations(conn) == [("A1", "T1", 100.0)]
    # Once energised, grid changes no longer re-run it.
    count = len(_published(grid))
    with grid.begin() as conn:
        handler(conn, DecodedEvent(_load_update("T1")))
    assert handler.drain(grid) == 0
    assert len(_published(grid)) == count


def test_a_new_transformer_near_an_open_site_reassesses_it(
    sqlite_engine: Engine, service: FeasibilityService
) -> None:
    handler = FeasibilityHandler(service)
    with sqlite_engine.begin() as conn:
        handler(conn, DecodedEvent(_application_event(application("A1", 100))))
    assert _published(sqlite_engine)[-1][2] == "feasibility.assessed.not_feasible"
    new = transformer("T9", "F1", "S1", 80)
    with sqlite_engine.begin() as conn:
        store_grid(conn, *lv_upstream(), new)
        store_peak(conn, "T9", 100)
        for equipment_id, peak_kw in LV_UPSTREAM_PEAKS_KW.items():
            store_peak(conn, equipment_id, peak_kw)
    # The grid consumer stores the new transformer and announces it once stored; the notice re-runs the check.
    data = new.model_dump(mode="json", exclude_none=True)
    with sqlite_engine.begin() as conn:
        handle_grid_event(
            conn,
            DecodedEvent(
                _event("cn.yekuo.grid.transformer.changed.v1", "T9", data, "distribution_transformer.v1")
            ),
        )
    (notice,) = _outbox_events(sqlite_engine, PROJECTION_UPDATED)
    assert (notice.subject, notice.data["equipment_kind"]) == ("T9", "transformer")
    with sqlite_engine.begin() as conn:
        handler(conn, DecodedEvent(notice))
    assert handler.drain(sqlite_engine) == 1
    assert _published(sqlite_engine)[-1][2] == "feasibility.assessed.feasible"


def test_the_consumer_binds_every_key_it_publishes() -> None:
    spec = next(spec for spec in CONSUMERS if spec.name == "feasibility")
    assert spec.topics == TOPICS
    assert "feasibility.#" in spec.topics and "application.#" in spec.topics and "projection.#" in spec.topics
    # Source grid and load events reach it only as the projections' notices, after they are stored.
    assert not any(topic.startswith(("grid.", "load.")) for topic in spec.topics)


def test_the_api_serves_kept_assessments_and_previews_without_reserving(
    grid: Engine, service: FeasibilityService
) -> None:
    app = FastAPI()
    install_context(app, ApiContext(grid, feasibility_rules=CONFIG))
    app.include_router(feasibility_router)
    client = TestClient(app)
    assert client.get("/v1/applications/A1/feasibility").status_code == 404
    with grid.begin() as conn:
        service.assess_application(conn, application("A1", 100), correlation_id="c")
    body = client.get("/v1/applications/A1/feasibility").json()
    assessment = FeasibilityAssessment.model_validate(body)
    assert assessment.verdict is Verdict.FEASIBLE
    assert [c.rule for c in assessment.trace] == [
        "supply_voltage",
        "connection_point_search",
        "request_increment",
        "load_basis",
        "transformer_load_rate",
        "feeder_capacity",
        "load_basis",
        "feeder_load_rate",
        "feeder_n_minus_1",
        "load_basis",
        "load_basis",
        "main_transformer_n_minus_1",
        "supply_radius",
    ]
    preview = {
        "requested_capacity_kva": 100,
        "customer_class": "lv_non_residential",
        "urban_rural": "urban",
        "site_location": application("x", 1).site_location.model_dump(),  # type: ignore[union-attr]
    }
    # The preview sees A1's 100 kVA at simultaneity 0.8: 166.67 + 80 + 100 = 346.67 > 0.8 x 400 = 320, and it
    # reserves nothing itself.
    for _ in range(2):
        answer = client.post("/v1/feasibility/preview", json=preview)
        assert answer.status_code == 200
        assert answer.json()["verdict"] == "needs_reinforcement"
        assert "application_no" not in answer.json()
    with grid.connect() as conn:
        assert reservations(conn) == [("A1", "T1", 100.0)]
    assert client.post("/v1/feasibility/preview", json={**preview, "province": "mars"}).status_code == 422
    assert (
        client.post("/v1/feasibility/preview", json={**preview, "requested_capacity_kva": -1}).status_code
        == 422
    )
