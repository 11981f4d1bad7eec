"""`python -m bench [--quick]`: every benchmark in one run, the table on stdout, the figures in JSON.

Sections: 1 raw limit, 2 hub publish path, 3 durable path, 4 consume path, 5 file feed, 6 feasibility,
7 API, 8 freshness, 9 forecast refresh, 10 the assistant's answers, 11 one hub instance against two, and 12
the feasibility consumer's backlog under a stream of grid and load changes. A section that fails is reported
as not measured with its error, the others still run, and the exit status is 1. A target that is missed is
a result, not a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import Engine

from bench import (
    api_latency,
    assistant_latency,
    dashboard_timing,
    feasibility_backlog,
    feasibility_latency,
    feed,
    forecast_refresh,
    freshness,
    history,
    hub_paths,
    instances,
)
from bench.env import BENCH_EXCHANGE, BenchEnv, Progress
from bench.profiling import Profiles
from bench.raw import QueueType, measure_raw, measure_reference
from bench.records import bench_router, legacy_records
from bench.report import Measure, Target, evaluate, percentile, rate, results_document, table_lines
from bus.port import Topology
from bus.rabbitmq import RabbitMQBus
from ground.errors import BusUnavailableError, YekuoError
from ground.settings import PROJECT_ROOT, Settings
from pipeline.config import load_hub_config
from pipeline.consumers import ConsumerSpec, consumer_topology
from store.database import create_engine, create_schema
from workflow.config import load_workflow_config
from yekuo.consumers import CONSUMERS

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BODY_BYTES = 1200
SECTIONS = (
    "raw",
    "publish",
    "durable",
    "consume",
    "feed",
    "feasibility",
    "api",
    "freshness",
    "forecast",
    "assistant",
    "instances",
    "rechecks",
)

HALF = Target(">=", 0.5, "ratio")
RETRY_AFTER_S = 10.0
# Set from a refresh of the full grid measured on this machine (python -m bench.forecast_refresh on SQLite):
# 239 s for 52,100 pieces of equipment and 26.05 million daily peaks, 108,900 rows/s, peak RSS 477 MB. The
# targets leave half as much again for a shared machine.
FORECAST_REFRESH_TARGET_S = 360.0
FORECAST_ROWS_TARGET_PER_S = 70_000.0
FORECAST_RSS_TARGET_MB = 720.0
# The assistant's answers, all kinds together (the acceptance figure).
ASSISTANT_P99_TARGET_MS = 100.0
# How long the rechecks section waits for the feasibility consumer to drain before it reports it did not.
DRAIN_LIMIT_S = 180.0


@dataclass(frozen=True)
class Scale:
    """How much each section does; quick keeps the whole run under three minutes."""

    name: str
    raw_messages: int
    publish_records: int
    publish_rounds: int
    durable_records: int
    consume_records: int
    history_cases: int
    api_cases: int
    api_seed_records: int
    api_rate: float
    api_seconds: float
    freshness_applications: int
    freshness_changes: int
    freshness_rate: float
    feasibility_checks: int
    forecast_feeders: int
    forecast_transformers: int
    forecast_substations: int
    assistant_cases: int
    assistant_rounds: int
    instances_records: int
    rechecks_applications: int
    rechecks_transformers: int
    rechecks_stream_s: float
    rechecks_changes_per_s: float


FULL = Scale(
    name="full",
    raw_messages=50_000,
    publish_records=20_000,
    publish_rounds=3,
    durable_records=20_000,
    consume_records=5_000,
    history_cases=500,
    api_cases=100_000,
    api_seed_records=3_000,
    api_rate=200.0,
    api_seconds=30.0,
    freshness_applications=1_000,
    freshness_changes=300,
    freshness_rate=5.0,
    feasibility_checks=1_000,
    forecast_feeders=2_000,
    forecast_transformers=50_000,
    forecast_substations=100,
    assistant_cases=1_000,
    assistant_rounds=5,
    instances_records=10_000,
    rechecks_applications=400,
    rechecks_transformers=300,
    rechecks_stream_s=210.0,
    rechecks_changes_per_s=50.0,
)
QUICK = Scale(
    name="quick",
    raw_messages=10_000,
    publish_records=5_000,
    publish_rounds=3,
    durable_records=3_000,
    consume_records=1_000,
    history_cases=200,
    api_cases=20_000,
    api_seed_records=600,
    api_rate=200.0,
    api_seconds=10.0,
    freshness_applications=300,
    freshness_changes=40,
    freshness_rate=4.0,
    feasibility_checks=200,
    forecast_feeders=50,
    forecast_transformers=500,
    forecast_substations=10,
    assistant_cases=200,
    assistant_rounds=2,
    instances_records=2_000,
    rechecks_applications=100,
    rechecks_transformers=100,
    rechecks_stream_s=30.0,
    rechecks_changes_per_s=50.0,
)


@dataclass
class Run:
    """What the run has measured so far."""

    env: BenchEnv
    scale: Scale
    profiles: Profiles
    consumers: tuple[ConsumerSpec, ...]
    measures: list[Measure] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def topology(self) -> Topology:
        """The benchmark's exchange and consumer queues, shaped as the hub's."""
        return consumer_topology([BENCH_EXCHANGE], self.consumers)

    @property
    def workflow(self) -> ConsumerSpec:
        """The benchmark's copy of the hub's workflow consumer."""
        return next(spec for spec in self.consumers if spec.name.endswith("workflow"))

    def purge(self) -> None:
        """Declare the benchmark's exchange and queues if need be, and empty its consumer queues."""
        with RabbitMQBus(self.env.amqp_url) as bus:
            bus.declare(self.topology)
            for spec in self.consumers:
                bus.purge(spec.queue)


def bench_consumers() -> tuple[ConsumerSpec, ...]:
    """The hub's consumers under benchmark names, so their queues and inboxes are the benchmark's own."""
    return tuple(replace(spec, name=f"bench.{spec.name}") for spec in CONSUMERS)


class Reference:
    """The raw quorum-queue rates measured right before and after a hub path (and between its rounds)."""

    def __init__(self, run: Run, section: str) -> None:
        self._run = run
        self._section = section
        self._taken: list[tuple[float, float]] = []

    def take(self) -> None:
        """Measure windowed-confirm publish and consume on a quorum queue now."""
        messages = max(1, self._run.scale.raw_messages // 2)
        self._run.env.progress(f"raw reference for section {self._section}: {messages:,} messages")
        self._taken.append(
            measure_reference(
                self._run.env.amqp_url, "yekuo.bench.raw.reference", messages=messages, body_bytes=BODY_BYTES
            )
        )

    def measure(self, kind: Literal["publish", "consume"]) -> Measure:
        """The median reference rate of one kind, as a line of the section it belongs to."""
        index = 0 if kind == "publish" else 1
        values = [taken[index] for taken in self._taken]
        what = "confirmed publish" if kind == "publish" else "consume"
        return Measure(
            self._section,
            f"reference.{self._section}.{kind}",
            f"raw {what} (ref.)",
            statistics.median(values),
            "msg/s",
            "quorum queue, median of the takes around this path: "
            + ", ".join(f"{value:,.0f}" for value in values),
        )


def raw_section(run: Run) -> None:
    """1. Raw pika publish (no confirms, windowed confirms) and consume, on quorum and classic queues."""
    queue_types: tuple[QueueType, ...] = ("quorum", "classic")
    for queue_type in queue_types:
        run.env.progress(
            f"raw limit: {run.scale.raw_messages:,} messages of {BODY_BYTES} B, {queue_type} queue"
        )
        figures, version = measure_raw(
            run.env.amqp_url,
            f"yekuo.bench.raw.{queue_type}",
            queue_type,
            messages=run.scale.raw_messages,
            body_bytes=BODY_BYTES,
        )
        run.extra["rabbitmq_version"] = version
        run.extra[f"raw_{queue_type}"] = asdict(figures)
        detail = f"{figures.messages:,} persistent msgs of {figures.body_bytes} B"
        base = f"raw.{queue_type}"
        run.measures += [
            Measure(
                "1",
                f"{base}.publish_no_confirms",
                f"raw publish, no confirms, {queue_type}",
                figures.publish_no_confirms,
                "msg/s",
                detail + ", until all queued",
            ),
            Measure(
                "1",
                f"{base}.publish_confirms",
                f"raw publish, windowed confirms, {queue_type}",
                figures.publish_confirms,
                "msg/s",
                detail + ", window 1000",
            ),
            Measure(
                "1",
                f"{base}.consume",
                f"raw consume, manual acks, {queue_type}",
                figures.consume,
                "msg/s",
                detail + ", prefetch 1000, multiple ack per 100",
            ),
        ]


def publish_section(run: Run) -> None:
    """2. Legacy record -> mapping -> validation -> envelope -> confirmed publish."""
    records = legacy_records(run.scale.publish_records)
    router = bench_router(PROJECT_ROOT, BENCH_EXCHANGE)
    run.purge()
    reference = Reference(run, "2")
    reference.take()
    rounds = []
    # Short enough to repeat: alternating rounds with the reference keep one noisy moment from deciding.
    for number in range(1, run.scale.publish_rounds + 1):
        run.env.progress(f"hub publish path, round {number}: {len(records):,} legacy records")
        with RabbitMQBus(run.env.amqp_url) as bus:
            rounds.append(hub_paths.measure_publish(router, bus, records, run.profiles))
        run.purge()
        reference.take()
    run.extra["publish"] = [asdict(figures) for figures in rounds]
    rates = [rate(figures.events, figures.seconds) for figures in rounds]
    figures = rounds[0]
    raw = reference.measure("publish")
    run.measures += [
        raw,
        Measure(
            "2",
            "hub.publish",
            "hub publish path (route, validate, envelope, confirmed publish)",
            statistics.median(rates),
            "ev/s",
            f"median of {', '.join(f'{value:,.0f}' for value in rates)}; {figures.events:,} events, "
            f"mean {figures.mean_body_bytes:,.0f} B, batches of {hub_paths.PUBLISH_BATCH}",
            ratio_to=raw.key,
            target=HALF,
        ),
    ]


def durable_section(run: Run) -> None:
    """3. The same through the outbox on PostgreSQL and the relay."""
    records = legacy_records(run.scale.durable_records)
    router = bench_router(PROJECT_ROOT, BENCH_EXCHANGE)
    run.purge()
    reference = Reference(run, "3")
    reference.take()
    run.env.progress(f"durable path: {len(records):,} legacy records through the outbox and the relay")
    figures = hub_paths.measure_durable(
        run.env.fresh_engine, router, run.env.amqp_url, records, run.purge, run.profiles
    )
    run.purge()
    reference.take()
    run.extra["durable"] = asdict(figures)
    events = figures.events
    raw = reference.measure("publish")
    run.measures += [
        raw,
        Measure(
            "3",
            "durable.pipeline",
            "durable path (ingest to outbox ∥ relay, as the hub runs them)",
            rate(events, figures.pipeline_seconds),
            "ev/s",
            f"{events:,} events, pages of {hub_paths.INGEST_PAGE} records per transaction",
            ratio_to=raw.key,
            target=Target(">=", 0.25, "ratio"),
        ),
        Measure(
            "3",
            "durable.ingest",
            "  ingest to outbox alone (route, validate, envelope, INSERT)",
            rate(events, figures.ingest_seconds),
            "ev/s",
            f"{events:,} events, {figures.ingest_statements / events:.2f} SQL statements per event",
            ratio_to=raw.key,
        ),
        Measure(
            "3",
            "durable.relay",
            "  outbox relay alone (SELECT, confirmed publish, mark sent)",
            rate(events, figures.relay_seconds),
            "ev/s",
            f"{events:,} events, {figures.relay_statements} SQL statements in all",
            ratio_to=raw.key,
        ),
    ]


def consume_section(run: Run) -> None:
    """4. The workflow consumer with inbox dedup over a prefilled queue."""
    records = legacy_records(run.scale.consume_records)
    router = bench_router(PROJECT_ROOT, BENCH_EXCHANGE)
    run.purge()
    engine = run.env.fresh_engine()
    try:
        run.env.progress(f"consume path: queueing the events of {len(records):,} records (not timed)")
        events = hub_paths.prefill(engine, router, run.env.amqp_url, records)
        reference = Reference(run, "4")
        reference.take()
        run.env.progress(f"consume path: workflow consumer over {events:,} events")
        figures = hub_paths.measure_consume(engine, run.env.amqp_url, run.workflow, events, run.profiles)
        reference.take()
    finally:
        engine.dispose()
    run.purge()
    run.extra["consume"] = asdict(figures)
    raw = reference.measure("consume")
    run.measures += [
        raw,
        Measure(
            "4",
            "consume.workflow",
            "consume path (inbox dedup + workflow.cases.handle_event)",
            rate(figures.events, figures.seconds),
            "ev/s",
            f"{figures.events:,} events, fetch {hub_paths.CONSUME_BATCH}, one transaction per batch, "
            f"{figures.statements / figures.events:.1f} SQL statements per event; "
            f"handled {figures.handled}, failed {figures.failed}",
            ratio_to=raw.key,
            target=HALF,
        ),
    ]
    run.measures += _history_measures(run)


# Cases holding this many events each, the first the reference of the others.
HISTORY_LENGTHS = (2, 50)


def _history_measures(run: Run) -> list[Measure]:
    """The consume path over cases with a short and with a long history (bench/history.py)."""
    measures: list[Measure] = []
    for length in HISTORY_LENGTHS:
        run.purge()
        engine = run.env.fresh_engine()
        try:
            run.env.progress(
                f"consume path: {run.scale.history_cases:,} cases holding {length} events (history not timed)"
            )
            figures = history.measure_history(
                engine, run.env.amqp_url, BENCH_EXCHANGE, run.workflow, run.scale.history_cases, length
            )
        finally:
            engine.dispose()
        run.extra[f"consume_history_{length}"] = asdict(figures)
        first = not measures
        measures.append(
            Measure(
                "4",
                f"consume.history.{length}",
                f"  consume path, cases holding {length} events, one more each",
                rate(figures.events, figures.seconds),
                "ev/s",
                f"{figures.events:,} events, "
                f"{figures.statements / figures.events:.1f} SQL statements per event; "
                f"handled {figures.handled}, failed {figures.failed}",
                ratio_to=None if first else measures[0].key,
                target=None if first else Target(">=", 0.8, "ratio"),
            )
        )
    run.purge()
    return measures


def feed_section(run: Run) -> None:
    """5. The dispatch file feed, run by its own benchmark script."""
    run.env.progress("file feed: running bench/file_feed.py")
    outcome = feed.run_file_feed(quick=run.scale is QUICK)
    rss_target = Target("<=", 0.10)
    linear_target = Target("<=", 1.25)
    if outcome.missing:
        run.measures += [
            Measure.not_measured(
                "5",
                "feed.rss_growth",
                "file feed peak RSS growth, smallest to largest file",
                "ratio",
                outcome.missing,
                rss_target,
            ),
            Measure.not_measured(
                "5",
                "feed.time_per_row_growth",
                "file feed time per row, largest over smallest file",
                "x",
                outcome.missing,
                linear_target,
            ),
        ]
        return
    run.extra["feed"] = [asdict(item) for item in outcome.runs]
    for name, group in feed.by_format(outcome.runs).items():
        for item in group:
            run.measures.append(
                Measure(
                    "5",
                    f"feed.{name}.{item.rows}",
                    f"file feed {name}, {item.rows:,} rows",
                    item.rows_per_s,
                    "rows/s",
                    f"{item.seconds:,.1f} s, peak RSS {item.peak_rss_mib:,.0f} MiB",
                )
            )
        run.measures += [
            Measure(
                "5",
                f"feed.{name}.rss_growth",
                f"file feed {name} peak RSS growth",
                feed.rss_growth(group),
                "ratio",
                f"{group[0].rows:,} to {group[-1].rows:,} rows",
                target=rss_target,
            ),
            Measure(
                "5",
                f"feed.{name}.time_per_row_growth",
                f"file feed {name} time per row growth",
                feed.time_per_row_growth(group),
                "x",
                "largest over smallest file; 1.0 is linear",
                target=linear_target,
            ),
        ]


def feasibility_section(run: Run) -> None:
    """6. Feasibility latency with a city-sized grid: the engine alone, and the service on PostgreSQL."""
    checks = run.scale.feasibility_checks
    run.env.progress(f"feasibility: {checks:,} checks on 50,000 transformers and 2,000 feeders")
    engine = run.env.fresh_engine()
    try:
        figures = feasibility_latency.measure_feasibility(engine, checks=checks)
    finally:
        engine.dispose()
    run.extra["feasibility"] = asdict(figures)
    labels = {
        "engine": "rules and ranking on the grid in memory",
        "database": "service: grid kept in memory at the database revision, peaks and reservations read",
    }
    for result in figures.results:
        detail = f"{result.checks:,} checks, max {result.max_ms:,.1f} ms; {labels[result.path]}"
        run.measures += [
            Measure(
                "6",
                f"feasibility.{result.path}.p50",
                f"feasibility p50, {result.path}",
                result.p50_ms,
                "ms",
                detail,
            ),
            Measure(
                "6",
                f"feasibility.{result.path}.p99",
                f"feasibility p99, {result.path}",
                result.p99_ms,
                "ms",
                detail,
                target=Target("<=", 20.0),
            ),
        ]


def api_section(run: Run) -> None:
    """7. API latency at a steady request rate with many cases stored."""
    scale = run.scale
    router = bench_router(PROJECT_ROOT, BENCH_EXCHANGE)
    keys = api_latency.ServingKeys.fresh()
    workers = Settings().api_workers
    engine = run.env.fresh_engine(keys.keyring())
    try:
        records = legacy_records(scale.api_seed_records, seed=31)
        run.env.progress(f"api: making cases from {len(records):,} records with the workflow handler")
        seeded = api_latency.seed_cases(engine, router, records, config=load_workflow_config(PROJECT_ROOT))
        clones = api_latency.clone_numbers(scale.api_cases - len(seeded))
        run.env.progress(f"api: cloning {len(seeded):,} cases up to {scale.api_cases:,}")
        with engine.begin() as conn:
            api_latency.clone_cases(conn, seeded, clones)
        run.env.progress(
            f"api: {scale.api_rate:.0f} req/s for {scale.api_seconds:.0f} s per endpoint, "
            f"`yekuo api` with {workers} workers"
        )
        single, listed = api_latency.measure_api(
            engine,
            run.env.schema_url,
            keys,
            seeded + clones,
            rate=scale.api_rate,
            duration_s=scale.api_seconds,
            workers=workers,
        )
        _dashboard_measures(run, engine)
    finally:
        engine.dispose()
    target = Target("<=", 50.0)
    stored = f"{scale.api_cases:,} cases, {scale.api_rate:.0f} req/s open-loop, {workers} workers"
    run.extra["api"] = {"seeded_cases": len(seeded), "cases": scale.api_cases, "workers": workers}
    for key, endpoint in (("single", single), ("list", listed)):
        label = "API GET /v1/applications/{no}" if key == "single" else "API filtered list"
        if endpoint is None:
            run.measures += [
                Measure.not_measured(
                    "7",
                    f"api.{key}.{pct}",
                    f"{label} {pct}",
                    "ms",
                    "no list endpoint in the API",
                    target if pct == "p99" else None,
                )
                for pct in ("p50", "p99")
            ]
            continue
        load = endpoint.load
        requests = len(load.latencies_ms)
        run.extra["api"][key] = {
            "path": endpoint.path,
            "statuses": load.statuses,
            "offered_rate": load.offered_rate,
            "achieved_rate": load.achieved_rate,
            "requests": requests,
            "sql_statements_per_request": endpoint.statements_per_request,
            "server_cpu_s": endpoint.server_cpu_s,
        }
        failed = sum(count for status, count in load.statuses.items() if status != "200")
        detail = (
            f"{endpoint.path if key == 'list' else stored}, {requests:,} requests, "
            f"{load.achieved_rate:.0f}/s reached, {endpoint.statements_per_request:.1f} SQL statements each"
        )
        if failed:
            detail += f", {failed} not 200: {load.statuses}"
        for pct in (50, 99):
            run.measures.append(
                Measure(
                    "7",
                    f"api.{key}.p{pct}",
                    f"{label} p{pct}",
                    percentile(load.latencies_ms, pct),
                    "ms",
                    detail,
                    target=target if pct == 99 else None,
                )
            )
        cpu_ms = endpoint.server_cpu_s * 1000 / (requests + load.warmup_requests)
        run.measures.append(
            Measure(
                "7",
                f"api.{key}.capacity",
                f"  {label}: most one server process can answer",
                1000 / cpu_ms,
                "req/s",
                f"1 s of CPU over {cpu_ms:.1f} ms of server CPU per request, if the process had a core alone",
            )
        )


def _dashboard_measures(run: Run, engine: Engine) -> None:
    """The dashboard's overview in a real browser over the API section's cases: under 1 s to its charts."""
    target = Target("<=", 1000.0)
    label = "dashboard overview, navigation to charts drawn"
    missing = dashboard_timing.chromium_missing()
    if missing is not None:
        run.measures.append(Measure.not_measured("7", "dashboard.overview.max", label, "ms", missing, target))
        return
    run.env.progress("dashboard: timing the process overview in chromium")
    timing = dashboard_timing.measure_overview(engine)
    detail = f"{run.scale.api_cases:,} cases, {timing.loads} loads in chromium, p50 {timing.p50_ms:.0f} ms"
    run.extra["dashboard"] = asdict(timing)
    run.measures.append(
        Measure("7", "dashboard.overview.max", label, timing.max_ms, "ms", detail, target=target)
    )


def freshness_section(run: Run) -> None:
    """8. From a marketing-system push until the case and its feasibility verdict show through the API."""
    scale = run.scale
    engine = run.env.fresh_engine()
    settings = Settings(bus_url=run.env.amqp_url, db_url=run.env.schema_url, exchange=BENCH_EXCHANGE)
    run.env.progress(
        f"freshness: hub over {scale.freshness_applications:,} applications, then {scale.freshness_changes} "
        f"changes at {scale.freshness_rate:g}/s"
    )
    try:
        run.purge()
        result = freshness.measure_freshness(
            settings,
            engine,
            load_hub_config(PROJECT_ROOT),
            run.consumers,
            applications=scale.freshness_applications,
            changes=scale.freshness_changes,
            rate=scale.freshness_rate,
        )
    finally:
        engine.dispose()
        run.purge()
    seen = [change for change in result.changes if change.visible_at is not None]
    lost = len(result.changes) - len(seen)
    # A change never seen counts as the observation timeout: a lower bound, so p99 cannot look better.
    total = [
        (change.visible_at - change.changed_at)
        if change.visible_at is not None
        else freshness.VISIBLE_TIMEOUT_S
        for change in result.changes
    ]
    waits, pipeline = [], []
    for change in seen:
        picked = result.picked_up.get(change.application_no)
        if picked is not None and change.visible_at is not None:
            waits.append(picked - change.changed_at)
            pipeline.append(change.visible_at - picked)
    run.extra["freshness"] = {
        "poll_interval_s": result.poll_interval_s,
        "initial_cases": result.initial_cases,
        "loop_failures": result.loop_failures,
        "errors_logged": result.errors_logged,
        "changes": [asdict(change) for change in result.changes],
        "picked_up": result.picked_up,
    }
    detail = (
        f"SOAP push to /soap/marketing, which wakes the poller; {len(result.changes)} changes at "
        f"{scale.freshness_rate:g}/s, {lost} not visible within {freshness.VISIBLE_TIMEOUT_S:g} s; "
        f"hub meanwhile: {result.loop_failures} loop failures, {result.errors_logged} errors logged"
    )
    label = "freshness, marketing push to case and verdict readable via API"
    if not seen:
        run.measures.append(
            Measure.not_measured(
                "8", "freshness.p99", label, "s", "no change became visible", Target("<=", 1.0)
            )
        )
        return
    run.measures += [
        Measure("8", "freshness.p50", label + " p50", percentile(total, 50), "s", detail),
        Measure(
            "8", "freshness.p99", label + " p99", percentile(total, 99), "s", detail, target=Target("<=", 1.0)
        ),
    ]
    if waits:
        run.measures += [
            Measure(
                "8",
                f"freshness.{name}.p{pct}",
                f"  {what} p{pct}",
                percentile(samples, pct),
                "s",
                f"{len(samples)} changes",
            )
            for name, what, samples in (
                ("poll_wait", "push to pick-up from the push inbox", waits),
                ("pipeline", "pick-up to readable case and verdict", pipeline),
            )
            for pct in (50, 99)
        ]


def forecast_section(run: Run) -> None:
    """9. Forecast refresh of every feeder, transformer and substation, with its alerts, on PostgreSQL."""
    scale = run.scale
    run.env.progress(
        f"forecast: refresh of {scale.forecast_feeders:,} feeders and {scale.forecast_transformers:,} "
        "transformers"
    )
    engine = run.env.fresh_engine()
    try:
        figures = forecast_refresh.measure_refresh(
            engine,
            feeders=scale.forecast_feeders,
            transformers=scale.forecast_transformers,
            substations=scale.forecast_substations,
        )
    finally:
        engine.dispose()
    run.extra["forecast"] = asdict(figures)
    detail = (
        f"{figures.equipment:,} equipment, {figures.rows_read:,} daily peaks, {figures.alerts:,} alerts; "
        f"seeded in {figures.seed_s:,.0f} s"
    )
    full = scale is FULL
    run.measures += [
        Measure(
            "9",
            "forecast.refresh_s",
            "forecast refresh, whole grid",
            figures.refresh_s,
            "s",
            detail,
            target=Target("<=", FORECAST_REFRESH_TARGET_S) if full else None,
        ),
        Measure(
            "9",
            "forecast.rows_per_s",
            "  daily peaks read and forecast",
            figures.rows_per_s,
            "rows/s",
            f"{figures.equipment_per_s:,.0f} equipment/s",
            target=Target(">=", FORECAST_ROWS_TARGET_PER_S),
        ),
        Measure(
            "9",
            "forecast.peak_rss_mb",
            "  peak RSS of the bench process",
            figures.peak_rss_mb,
            "MB",
            "the refresh's high-water mark",
            target=Target("<=", FORECAST_RSS_TARGET_MB) if full else None,
        ),
    ]


def assistant_section(run: Run) -> None:
    """10. Assistant answer latency over the full knowledge base, progress from a SQLite case database."""
    import tempfile

    scale = run.scale
    run.env.progress(
        f"assistant: questions over the shipped knowledge base and {scale.assistant_cases:,} cases"
    )
    with tempfile.TemporaryDirectory() as work:
        engine = create_engine(f"sqlite:///{work}/assistant-bench.db")
        try:
            create_schema(engine)
            figures = assistant_latency.measure_assistant(
                engine, cases=scale.assistant_cases, rounds=scale.assistant_rounds
            )
        finally:
            engine.dispose()
    run.extra["assistant"] = asdict(figures)
    for result in figures.results:
        detail = f"{result.questions:,} questions, max {result.max_ms:,.1f} ms; {figures.entries} entries"
        run.measures += [
            Measure(
                "10",
                f"assistant.{result.kind}.p50",
                f"assistant p50, {result.kind}",
                result.p50_ms,
                "ms",
                detail,
            ),
            Measure(
                "10",
                f"assistant.{result.kind}.p99",
                f"assistant p99, {result.kind}",
                result.p99_ms,
                "ms",
                detail,
                target=Target("<=", ASSISTANT_P99_TARGET_MS) if result.kind == "all" else None,
            ),
        ]


def instances_section(run: Run) -> None:
    """11. One hub instance against two on this machine: the relay under its lease, competing consumers."""
    records = legacy_records(run.scale.instances_records)
    runs = []
    for count in (1, 2):
        run.purge()
        run.env.progress(f"instances: {count} hub instance(s), {len(records):,} records staged to applied")
        runs.append(
            instances.measure_instances(
                run.env.fresh_engine, run.env.amqp_url, run.env.schema_url, run.workflow, records, count
            )
        )
    run.purge()
    one, two = runs
    if (one.events, one.cases_digest) != (two.events, two.cases_digest):
        raise YekuoError(
            f"two instances did not build what one built: {two.events} events and cases {two.cases_digest} "
            f"against {one.events} and {one.cases_digest}"
        )
    run.extra["instances"] = [asdict(figures) for figures in runs]
    run.measures += [
        Measure(
            "11",
            "instances.one",
            "one hub instance (relay, workflow consumer), staged to applied",
            rate(one.events, one.seconds),
            "ev/s",
            f"{one.events:,} events; relay lease tokens {one.relay_tokens}",
        ),
        Measure(
            "11",
            "instances.two",
            "two hub instances, the same work",
            rate(two.events, two.seconds),
            "ev/s",
            f"{two.events:,} events, the same cases ({two.cases_digest}); "
            f"relay lease tokens {two.relay_tokens}; "
            "2 cores, so no speed-up is expected: the ratio shows what coordination costs",
            ratio_to="instances.one",
            target=Target(">=", 0.8, "ratio"),
        ),
    ]


def rechecks_section(run: Run) -> None:
    """12. The feasibility consumer under a stream of grid and load changes: queue depth, then drain time."""
    scale = run.scale
    spec = next(spec for spec in run.consumers if spec.name.endswith("feasibility"))
    run.purge()
    run.env.progress(
        f"rechecks: {scale.rechecks_applications} applications, {scale.rechecks_transformers} transformers, "
        f"{scale.rechecks_changes_per_s:.0f} changes/s for {scale.rechecks_stream_s:.0f} s"
    )
    engine = run.env.fresh_engine()
    try:
        figures = feasibility_backlog.measure_backlog(
            engine,
            run.env.amqp_url,
            spec,
            applications=scale.rechecks_applications,
            transformers=scale.rechecks_transformers,
            stream_s=scale.rechecks_stream_s,
            changes_per_s=scale.rechecks_changes_per_s,
            drain_limit_s=DRAIN_LIMIT_S,
        )
    finally:
        engine.dispose()
        run.purge()
    run.extra["rechecks"] = asdict(figures)
    detail = (
        f"{figures.changes:,} changes over {figures.stream_s:.0f} s on {figures.applications} applications "
        f"and {figures.transformers} transformers; {figures.handled:,} events handled, {figures.assessed:,} "
        f"assessments published; a final re-assessment of every open application, none skipped as unchanged, "
        f"changed the verdict or reservations of {figures.final_changed}"
    )
    drain = (
        Measure(
            "12",
            "rechecks.drain",
            "feasibility drain after the changes stop",
            figures.drain_s,
            "s",
            "queue, due re-checks and outbox empty",
            target=Target("<=", 10.0),
        )
        if figures.drain_s is not None
        else Measure.not_measured(
            "12",
            "rechecks.drain",
            "feasibility drain after the changes stop",
            "s",
            f"not drained within {figures.drain_limit_s:.0f} s",
            Target("<=", 10.0),
        )
    )
    run.measures += [
        Measure(
            "12",
            "rechecks.max_queue",
            "feasibility queue, most messages",
            figures.max_queue,
            "msg",
            f"mean {figures.mean_queue:,.0f}; " + detail,
            target=Target("<=", 999.0),
        ),
        drain,
    ]


SECTION_RUNNERS: dict[str, Callable[[Run], None]] = {
    "raw": raw_section,
    "publish": publish_section,
    "durable": durable_section,
    "consume": consume_section,
    "feed": feed_section,
    "feasibility": feasibility_section,
    "api": api_section,
    "freshness": freshness_section,
    "forecast": forecast_section,
    "assistant": assistant_section,
    "instances": instances_section,
    "rechecks": rechecks_section,
}


def _run_section(run: Run, name: str) -> None:
    """Run one section; retry it once if a service was briefly away (the machine is shared)."""
    number = str(SECTIONS.index(name) + 1)
    for attempt in (1, 2):
        kept = len(run.measures)
        try:
            SECTION_RUNNERS[name](run)
            return
        except BusUnavailableError as exc:
            del run.measures[kept:]
            if attempt == 1:
                run.env.progress(f"section {name}: {exc}; trying again in {RETRY_AFTER_S:.0f} s")
                time.sleep(RETRY_AFTER_S)
                continue
            error: Exception = exc
        except (YekuoError, OSError, RuntimeError, ValueError) as exc:
            del run.measures[kept:]
            error = exc
        run.failures[name] = repr(error)
        run.env.progress(f"section {name} failed: {error!r}")
        run.measures.append(
            Measure.not_measured(number, f"{name}.error", f"section {name}", "", f"error: {error}")
        )
        return


def _run_info(
    run: Run, started: datetime, seconds: float, profiled: bool, load_at_start: tuple[float, float, float]
) -> dict[str, Any]:
    return {
        "mode": run.scale.name,
        "started_at": started.isoformat(),
        "seconds": round(seconds, 1),
        "sizes": asdict(run.scale),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": os.getloadavg(),
            "python": platform.python_version(),
            "pika": package_metadata.version("pika"),
            "rabbitmq": run.extra.get("rabbitmq_version"),
            "postgresql": _safely(run.env.database_version),
        },
        "profiled": profiled,
        "profiles": run.profiles.written,
        "failures": run.failures,
    }


def _safely(read: Callable[[], str]) -> str | None:
    try:
        return read()
    except Exception as exc:
        return f"unknown ({exc!r})"


def _cleanup(run: Run) -> None:
    try:
        with RabbitMQBus(run.env.amqp_url) as bus:
            for queue in run.topology.queues:
                bus.delete_queue(queue.name)
            bus.delete_exchange(BENCH_EXCHANGE)
        run.env.drop_bench_schema()
    except Exception as exc:
        # Leftovers are dropped by the next run; a failed cleanup must not cost this run its results.
        run.env.progress(f"cleaning up the benchmark's queues and schema failed: {exc!r}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line of `python -m bench`."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under three minutes")
    parser.add_argument("--only", help=f"comma-separated sections to run, from: {', '.join(SECTIONS)}")
    parser.add_argument(
        "--profile", action="store_true", help="write pyinstrument profiles of the hub stages"
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS_DIR / "latest.json", help="where to write the JSON"
    )
    args = parser.parse_args(argv)
    if args.only:
        unknown = sorted(set(args.only.split(",")) - set(SECTIONS))
        if unknown:
            parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the table, write the JSON; 1 if a section could not run."""
    args = parse_args(argv)
    # The hub's own events (case events, feasibility results, projection notices) are staged for the exchange
    # the settings name: the benchmark's.
    os.environ["YEKUO_EXCHANGE"] = BENCH_EXCHANGE
    progress = Progress()
    scale = QUICK if args.quick else FULL
    run = Run(
        env=BenchEnv.from_environment(progress),
        scale=scale,
        profiles=Profiles(args.out.parent if args.profile else None),
        consumers=bench_consumers(),
    )
    chosen = args.only.split(",") if args.only else list(SECTIONS)
    started = datetime.now(UTC)
    clock = time.monotonic()
    load_at_start = os.getloadavg()
    progress(f"{scale.name} run: {', '.join(chosen)}")
    try:
        for name in SECTIONS:
            if name in chosen:
                _run_section(run, name)
    finally:
        _cleanup(run)
    rows = evaluate(run.measures)
    document = results_document(
        rows, _run_info(run, started, time.monotonic() - clock, args.profile, load_at_start), run.extra
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    print(
        f"yekuo-hub benchmark ({scale.name}, {os.cpu_count()} CPUs, load average "
        f"{load_at_start[0]:.1f} at start and {os.getloadavg()[0]:.1f} at end; "
        "ratios against the raw limit measured in this run)"
    )
    print("\n".join(table_lines(rows)))
    print(f"figures in {args.out}")
    progress("done")
    return 1 if run.failures else 0
