"""Full sync from the marketing simulator over real SOAP (uvicorn + zeep), paging through timestamp bursts."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from adapters.marketing.client import Watermark
from adapters.marketing.source import MarketingSource
from pipeline.records import SourceBatch
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import MarketingWorld

PAGE_SIZE = 37


@pytest.fixture(scope="module")
def world() -> MarketingWorld:
    return generate_world(seed=2026, customers=600, applications=1000)


@pytest.fixture(scope="module")
def simulator(world: MarketingWorld) -> Iterator[SimulatorServer]:
    with SimulatorServer(world) as server:
        yield server


def _sync(
    source: MarketingSource, checkpoint: Mapping[str, Any] | None
) -> tuple[list[SourceBatch], Mapping[str, Any]]:
    batches = []
    while True:
        batch = source.poll(checkpoint)
        batches.append(batch)
        # The hub stores the checkpoint as JSON between polls; go through that form here as well.
        checkpoint = json.loads(json.dumps(batch.checkpoint))
        if not batch.has_more:
            return batches, checkpoint


def test_full_sync_returns_every_application_once_with_its_customer(
    simulator: SimulatorServer, world: MarketingWorld
) -> None:
    expected = world.all_applications()
    bursts = Counter(row["UPDATE_TIME"] for row in expected)
    assert max(bursts.values()) > PAGE_SIZE, "the world must hold a burst larger than a page"

    batches, checkpoint = _sync(MarketingSource(simulator.wsdl_url, page_size=PAGE_SIZE), None)

    applications = [r for batch in batches for r in batch.records if r.record_type == "application"]
    numbers = [record.key for record in applications]
    assert len(numbers) == len(set(numbers)) == 1000
    assert numbers == [row["APP_NO"] for row in expected]
    assert [dict(record.payload) for record in applications] == expected
    assert len(batches) == -(-1000 // PAGE_SIZE)

    for batch in batches:
        customer_keys = {r.key for r in batch.records if r.record_type == "customer"}
        referenced = {r.payload["CONS_NO"] for r in batch.records if r.record_type == "application"}
        assert customer_keys == referenced
    customers = {
        r.key: dict(r.payload) for batch in batches for r in batch.records if r.record_type == "customer"
    }
    assert customers == {row["CONS_NO"]: row for row in world.customers(sorted(customers))}

    last = expected[-1]
    assert Watermark.from_dict(checkpoint) == Watermark(changed_at=last["UPDATE_TIME"], key=last["APP_NO"])


def test_incremental_sync_sees_only_staged_changes(simulator: SimulatorServer, world: MarketingWorld) -> None:
    source = MarketingSource(simulator.wsdl_url, page_size=PAGE_SIZE)
    _, checkpoint = _sync(source, None)
    changed = [world.all_applications()[index]["APP_NO"] for index in (3, 500, 998)]
    for number in changed:
        world.apply_change(number, {"STATUS_CODE": "09"})

    batches, after = _sync(source, checkpoint)

    applications = [r for batch in batches for r in batch.records if r.record_type == "application"]
    assert [record.key for record in applications] == changed
    assert all(record.payload["STATUS_CODE"] == "09" for record in applications)
    assert after["changed_at"] > checkpoint["changed_at"]
    nothing_new, _ = _sync(source, after)
    assert [record for batch in nothing_new for record in batch.records] == []
