"""The hub writes into the marketing system durably: online submissions and stage write-backs.

A submitted application reaches the simulator once even when its first attempts fail (a soap:Server
fault, then answers lost after the application was created); the case is then tracked under the returned
application number. Stage changes other systems report are written back once, and the change that comes
back from the marketing system is not written back again. Feasibility results are recorded there as well.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from canonical_model.events import FEASIBILITY_ASSESSED, STAGE_REPORTED
from canonical_model.registry import schema_uri
from pipeline.outbox import stage_event
from pipeline.records import EventDraft
from simulators.marketing.faults import Fault, FaultPlan, FaultRule
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import LEGACY_TIME_FORMAT, MarketingWorld, status_flow
from store.schema import timeline
from store.submissions import marketing_writebacks, writebacks_of
from tests.integration.marketing_pipeline import (
    MarketingPipeline,
    case_numbers,
    fast_client,
    marketing_pipeline,
)
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer

SHANGHAI = ZoneInfo("Asia/Shanghai")
STAGE = {
    "01": "acceptance",
    "03": "scheme_reply",
    "04": "external_works",
    "09": "energisation",
    "10": "archived",
}
SUBMISSION = {
    "business_type": "new_connection",
    "requested_capacity_kva": 12,
    "customer_class": "lv_residential",
    "site_address": "南阳市卧龙区人民路8号",
    "org_no": "41401",
    "customer": {
        "name": "张伟",
        "category": "residential",
        "identity_document": {"type": "resident_id", "number": "411303199001011234"},
        "contacts": [{"name": "张伟", "phone": "13803770001", "role": "01"}],
    },
}


@pytest.fixture
def world() -> MarketingWorld:
    return generate_world(seed=91, customers=20, applications=30)


def test_a_submission_reaches_the_simulator_once_although_its_first_attempts_fail(
    world: MarketingWorld, sqlite_engine: Engine
) -> None:
    before = world.application_count
    plan = FaultPlan(
        [
            FaultRule(Fault.SERVER_FAULT, "CreateApplication", 1, 1),
            FaultRule(Fault.TIMEOUT, "CreateApplication", 2, 2, delay_s=1.5),
            FaultRule(Fault.CONNECTION_RESET, "CreateApplication", 3, 3),
        ]
    )
    api = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH), headers=bearer("integrator", "viewer"))
    accepted = api.post("/v1/applications", json=SUBMISSION, headers={"Idempotency-Key": "platform-42"})
    assert accepted.status_code == 202
    tracking_id = accepted.json()["tracking_id"]
    with (
        SimulatorServer(world, faults=plan) as simulator,
        marketing_pipeline(sqlite_engine, fast_client(simulator.wsdl_url, timeout_s=0.5)) as pipeline,
    ):
        pipeline.write_until_idle()
        pipeline.sync()
        created = world.created_applications()
    assert plan.count("CreateApplication") == 4
    assert len(created) == 1 and world.application_count == before + 1
    assert world.created_by(tracking_id) == created[0]
    view = api.get(f"/v1/submissions/{tracking_id}").json()
    assert (view["status"], view["application_no"], view["attempts"], view["case_tracked"]) == (
        "submitted",
        created[0],
        2,
        True,
    )
    case = api.get(f"/v1/applications/{created[0]}").json()
    assert (case["stage"], case["application"]["channel"]) == ("acceptance", "online")
    assert created[0] in case_numbers(sqlite_engine)
    replay = api.post("/v1/applications", json=SUBMISSION, headers={"Idempotency-Key": "platform-42"})
    assert replay.json()["tracking_id"] == tracking_id


def _report_stage(engine: Engine, app_no: str, stage: str, at: datetime) -> None:
    with engine.begin() as conn:
        stage_event(
            conn,
            EventDraft(
                event_type=STAGE_REPORTED,
                source="/pms/work_order",
                subject=app_no,
                dataschema=schema_uri("stage_report.v1"),
                data={
                    "application_no": app_no,
                    "stage": stage,
                    "at": at.isoformat(),
                    "responsible": "PMS 配电班",
                },
                exchange="yekuo.events",
                routing_key="application.stage_reported.pms",
            ),
            correlation_id=str(uuid.uuid4()),
        )


def _entries(engine: Engine, app_no: str) -> list[tuple[str, str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(timeline.c.kind, timeline.c.source_system, timeline.c.stage_to)
            .where(timeline.c.application_no == app_no)
            .order_by(timeline.c.position)
        ).all()
    return [(row.kind, row.source_system, row.stage_to) for row in rows]


@pytest.fixture
def synced(
    world: MarketingWorld, sqlite_engine: Engine
) -> Iterator[tuple[SimulatorServer, MarketingPipeline]]:
    with (
        SimulatorServer(world) as simulator,
        marketing_pipeline(sqlite_engine, fast_client(simulator.wsdl_url)) as pipeline,
    ):
        pipeline.sync()
        yield simulator, pipeline


def _open_two_step(world: MarketingWorld, count: int) -> list[str]:
    return [
        row["APP_NO"]
        for row in world.all_applications()
        if status_flow(row) == ("01", "09", "10") and row["STATUS_CODE"] == "01"
    ][:count]


def test_a_stage_reported_by_pms_is_written_back_once_and_not_echoed(
    world: MarketingWorld, sqlite_engine: Engine, synced: tuple[SimulatorServer, MarketingPipeline]
) -> None:
    _, pipeline = synced
    reported, moved_by_marketing = _open_two_step(world, 2)
    newest = world.latest_update_time()
    assert newest is not None
    at = datetime.strptime(newest, LEGACY_TIME_FORMAT).replace(tzinfo=SHANGHAI)
    _report_stage(sqlite_engine, reported, "energisation", at)
    world.advance(moved_by_marketing)
    pipeline.sync()
    pipeline.write_until_idle()
    written = world.stage_writes(reported)
    assert [(write.status_code, write.applied, write.changed_at) for write in written] == [
        ("09", True, at.strftime(LEGACY_TIME_FORMAT))
    ]
    assert world.stage_writes(moved_by_marketing) == []
    # The marketing system now reports the stage it was told; that must change nothing and go nowhere.
    pipeline.sync()
    pipeline.write_until_idle()
    assert len(world.stage_writes()) == 1
    with sqlite_engine.connect() as conn:
        [writeback] = writebacks_of(conn, reported)
        total = conn.execute(sa.select(sa.func.count()).select_from(marketing_writebacks)).scalar_one()
    assert (writeback["status"], writeback["operation"], total) == ("done", "UpdateApplicationStage", 1)
    assert _entries(sqlite_engine, reported) == [
        ("opened", "marketing", "acceptance"),
        ("forward", "pms", "energisation"),
    ]
    assert _entries(sqlite_engine, moved_by_marketing)[-1] == ("forward", "marketing", "energisation")


def test_a_refused_write_back_fails_with_its_reason_and_the_others_are_written(
    world: MarketingWorld, sqlite_engine: Engine
) -> None:
    refused, accepted = _open_two_step(world, 2)
    plan = FaultPlan([FaultRule(Fault.BUSINESS_FAULT, "UpdateApplicationStage", app_no=refused)])
    newest = world.latest_update_time()
    assert newest is not None
    at = datetime.strptime(newest, LEGACY_TIME_FORMAT).replace(tzinfo=SHANGHAI)
    with (
        SimulatorServer(world, faults=plan) as simulator,
        marketing_pipeline(sqlite_engine, fast_client(simulator.wsdl_url)) as pipeline,
    ):
        pipeline.sync()
        for app_no in (refused, accepted):
            _report_stage(sqlite_engine, app_no, "energisation", at)
        pipeline.sync()
        pipeline.write_until_idle()
    with sqlite_engine.connect() as conn:
        [failed] = writebacks_of(conn, refused)
        [done] = writebacks_of(conn, accepted)
    assert failed["status"] == "failed" and "业务校验不通过" in failed["reason"]
    assert done["status"] == "done"
    assert plan.count("UpdateApplicationStage", Fault.BUSINESS_FAULT) == 1, "a business fault is not retried"
    assert [write.app_no for write in world.stage_writes()] == [accepted]


def test_a_feasibility_result_is_recorded_in_the_marketing_system_once(
    world: MarketingWorld, sqlite_engine: Engine, synced: tuple[SimulatorServer, MarketingPipeline]
) -> None:
    _, pipeline = synced
    app_no = world.all_applications()[0]["APP_NO"]
    assessment = {
        "application_no": app_no,
        "province": "henan",
        "assessed_at": "2026-12-01T02:00:00+00:00",
        "requested_capacity_kva": 630.0,
        "verdict": "feasible",
        "recommended_voltage_kv": 10.0,
        "reserved_kva": 630.0,
    }
    with sqlite_engine.begin() as conn:
        event = stage_event(
            conn,
            EventDraft(
                event_type=FEASIBILITY_ASSESSED,
                source="/hub/feasibility",
                subject=app_no,
                dataschema=schema_uri("feasibility_assessment.v1"),
                data=assessment,
                exchange="yekuo.events",
                routing_key="feasibility.assessed.feasible",
            ),
            correlation_id=str(uuid.uuid4()),
        )
    pipeline.deliver()
    pipeline.write_until_idle()
    pipeline.write_until_idle()
    [result] = world.feasibility_results(app_no)
    assert (result.request_id, result.verdict_code, result.supply_volt_code, result.assessed_at) == (
        event.id,
        "01",
        "AC00101",
        "2026-12-01 10:00:00",
    )
