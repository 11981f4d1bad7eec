"""The benchmark run: its command line, its scales, and names that keep it off the hub's queues."""

from __future__ import annotations

from dataclasses import fields

import pytest

from bench.env import BENCH_EXCHANGE, BENCH_SCHEMA, BenchEnv, Progress
from bench.run import FULL, QUICK, SECTIONS, bench_consumers, parse_args
from ground.errors import ConfigError
from pipeline.consumers import consumer_topology
from yekuo.consumers import CONSUMERS


def test_only_takes_known_sections() -> None:
    assert parse_args(["--quick", "--only", "raw,api"]).only == "raw,api"
    with pytest.raises(SystemExit):
        parse_args(["--only", "raw,warp"])


def test_quick_is_the_same_run_with_smaller_sizes() -> None:
    for field in fields(QUICK):
        quick, full = getattr(QUICK, field.name), getattr(FULL, field.name)
        if isinstance(quick, int | float) and field.name not in {"api_rate", "publish_rounds"}:
            assert quick <= full, field.name
    # The API target is stated at 200 requests/s: both runs measure at that rate.
    assert QUICK.api_rate == FULL.api_rate == 200.0
    assert FULL.api_cases == 100_000
    assert set(SECTIONS) == {
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
    }


def test_benchmark_queues_and_exchanges_are_its_own() -> None:
    consumers = bench_consumers()
    assert [spec.handler for spec in consumers] == [spec.handler for spec in CONSUMERS]
    hub_queues = {queue.name for queue in consumer_topology(["yekuo.events"], CONSUMERS).queues}
    bench = consumer_topology([BENCH_EXCHANGE], consumers)
    assert {queue.name for queue in bench.queues}.isdisjoint(hub_queues)
    assert all(queue.name.startswith("yekuo.bench.") for queue in bench.queues)
    assert "yekuo.events" not in {binding.exchange for queue in bench.queues for binding in queue.bindings}


def test_the_database_url_gets_the_benchmark_schema() -> None:
    env = BenchEnv("amqp://x", "postgresql+psycopg://postgres@127.0.0.1:5432/test", Progress())
    assert env.schema_url.endswith(f"?options=-csearch_path%3D{BENCH_SCHEMA}")
    with_query = BenchEnv("amqp://x", "postgresql+psycopg://db/test?sslmode=disable", Progress())
    assert with_query.schema_url.endswith(f"&options=-csearch_path%3D{BENCH_SCHEMA}")
    with pytest.raises(ConfigError, match="PostgreSQL"):
        _ = BenchEnv("amqp://x", "sqlite:///hub.db", Progress()).schema_url
