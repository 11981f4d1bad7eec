"""One test per trigger of the marketing simulator's fault table, through the real pipeline.

Each trigger fires in the middle of a sync of 40 applications (SOAP over HTTP, zeep, mapping, outbox,
in-process bus, workflow consumer, SQLite). The faulty call is retried and then delivered, or the faulty
record is parked with its specific reason; the records around it arrive, and nothing is applied twice.
A system that keeps failing opens the circuit: the hub stops calling it, reports itself not ready, and
recovers on its own once a trial call succeeds.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from adapters.marketing.wiring import build_marketing
from ground.settings import MarketingSettings, Settings
from simulators.marketing.faults import TRIGGER_TABLE, Fault, FaultPlan, FaultRule
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import MarketingWorld
from store.database import create_engine
from tests.integration.marketing_pipeline import (
    application_events,
    case_numbers,
    fast_client,
    kept_case_events,
    marketing_pipeline,
    parked_records,
    timeline_entries,
)
from tests.support.auth import TEST_AUTH, bearer
from yekuo.hub import Hub
from yekuo.serve import build_api

LIST = "ListChangedApplications"
APPLICATIONS = 40
PAGE_SIZE = 15
PAGES = -(-APPLICATIONS // PAGE_SIZE)
TARGET_INDEX = 20  # in the second page


@dataclass(frozen=True)
class Expected:
    """What a trigger must lead to."""

    rule: FaultRule
    # Listing calls beyond one per page: the repeats the fault caused.
    extra_list_calls: int
    # Polls that failed and were repeated by the hub loop (the client does not retry these itself).
    failed_polls: int = 0
    refused_polls: int = 0
    parked_reason: tuple[str, ...] = ()
    failure_text: str = ""


def _expectations(target: str) -> dict[Fault, Expected]:
    return {
        Fault.LATENCY: Expected(FaultRule(Fault.LATENCY, LIST, 1, None, delay_s=0.2), extra_list_calls=0),
        Fault.BUSINESS_FAULT: Expected(
            FaultRule(Fault.BUSINESS_FAULT, LIST, 2, 2), extra_list_calls=1, refused_polls=1
        ),
        Fault.SERVER_FAULT: Expected(FaultRule(Fault.SERVER_FAULT, LIST, 2, 3), extra_list_calls=2),
        Fault.HTTP_500: Expected(FaultRule(Fault.HTTP_500, LIST, 2, 3), extra_list_calls=2),
        Fault.CONNECTION_RESET: Expected(FaultRule(Fault.CONNECTION_RESET, LIST, 2, 2), extra_list_calls=1),
        Fault.TIMEOUT: Expected(FaultRule(Fault.TIMEOUT, LIST, 2, 2, delay_s=1.5), extra_list_calls=1),
        Fault.MALFORMED_XML: Expected(
            FaultRule(Fault.MALFORMED_XML, LIST, 2, 2), 1, failed_polls=1, failure_text="malformed XML"
        ),
        Fault.XML_BOMB: Expected(
            # Refused as a DTD, or by libxml2's entity amplification limit before the DTD is complete.
            FaultRule(Fault.XML_BOMB, LIST, 2, 2),
            1,
            failed_polls=1,
            failure_text="entit",
        ),
        Fault.EXTERNAL_ENTITY: Expected(
            FaultRule(Fault.EXTERNAL_ENTITY, LIST, 2, 2), 1, failed_polls=1, failure_text="DTD"
        ),
        Fault.WRONG_NAMESPACE: Expected(
            FaultRule(Fault.WRONG_NAMESPACE, LIST, 2, 2),
            1,
            failed_polls=1,
            failure_text="urn:yekuo:sim:marketing:v0",
        ),
        Fault.MISSING_FIELDS: Expected(
            FaultRule(Fault.MISSING_FIELDS, app_no=target),
            extra_list_calls=0,
            parked_reason=("field 'customer_class' (source CUST_CLASS_CODE): required value is missing",),
        ),
        Fault.UNKNOWN_CODE: Expected(
            FaultRule(Fault.UNKNOWN_CODE, app_no=target),
            extra_list_calls=0,
            parked_reason=(
                "field 'requested_voltage_kv' (source VOLT_CODE)",
                "unknown code in table marketing/volt_code: 'AC99999'",
            ),
        ),
        Fault.DUPLICATE: Expected(FaultRule(Fault.DUPLICATE, app_no=target), extra_list_calls=0),
    }


def test_every_trigger_of_the_table_has_an_acceptance_case() -> None:
    assert set(_expectations("x")) == {row.fault for row in TRIGGER_TABLE} == set(Fault)


@pytest.fixture
def world() -> Iterator[MarketingWorld]:
    yield generate_world(seed=7, customers=30, applications=APPLICATIONS)


@pytest.mark.parametrize("fault", list(Fault), ids=[fault.value for fault in Fault])
def test_trigger_is_retried_or_parked_and_the_rest_arrives_once(
    fault: Fault, world: MarketingWorld, sqlite_engine: Engine
) -> None:
    numbers = [row["APP_NO"] for row in world.all_applications()]
    target = numbers[TARGET_INDEX]
    expected = _expectations(target)[fault]
    plan = FaultPlan([expected.rule])
    with (
        SimulatorServer(world, faults=plan) as simulator,
        marketing_pipeline(
            sqlite_engine, fast_client(simulator.wsdl_url, timeout_s=0.5), page_size=PAGE_SIZE
        ) as pipeline,
    ):
        pipeline.sync()
        failures, refusals = list(pipeline.transient_failures), list(pipeline.refusals)

    assert plan.count(LIST, fault) >= 1, "the trigger must have fired"
    assert plan.count(LIST) == PAGES + expected.extra_list_calls
    assert len(failures) == expected.failed_polls
    assert len(refusals) == expected.refused_polls
    assert all(expected.failure_text in failure for failure in failures)
    assert not any("root:" in text for text in failures), "an external entity must never be resolved"

    parked = parked_records(sqlite_engine)
    arrived = set(numbers) - ({target} if expected.parked_reason else set())
    assert set(case_numbers(sqlite_engine)) == arrived
    if expected.parked_reason:
        [record] = parked
        assert (record["kind"], record["reason_code"], record["record_key"]) == ("invalid", "mapping", target)
        assert all(part in record["reason"] for part in expected.parked_reason)
    else:
        assert parked == []
    # Nothing applied twice: one application event, one kept event and one timeline entry per case.
    assert set(application_events(sqlite_engine).values()) == {1}
    assert set(kept_case_events(sqlite_engine).values()) == {1}
    assert set(timeline_entries(sqlite_engine).values()) == {1}


def test_a_failing_marketing_system_opens_the_circuit_shows_not_ready_and_recovers(
    world: MarketingWorld, tmp_path: Path
) -> None:
    plan = FaultPlan([FaultRule(Fault.HTTP_500, LIST, 1, 3)])
    settings = Settings(
        bus_url=f"memory://{uuid.uuid4()}",
        db_url=f"sqlite:///{tmp_path}/hub.db",
        auth=TEST_AUTH,
        marketing=MarketingSettings(
            page_size=PAGE_SIZE,
            poll_interval_s=0.1,
            retry_attempts=1,
            breaker_failures=3,
            breaker_reset_s=1.5,
        ),
    )
    engine = create_engine(settings.db_url)
    seen: list[tuple[bool, str]] = []
    with SimulatorServer(world, faults=plan) as simulator:
        marketing = build_marketing(
            settings.marketing.model_copy(update={"wsdl_url": simulator.wsdl_url}), engine
        )
        hub = Hub(settings, sources=[marketing.source], engine=engine, workers=[marketing.writer_loop])
        api = TestClient(build_api(hub, marketing), headers=bearer("operator"))
        hub.start()
        try:
            deadline = time.monotonic() + 60
            while hub.status().cases < APPLICATIONS or hub.status().pending:
                assert time.monotonic() < deadline, f"not recovered: {hub.status()}"
                ready = api.get("/ready")
                adapter = api.get("/admin/adapters/marketing").json()
                if ready.status_code == 503:
                    seen.append((ready.json()["checks"]["poll:marketing"], adapter["circuit"]["state"]))
                time.sleep(0.05)
            recovered = api.get("/ready")
        finally:
            hub.stop()
            engine.dispose()
    assert (False, "open") in seen, "the open circuit must show on /ready and in the admin status"
    assert recovered.status_code == 200
    # Three failed calls opened the circuit; while it was open no call reached the system.
    calls = [call for call in plan.calls if call.operation == LIST]
    assert [call.faults for call in calls[:4]] == [(Fault.HTTP_500,)] * 3 + [()]
    assert calls[3].at - calls[2].at >= 1.5
    assert marketing.client.breaker.status().trips == 1
