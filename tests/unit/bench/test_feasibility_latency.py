"""The feasibility bench on a small grid: both paths run and report ordered percentiles."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from bench.feasibility_latency import measure_feasibility, synthetic_grid


def test_a_small_run_reports_both_paths(sqlite_engine: Engine) -> None:
    bench = measure_feasibility(sqlite_engine, transformers=500, feeders=20, substations=4, checks=20)
    assert [result.path for result in bench.results] == ["engine", "database"]
    for result in bench.results:
        assert result.checks == 20
        assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms


def test_the_synthetic_grid_has_the_asked_sizes_and_links() -> None:
    items = synthetic_grid(100, 10, 2)
    kinds = [item.kind for item in items]
    assert (kinds.count("transformer"), kinds.count("feeder"), kinds.count("substation")) == (100, 10, 2)
    assert kinds.count("main_transformer") == 4
    feeders = {item.equipment_id: item for item in items if item.kind == "feeder"}
    assert all(item.feeder_id in feeders for item in items if item.kind == "transformer")
