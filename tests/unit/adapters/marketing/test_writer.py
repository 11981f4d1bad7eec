"""Tests of the marketing writer: submissions and write-backs sent durably, retried, refused or held back.

Every test fixes the hub's clock: the writer and the submission store both read it, so the rows a test
stamps are due exactly when the test says, on any calendar date.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from adapters.marketing.breaker import CircuitBreaker, CircuitOpenError
from adapters.marketing.client import CallPolicy
from adapters.marketing.wiring import build_marketing
from adapters.marketing.writer import MarketingWriter, WriterPolicy
from api.context import ApiContext, install_context
from api.submissions import router as submissions_router
from ground.clock import FixedClock, frozen_at
from ground.errors import ConfigError, SourceUnavailableError
from ground.settings import MarketingSettings
from simulators.marketing.faults import Fault, FaultPlan, FaultRule
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import MarketingWorld, status_flow
from store.submissions import (
    add_submission,
    add_writeback,
    get_submission,
    marketing_push,
    writebacks_of,
)
from tests.unit.adapters.marketing.conftest import NO_WAIT, START, quick_client

ONLINE = {
    "business_type": "new_connection",
    "requested_capacity_kva": 8,
    "customer_class": "lv_residential",
    "site_address": "南阳市卧龙区人民路8号",
    "org_no": "41401",
}
APPLICATION = {
    "BUSI_TYPE_CODE": "101",
    "APPLY_CAP": 8.0,
    "CUST_CLASS_CODE": "01",
    "ELEC_ADDR": "南阳市卧龙区人民路8号",
    "CHANNEL_CODE": "02",
    "ORG_NO": "41401",
}
CUSTOMER = {
    "CONS_NAME": "张伟",
    "ELEC_TYPE_CODE": "100",
    "CERT_TYPE_CODE": "01",
    "CERT_NO": "411303199001011234",
    "CONTACTS": [{"CONTACT_NAME": "张伟", "MOBILE": "13803770001"}],
}


NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def world() -> MarketingWorld:
    return generate_world(seed=71, customers=10, applications=12, start=START)


@pytest.fixture(autouse=True)
def clock() -> Iterator[FixedClock]:
    with frozen_at(NOW) as fixed:
        yield fixed


def _serve(world: MarketingWorld, *rules: FaultRule) -> SimulatorServer:
    return SimulatorServer(world, faults=FaultPlan(rules))


def _writer(engine: Engine, server: SimulatorServer, **options: Any) -> MarketingWriter:
    breaker = options.pop("breaker", None)
    policy = WriterPolicy(initial_backoff_s=10, max_backoff_s=60, **options)
    client = quick_client(
        server.wsdl_url, breaker=breaker or CircuitBreaker("marketing", failure_threshold=100)
    )
    return MarketingWriter(engine, client, policy=policy, rng=random.Random(1))


def _submit(engine: Engine, tracking_id: str, **application: Any) -> None:
    with engine.begin() as conn:
        add_submission(
            conn,
            tracking_id=tracking_id,
            idempotency_key=None,
            request_hash="h",
            request={},
            arguments={"application": {**APPLICATION, **application}, "customer": CUSTOMER},
        )


def _status(engine: Engine, tracking_id: str) -> tuple[str, str | None, int]:
    with engine.connect() as conn:
        submission = get_submission(conn, tracking_id)
    assert submission is not None
    return submission.status, submission.application_no, submission.attempts


@pytest.fixture
def running(world: MarketingWorld) -> Iterator[SimulatorServer]:
    with _serve(world) as server:
        yield server


def test_a_submission_is_created_and_its_application_fetched_into_the_push_inbox(
    sqlite_engine: Engine, running: SimulatorServer
) -> None:
    _submit(sqlite_engine, "t-1")
    writer = _writer(sqlite_engine, running)
    assert writer.step() is True
    status, app_no, attempts = _status(sqlite_engine, "t-1")
    assert (status, attempts) == ("submitted", 1)
    assert app_no == running.world.created_by("t-1")
    with sqlite_engine.connect() as conn:
        pushed = conn.execute(sa.select(marketing_push)).one()
    assert (pushed.app_no, pushed.via, pushed.customer["CONS_NAME"]) == (app_no, "create", "张伟")
    assert writer.step() is False
    assert writer.stats.submitted == 1


def test_a_submitted_load_type_reaches_the_marketing_system_and_comes_back_with_the_record(
    sqlite_engine: Engine, running: SimulatorServer
) -> None:
    _submit(sqlite_engine, "t-ev", LOAD_TYPE="01")
    assert _writer(sqlite_engine, running).step() is True
    app_no = running.world.created_by("t-ev")
    assert app_no is not None
    created = running.world.application(app_no)
    assert created is not None and created["LOAD_TYPE"] == "01"
    with sqlite_engine.connect() as conn:
        pushed = conn.execute(sa.select(marketing_push)).one()
    assert pushed.application["LOAD_TYPE"] == "01"


def test_a_refused_submission_fails_with_its_reason_and_the_next_one_goes_on(
    sqlite_engine: Engine, world: MarketingWorld, clock: FixedClock
) -> None:
    _submit(sqlite_engine, "t-1", VOLT_CODE="AC99999")
    _submit(sqlite_engine, "t-2")
    with _serve(world) as server:
        _writer(sqlite_engine, server).step()
        # A refusal is final: later steps do not send it again.
        clock.advance(timedelta(hours=1))
        _writer(sqlite_engine, server).step()
        calls = server.faults.count("CreateApplication")
    assert _status(sqlite_engine, "t-1") == ("failed", None, 1)
    with sqlite_engine.connect() as conn:
        failed = get_submission(conn, "t-1")
    assert failed is not None and "VOLT_CODE 'AC99999' is not a valid code" in str(failed.reason)
    assert _status(sqlite_engine, "t-2")[0] == "submitted"
    assert calls == 2


def test_a_refused_submission_shows_as_failed_with_its_reason_where_the_platform_follows_it(
    sqlite_engine: Engine, world: MarketingWorld, clock: FixedClock
) -> None:
    app = FastAPI()
    install_context(app, ApiContext(sqlite_engine))
    app.include_router(submissions_router)
    api = TestClient(app)
    request = {**ONLINE, "customer_no": world.all_applications()[0]["CONS_NO"]}
    first = api.post("/v1/applications", json=request).json()["tracking_id"]
    # Sent in the order they came: the fault refuses the first call only.
    clock.advance(timedelta(seconds=1))
    second = api.post("/v1/applications", json=request).json()["tracking_id"]
    with _serve(world, FaultRule(Fault.BUSINESS_FAULT, "CreateApplication", 1, 1)) as server:
        _writer(sqlite_engine, server).step()
    refused, created = (api.get(f"/v1/submissions/{tracking_id}").json() for tracking_id in (first, second))
    assert (refused["status"], refused["attempts"], refused["application_no"]) == ("failed", 1, None)
    assert "SOAP fault" in refused["reason"] and "business rule refused the request" in refused["reason"]
    assert (created["status"], created["reason"]) == ("submitted", None)
    assert created["application_no"] == server.world.created_by(second)


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x0b", "\uffff"])
def test_a_submission_xml_cannot_carry_fails_at_once_with_its_reason_and_the_next_one_goes_on(
    sqlite_engine: Engine, running: SimulatorServer, clock: FixedClock, character: str
) -> None:
    # Kept before the API refused such text: it must not wait at pending for ever.
    _submit(sqlite_engine, "t-bad", ELEC_ADDR=f"人民路{character}8号")
    _submit(sqlite_engine, "t-good")
    writer = _writer(sqlite_engine, running)
    writer.step()
    clock.advance(timedelta(hours=1))
    assert writer.step() is False
    with sqlite_engine.connect() as conn:
        bad = get_submission(conn, "t-bad")
    assert bad is not None and (bad.status, bad.attempts) == ("failed", 1)
    code_point = f"U+{ord(character):04X}"
    assert str(bad.reason).startswith(f"application.ELEC_ADDR holds {code_point} at position 3")
    assert _status(sqlite_engine, "t-good")[0] == "submitted"
    # Only the good one reached the marketing system.
    assert running.faults.count("CreateApplication") == 1
    assert writer.stats.failed == 1


def test_an_unavailable_system_is_tried_again_later_and_the_write_lands_once(
    sqlite_engine: Engine, world: MarketingWorld, clock: FixedClock
) -> None:
    _submit(sqlite_engine, "t-1")
    rules = (
        FaultRule(Fault.SERVER_FAULT, "CreateApplication", 1, 2),
        FaultRule(Fault.CONNECTION_RESET, "CreateApplication", 3, 3),
    )
    with _serve(world, *rules) as server:
        writer = _writer(sqlite_engine, server)
        writer.step()
        assert _status(sqlite_engine, "t-1") == ("pending", None, 1)
        with sqlite_engine.connect() as conn:
            waiting = get_submission(conn, "t-1")
        assert waiting is not None and waiting.last_error is not None
        assert (
            clock.now + timedelta(seconds=5) <= waiting.next_attempt_at <= clock.now + timedelta(seconds=10)
        )
        assert writer.step() is False
        clock.now += timedelta(seconds=10)
        writer.step()
        created = server.world.created_applications()
    assert _status(sqlite_engine, "t-1") == ("submitted", created[0], 2)
    assert len(created) == 1


def test_a_write_is_given_up_after_max_attempts(
    sqlite_engine: Engine, world: MarketingWorld, clock: FixedClock
) -> None:
    _submit(sqlite_engine, "t-1")
    row = world.all_applications()[0]
    _queue_stage(sqlite_engine, "e-1", row["APP_NO"], status_flow(row)[-1])
    with _serve(world, FaultRule(Fault.HTTP_500, "CreateApplication")) as server:
        writer = _writer(sqlite_engine, server, max_attempts=2)
        writer.step()
        assert _status(sqlite_engine, "t-1") == ("pending", None, 1)
        clock.now += timedelta(minutes=5)
        writer.step()
        clock.now += timedelta(hours=1)
        assert writer.step() is False
        calls = server.faults.count("CreateApplication")
    with sqlite_engine.connect() as conn:
        submission = get_submission(conn, "t-1")
        [written] = writebacks_of(conn, row["APP_NO"])
    assert submission is not None and (submission.status, submission.attempts) == ("failed", 2)
    assert str(submission.reason).startswith(
        "gave up after 2 attempts: marketing CreateApplication: call to "
    )
    # Each attempt is one call of the writer (the client's own quick retries inside it).
    assert calls == 2 * NO_WAIT.attempts
    assert written["status"] == "done"


def test_by_default_a_transient_failure_is_retried_a_bounded_number_of_times(
    sqlite_engine: Engine, world: MarketingWorld, clock: FixedClock
) -> None:
    bound = MarketingSettings().write_max_attempts
    _submit(sqlite_engine, "t-1")
    with _serve(world, FaultRule(Fault.HTTP_500, "CreateApplication")) as server:
        client = quick_client(server.wsdl_url, policy=CallPolicy(attempts=1, initial_backoff_s=0, jitter_s=0))
        writer = MarketingWriter(sqlite_engine, client, rng=random.Random(1))
        assert writer.policy.max_attempts == bound
        steps = 0
        while _status(sqlite_engine, "t-1")[0] == "pending" and steps <= bound:
            writer.step()
            steps += 1
            clock.advance(timedelta(seconds=writer.policy.max_backoff_s))
        calls = server.faults.count("CreateApplication")
    assert _status(sqlite_engine, "t-1") == ("failed", None, bound)
    assert calls == steps == bound


def test_the_bound_is_the_configured_one(sqlite_engine: Engine) -> None:
    adapter = build_marketing(MarketingSettings(write_max_attempts=7), sqlite_engine)
    assert adapter.writer.policy.max_attempts == 7


def test_an_open_circuit_stops_the_step_and_leaves_the_rows_untouched(
    sqlite_engine: Engine, running: SimulatorServer
) -> None:
    _submit(sqlite_engine, "t-1")
    breaker = CircuitBreaker("marketing", failure_threshold=1, reset_timeout_s=60)
    breaker.failed(SourceUnavailableError("down"))
    with pytest.raises(CircuitOpenError):
        _writer(sqlite_engine, running, breaker=breaker).step()
    assert _status(sqlite_engine, "t-1") == ("pending", None, 0)
    assert running.faults.count("CreateApplication") == 0


def _queue_stage(engine: Engine, event_id: str, app_no: str, status: str, **extra: str) -> None:
    arguments = {
        "requestId": event_id,
        "appNo": app_no,
        "statusCode": status,
        "changedAt": "2026-12-01 10:00:00",
        **extra,
    }
    with engine.begin() as conn:
        add_writeback(
            conn,
            event_id=event_id,
            event_type="cn.yekuo.case.stage_changed.v1",
            operation="UpdateApplicationStage",
            application_no=app_no,
            arguments=arguments,
        )


def test_write_backs_of_one_application_keep_their_order(
    sqlite_engine: Engine, world: MarketingWorld, clock: FixedClock
) -> None:
    first, second = world.all_applications()[:2]
    flow = status_flow(first)
    _queue_stage(sqlite_engine, "e-1", first["APP_NO"], flow[1])
    _queue_stage(sqlite_engine, "e-2", first["APP_NO"], flow[2])
    _queue_stage(sqlite_engine, "e-3", second["APP_NO"], status_flow(second)[-1])
    rule = FaultRule(Fault.SERVER_FAULT, "UpdateApplicationStage", 1, 3, app_no=first["APP_NO"])
    with _serve(world, rule) as server:
        writer = _writer(sqlite_engine, server)
        writer.step()
        with sqlite_engine.connect() as conn:
            assert [row["status"] for row in writebacks_of(conn, first["APP_NO"])] == ["pending", "pending"]
            assert [row["status"] for row in writebacks_of(conn, second["APP_NO"])] == ["done"]
        assert [write.request_id for write in server.world.stage_writes()] == ["e-3"]
        clock.now += timedelta(minutes=1)
        writer.step()
        written = [
            (write.request_id, write.status_code) for write in server.world.stage_writes(first["APP_NO"])
        ]
    assert written == [("e-1", flow[1]), ("e-2", flow[2])]
    with sqlite_engine.connect() as conn:
        done = writebacks_of(conn, first["APP_NO"])
    assert [row["status"] for row in done] == ["done", "done"]
    assert done[0]["result"]["statusCode"] == flow[1]


def test_a_refused_write_back_fails_with_its_reason_and_the_later_ones_go_on(
    sqlite_engine: Engine, running: SimulatorServer
) -> None:
    row = next(r for r in running.world.all_applications() if "05" not in status_flow(r))
    _queue_stage(sqlite_engine, "e-1", row["APP_NO"], "05")
    _queue_stage(sqlite_engine, "e-2", row["APP_NO"], status_flow(row)[-1])
    _writer(sqlite_engine, running).step()
    with sqlite_engine.connect() as conn:
        refused, written = writebacks_of(conn, row["APP_NO"])
    assert (refused["status"], written["status"]) == ("failed", "done")
    assert "STATUS_CODE 05 is not a step of its process" in refused["reason"]
    assert running.faults.count("UpdateApplicationStage") == 2


def test_a_write_back_xml_cannot_carry_fails_and_the_later_ones_go_on(
    sqlite_engine: Engine, running: SimulatorServer
) -> None:
    row = running.world.all_applications()[0]
    flow = status_flow(row)
    _queue_stage(sqlite_engine, "e-1", row["APP_NO"], flow[1], remark="退回\x00")
    _queue_stage(sqlite_engine, "e-2", row["APP_NO"], flow[-1])
    _writer(sqlite_engine, running).step()
    with sqlite_engine.connect() as conn:
        refused, written = writebacks_of(conn, row["APP_NO"])
    assert (refused["status"], refused["attempts"], written["status"]) == ("failed", 1, "done")
    assert refused["reason"].startswith("remark holds U+0000 at position 2")
    assert [write.request_id for write in running.world.stage_writes(row["APP_NO"])] == ["e-2"]


@pytest.mark.parametrize(
    "options",
    [{"initial_backoff_s": 5, "max_backoff_s": 1}, {"max_attempts": 0}, {"lease_s": 0}, {"batch": 0}],
)
def test_nonsense_policies_are_config_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        WriterPolicy(**options)


def test_backoff_doubles_up_to_its_ceiling_with_jitter() -> None:
    policy = WriterPolicy(initial_backoff_s=2, max_backoff_s=20)
    rng = random.Random(3)
    for attempts, ceiling in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 20), (9, 20)]:
        assert ceiling / 2 <= policy.delay(attempts, rng) <= ceiling
