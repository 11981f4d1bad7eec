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
    # Every progress question opens its application; how many of the others the retrieval answers as
    # asked is its own accuracy (assistant/evaluation.py), reported beside the latency.
    by_kind = {result.kind: result for result in bench.results}
    assert by_kind["progress"].answered_as_asked == 12
    for result in bench.results:
        assert 0 <= result.answered_as_asked <= result.questions
