"""Tests of the marketing polling source: customers before applications, positions and checkpoints."""

from __future__ import annotations

import logging

import pytest
from lxml import etree
from pytest_httpserver import HTTPServer

from adapters.marketing.source import MarketingSource
from adapters.records import PollingSource
from simulators.marketing.contract import NAMESPACE, WSDL_PATH
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import MarketingWorld
from tests.unit.adapters.marketing.conftest import START, RecordingTransport
from yekuo.errors import ConfigError, MalformedInputError
from yekuo.soap import build_envelope


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


def test_application_without_update_time_is_malformed(httpserver: HTTPServer) -> None:
    source = _scripted_page(httpserver, "<mkt:APP_NO>2611200001234</mkt:APP_NO>")
    with pytest.raises(
        MalformedInputError, match="#0 of the page lacks UPDATE_TIME or APP_NO: UPDATE_TIME=None"
    ):
        source.poll(None)


def test_application_with_a_foreign_time_format_is_malformed(httpserver: HTTPServer) -> None:
    source = _scripted_page(
        httpserver,
        "<mkt:APP_NO>2611200001234</mkt:APP_NO><mkt:UPDATE_TIME>2026-11-20T09:13:05</mkt:UPDATE_TIME>",
    )
    with pytest.raises(
        MalformedInputError, match=r"application 2611200001234 \(#0 of the page\): watermark changed_at"
    ):
        source.poll(None)
