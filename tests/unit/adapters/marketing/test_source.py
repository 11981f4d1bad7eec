"""Tests of the marketing source: customers before applications, checkpoints, and the push inbox gate."""

from __future__ import annotations

import logging

import pytest
from lxml import etree
from pytest_httpserver import HTTPServer
from sqlalchemy.engine import Engine

from adapters.marketing.client import Watermark
from adapters.marketing.source import MarketingCheckpoint, MarketingSource
from ground.errors import ConfigError, MalformedInputError, SourceUnavailableError
from ground.soap import build_envelope
from pipeline.records import PollingSource, SourceBatch
from simulators.marketing.contract import NAMESPACE, WSDL_PATH
from simulators.marketing.faults import Fault, FaultPlan, FaultRule
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import MarketingWorld
from store.submissions import store_push
from tests.unit.adapters.marketing.conftest import START, RecordingTransport


def _source(
    server: SimulatorServer, page_size: int, transport: RecordingTransport | None = None
) -> MarketingSource:
    return MarketingSource(server.wsdl_url, page_size=page_size, transport=transport)


def test_is_a_polling_source_named_marketing(simulator: SimulatorServer) -> None:
    source: PollingSource = _source(simulator, 10)
    assert source.name == "marketing"


def test_first_poll_yields_referenced_customers_then_applications(
    simulator: SimulatorServer, world: MarketingWorld, transport: RecordingTransport
) -> None:
    batch = _source(simulator, 20, transport).poll(None)
    expected_applications = world.all_applications()[:20]
    referenced = list(dict.fromkeys(row["CONS_NO"] for row in expected_applications))

    customers = [record for record in batch.records if record.record_type == "customer"]
    applications = [record for record in batch.records if record.record_type == "application"]
    assert batch.records == customers + applications
    assert [record.key for record in customers] == referenced
    assert [dict(record.payload) for record in customers] == world.customers(referenced)
    assert [record.key for record in applications] == [row["APP_NO"] for row in expected_applications]
    assert [dict(record.payload) for record in applications] == expected_applications
    assert {record.system for record in batch.records} == {"marketing"}
    assert transport.actions == ["ListChangedApplications", "GetCustomers"]

    last = expected_applications[-1]
    assert batch.checkpoint == {"changed_at": last["UPDATE_TIME"], "key": last["APP_NO"]}
    assert batch.has_more is True
    for record, row in zip(applications, expected_applications, strict=True):
        assert record.position == {"changed_at": row["UPDATE_TIME"], "key": row["APP_NO"]}
    first_reference = next(row for row in expected_applications if row["CONS_NO"] == customers[0].key)
    assert customers[0].position == {
        "changed_at": first_reference["UPDATE_TIME"],
        "key": first_reference["APP_NO"],
    }


def test_next_poll_starts_after_the_checkpoint(simulator: SimulatorServer, world: MarketingWorld) -> None:
    source = _source(simulator, 20)
    first = source.poll(None)
    second = source.poll(first.checkpoint)
    numbers = [record.key for record in second.records if record.record_type == "application"]
    assert numbers == [row["APP_NO"] for row in world.all_applications()[20:40]]


def test_empty_page_keeps_the_checkpoint_and_asks_for_no_customers(
    simulator: SimulatorServer, world: MarketingWorld, transport: RecordingTransport
) -> None:
    last = world.all_applications()[-1]
    checkpoint = {"changed_at": last["UPDATE_TIME"], "key": last["APP_NO"]}
    batch = _source(simulator, 50, transport).poll(checkpoint)
    assert batch.records == []
    assert batch.checkpoint == checkpoint
    assert batch.has_more is False
    assert transport.actions == ["ListChangedApplications"]


def test_empty_world_polls_to_an_empty_checkpoint_that_reads_from_the_beginning() -> None:
    with SimulatorServer(generate_world(seed=1, customers=1, applications=0, start=START)) as server:
        source = _source(server, 50)
        batch = source.poll(None)
        assert (batch.records, batch.checkpoint, batch.has_more) == ([], {}, False)
        assert source.poll(batch.checkpoint).checkpoint == {}


def test_broken_checkpoint_is_refused(simulator: SimulatorServer) -> None:
    with pytest.raises(MalformedInputError, match="watermark lacks key"):
        _source(simulator, 10).poll({"changed_at": "2026-11-20 09:13:05"})


def test_page_size_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="page size must be at least 1, got 0"):
        MarketingSource(str(WSDL_PATH), page_size=0)


def test_application_of_an_unknown_customer_still_flows(caplog: pytest.LogCaptureFixture) -> None:
    world = generate_world(seed=8, customers=10, applications=30, start=START)
    last = world.all_applications()[-1]
    target = world.all_applications()[0]["APP_NO"]
    world.apply_change(target, {"CONS_NO": "4130000000"})
    with (
        SimulatorServer(world) as server,
        caplog.at_level(logging.WARNING, logger="adapters.marketing.source"),
    ):
        batch = _source(server, 10).poll({"changed_at": last["UPDATE_TIME"], "key": last["APP_NO"]})
    assert [(record.record_type, record.key) for record in batch.records] == [("application", target)]
    assert "4130000000" in caplog.text


def _scripted_page(httpserver: HTTPServer, application: str) -> MarketingSource:
    payload = etree.fromstring(
        f'<mkt:ListChangedApplicationsResponse xmlns:mkt="{NAMESPACE}"><mkt:application>{application}'
        "</mkt:application><mkt:hasMore>false</mkt:hasMore></mkt:ListChangedApplicationsResponse>"
    )
    httpserver.expect_request("/marketing", method="POST").respond_with_data(
        build_envelope(payload), content_type="text/xml"
    )
    return MarketingSource(str(WSDL_PATH), endpoint_url=httpserver.url_for("/marketing"))


def test_application_without_update_time_makes_the_page_unusable(httpserver: HTTPServer) -> None:
    source = _scripted_page(httpserver, "<mkt:APP_NO>2611200001234</mkt:APP_NO>")
    with pytest.raises(SourceUnavailableError, match="listing answer is unusable; will read again") as raised:
        source.poll(None)
    assert isinstance(raised.value.__cause__, MalformedInputError)
    assert "#0 of the page lacks UPDATE_TIME or APP_NO: UPDATE_TIME=None" in str(raised.value)
    assert source.stats.last_listing_error is not None


def test_application_with_a_foreign_time_format_makes_the_page_unusable(httpserver: HTTPServer) -> None:
    source = _scripted_page(
        httpserver,
        "<mkt:APP_NO>2611200001234</mkt:APP_NO><mkt:UPDATE_TIME>2026-11-20T09:13:05</mkt:UPDATE_TIME>",
    )
    with pytest.raises(
        SourceUnavailableError, match=r"application 2611200001234 \(#0 of the page\): watermark changed_at"
    ):
        source.poll(None)


# The checkpoint


def test_checkpoint_round_trips_with_and_without_the_push_inbox() -> None:
    state = MarketingCheckpoint(Watermark("2026-11-20 09:13:05", "2611200001234"), push_seq=7)
    assert state.to_dict(with_push=True) == {
        "changed_at": "2026-11-20 09:13:05",
        "key": "2611200001234",
        "push_seq": 7,
    }
    assert MarketingCheckpoint.from_dict(state.to_dict(with_push=True)) == state
    assert state.to_dict(with_push=False) == {"changed_at": "2026-11-20 09:13:05", "key": "2611200001234"}
    assert MarketingCheckpoint.from_dict({"push_seq": 3}) == MarketingCheckpoint(None, 3)
    assert MarketingCheckpoint.from_dict(None) == MarketingCheckpoint()


@pytest.mark.parametrize("push_seq", [-1, "3", True])
def test_a_broken_push_position_is_refused(push_seq: object) -> None:
    with pytest.raises(MalformedInputError, match="push_seq must be a count"):
        MarketingCheckpoint.from_dict({"push_seq": push_seq})


# The push inbox: pushes first, then the listing, never a version twice or an older one after a newer


@pytest.fixture
def small_world() -> MarketingWorld:
    return generate_world(seed=61, customers=12, applications=20, start=START)


def _push(engine: Engine, world: MarketingWorld, app_no: str, **changes: object) -> int:
    row = world.application(app_no)
    assert row is not None
    pushed = {**row, **changes}
    with engine.begin() as conn:
        return store_push(conn, pushed, world.customer(row["CONS_NO"])).seq


def _applications(batch: SourceBatch) -> list[tuple[str, str]]:
    return [
        (record.key, record.payload["UPDATE_TIME"])
        for record in batch.records
        if record.record_type == "application"
    ]


def test_waiting_pushes_are_staged_before_the_listing_is_read(
    small_world: MarketingWorld, sqlite_engine: Engine, transport: RecordingTransport
) -> None:
    rows = small_world.all_applications()
    with SimulatorServer(small_world) as server:
        source = MarketingSource(server.wsdl_url, page_size=50, transport=transport, engine=sqlite_engine)
        seqs = [_push(sqlite_engine, small_world, row["APP_NO"]) for row in rows[:2]]
        batch = source.poll(None)
        assert transport.actions == []
        assert [(r.record_type, r.key) for r in batch.records] == [
            ("customer", rows[0]["CONS_NO"]),
            ("application", rows[0]["APP_NO"]),
            ("customer", rows[1]["CONS_NO"]),
            ("application", rows[1]["APP_NO"]),
        ]
        assert batch.records[1].position == {
            "push_seq": seqs[0],
            "via": "push",
            "changed_at": rows[0]["UPDATE_TIME"],
            "key": rows[0]["APP_NO"],
        }
        assert (batch.checkpoint, batch.has_more) == ({"push_seq": seqs[1]}, True)
        listing = source.poll(batch.checkpoint)
    assert transport.actions == ["ListChangedApplications", "GetCustomers"]
    assert [key for key, _ in _applications(listing)] == [row["APP_NO"] for row in rows[2:]]
    assert listing.checkpoint == {
        "changed_at": rows[-1]["UPDATE_TIME"],
        "key": rows[-1]["APP_NO"],
        "push_seq": seqs[1],
    }
    assert source.stats.dropped_versions == 2 and source.stats.by_reason == {"same version": 2}


def test_a_push_of_a_version_the_listing_passed_is_dropped(
    small_world: MarketingWorld, sqlite_engine: Engine
) -> None:
    rows = small_world.all_applications()
    with SimulatorServer(small_world) as server:
        source = MarketingSource(server.wsdl_url, page_size=50, engine=sqlite_engine)
        listed = source.poll(None)
        _push(sqlite_engine, small_world, rows[3]["APP_NO"])
        pushed = source.poll(listed.checkpoint)
    assert pushed.records == []
    assert source.stats.by_reason == {"listed already": 1}


def test_a_push_older_than_one_staged_before_is_dropped(
    small_world: MarketingWorld, sqlite_engine: Engine
) -> None:
    app_no = small_world.all_applications()[0]["APP_NO"]
    source = MarketingSource(str(WSDL_PATH), engine=sqlite_engine)
    _push(sqlite_engine, small_world, app_no, UPDATE_TIME="2027-01-01 10:00:00", STATUS_CODE="09")
    first = source.poll(None)
    _push(sqlite_engine, small_world, app_no, UPDATE_TIME="2027-01-01 09:00:00")
    _push(sqlite_engine, small_world, app_no, UPDATE_TIME="2027-01-01 11:00:00", STATUS_CODE="10")
    second = source.poll(first.checkpoint)
    assert _applications(first) == [(app_no, "2027-01-01 10:00:00")]
    assert _applications(second) == [(app_no, "2027-01-01 11:00:00")]
    assert source.stats.by_reason == {"older than a staged push": 1}


def test_a_listed_version_not_newer_than_a_staged_push_is_dropped(
    small_world: MarketingWorld, sqlite_engine: Engine
) -> None:
    rows = small_world.all_applications()
    with SimulatorServer(small_world) as server:
        source = MarketingSource(server.wsdl_url, page_size=50, engine=sqlite_engine)
        _push(sqlite_engine, small_world, rows[5]["APP_NO"], UPDATE_TIME="2099-01-01 00:00:00")
        pushed = source.poll(None)
        listed = source.poll(pushed.checkpoint)
    keys = [key for key, _ in _applications(listed)]
    assert rows[5]["APP_NO"] not in keys and len(keys) == len(rows) - 1
    assert rows[5]["CONS_NO"] in {r.key for r in pushed.records if r.record_type == "customer"}


def test_a_record_listed_twice_in_one_page_is_staged_once(small_world: MarketingWorld) -> None:
    target = small_world.all_applications()[4]["APP_NO"]
    plan = FaultPlan([FaultRule(Fault.DUPLICATE, app_no=target)])
    with SimulatorServer(small_world, faults=plan) as server:
        source = MarketingSource(server.wsdl_url, page_size=50)
        batch = source.poll(None)
    keys = [key for key, _ in _applications(batch)]
    assert keys.count(target) == 1 and len(keys) == 20
    assert source.stats.by_reason == {"same version": 1}


def test_push_batch_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="push batch must be at least 1, got 0"):
        MarketingSource(str(WSDL_PATH), push_batch=0)
