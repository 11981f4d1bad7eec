"""Syncing 10,000 applications from the marketing simulator gives exactly 10,000 cases.

The real pipeline in one thread: simulator over HTTP, zeep client, marketing source (watermark and push
inbox), ingest with mapping and routing, outbox, relay, in-process bus, and the workflow and write-back
consumers on SQLite (the case feed, another reader of the same stage changes, is left out for time).
The seeded world stamps many applications with the same second (batches of up to 80 in one second) and
page boundaries fall inside such bursts, so the composite watermark is what keeps none of them from being
lost or read twice. The test prints what it measured.
"""

from __future__ import annotations

import time
from collections import Counter

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from store.schema import cases, parked, timeline
from tests.integration.marketing_pipeline import application_events, fast_client, marketing_pipeline

APPLICATIONS = 10_000
PAGE_SIZE = 500


def test_ten_thousand_applications_become_ten_thousand_cases(sqlite_engine: Engine) -> None:
    world = generate_world(seed=20261126, customers=6_000, applications=APPLICATIONS)
    rows = world.all_applications()
    bursts = Counter(row["UPDATE_TIME"] for row in rows)
    assert max(bursts.values()) >= 40 and sum(size for size in bursts.values() if size > 1) > 1000
    # A page boundary must fall inside a burst, or the watermark's key would never be needed.
    assert any(
        rows[index - 1]["UPDATE_TIME"] == rows[index]["UPDATE_TIME"]
        for index in range(PAGE_SIZE, APPLICATIONS, PAGE_SIZE)
    )
    with (
        SimulatorServer(world) as simulator,
        marketing_pipeline(
            sqlite_engine,
            fast_client(simulator.wsdl_url, timeout_s=30),
            page_size=PAGE_SIZE,
            consumers=("workflow", "case_feed", "marketing_writeback"),
        ) as pipeline,
    ):
        started = time.monotonic()
        polls = pipeline.poll_until_done()
        polled = time.monotonic()
        delivered = pipeline.deliver()
        finished = time.monotonic()
        records = pipeline.ingestor.stats.records
    print(
        f"\n{APPLICATIONS} applications: {polls} polls read {records} records in {polled - started:.1f} s "
        f"({records / (polled - started):.0f} records/s into the outbox); consumers settled {delivered} "
        f"deliveries in {finished - polled:.1f} s ({delivered / (finished - polled):.0f}/s); "
        f"{finished - started:.1f} s in all"
    )
    with sqlite_engine.connect() as conn:
        numbers = list(conn.execute(sa.select(cases.c.application_no)).scalars())
        entries = Counter(conn.execute(sa.select(timeline.c.application_no)).scalars())
        parked_count = conn.execute(sa.select(sa.func.count()).select_from(parked)).scalar_one()
    assert len(numbers) == len(set(numbers)) == APPLICATIONS
    assert set(numbers) == {row["APP_NO"] for row in rows}
    assert set(application_events(sqlite_engine).values()) == {1}
    assert set(entries.values()) == {1}
    assert parked_count == 0
    assert pipeline.transient_failures == [] and pipeline.refusals == []
