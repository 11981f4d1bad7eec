"""The assistant bench on a small database: every kind of question is timed and answered as its kind."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from bench.assistant_latency import measure_assistant


def test_a_small_run_reports_every_kind_and_all_together(sqlite_engine: Engine) -> None:
    bench = measure_assistant(sqlite_engine, cases=12, rounds=1)
    assert [result.kind for result in bench.results] == ["knowledge", "refused", "progress", "all"]
    counts = {result.kind: result.questions for result in bench.results}
    assert counts["progress"] == 12 and counts["refused"] == 8 and counts["knowledge"] > bench.entries
    assert counts["all"] == counts["knowledge"] + counts["refused"] + counts["progress"]
    for result in bench.results:
        assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
    # Each path timed is the path the question was asked for.
    by_kind = {result.kind: result for result in bench.results}
    assert by_kind["progress"].answered_as_asked == 12 and by_kind["refused"].answered_as_asked == 8
    assert by_kind["knowledge"].answered_as_asked >= 0.9 * counts["knowledge"]
