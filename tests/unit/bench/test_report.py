"""Benchmark results: percentiles, ratios to the reference of the same run, verdicts, table and JSON."""

from __future__ import annotations

import json

import pytest

from bench.report import (
    Measure,
    Target,
    evaluate,
    format_value,
    percentile,
    rate,
    results_document,
    table_lines,
)


def test_percentile_is_nearest_rank() -> None:
    samples = [float(value) for value in range(100, 0, -1)]
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 99) == 99.0
    assert percentile(samples, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    # With fewer than 100 samples p99 is the largest one: the tail is never averaged away.
    assert percentile([1.0, 2.0, 3.0, 40.0], 99) == 40.0


def test_percentile_refuses_no_samples_and_bad_ranks() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], 0)


def test_rate_refuses_an_empty_duration() -> None:
    assert rate(3_000, 1.5) == 2_000
    with pytest.raises(ValueError, match="duration"):
        rate(10, 0.0)


def _hub_run() -> list[Measure]:
    return [
        Measure("2", "reference.2.publish", "raw windowed-confirm publish", 16_000.0, "msg/s"),
        Measure(
            "2",
            "hub.publish",
            "hub publish path",
            9_000.0,
            "ev/s",
            ratio_to="reference.2.publish",
            target=Target(">=", 0.5, "ratio"),
        ),
        Measure(
            "3",
            "durable.pipeline",
            "durable path",
            2_000.0,
            "ev/s",
            ratio_to="reference.2.publish",
            target=Target(">=", 0.25, "ratio"),
        ),
        Measure("7", "api.single.p99", "API p99", 12.5, "ms", target=Target("<=", 50.0)),
        Measure.not_measured(
            "6", "feasibility.p99", "feasibility p99", "ms", "feasibility not implemented", Target("<=", 20.0)
        ),
    ]


def test_ratios_and_verdicts() -> None:
    rows = {row.measure.key: row for row in evaluate(_hub_run())}
    assert rows["reference.2.publish"].ratio is None and rows["reference.2.publish"].verdict is None
    assert rows["hub.publish"].ratio == pytest.approx(0.5625)
    assert rows["hub.publish"].verdict == "PASS"
    assert rows["hub.publish"].reference == "raw windowed-confirm publish"
    assert rows["durable.pipeline"].ratio == pytest.approx(0.125)
    assert rows["durable.pipeline"].verdict == "MISS"
    assert rows["api.single.p99"].verdict == "PASS"
    assert rows["feasibility.p99"].verdict == "NOT MEASURED"


def test_a_bound_is_met_exactly_at_the_bound() -> None:
    assert Target(">=", 0.5, "ratio").met_by(0.5)
    assert Target("<=", 50.0).met_by(50.0)
    assert not Target("<=", 50.0).met_by(50.01)


def test_a_ratio_to_an_unmeasured_reference_is_not_measured() -> None:
    measures = [
        Measure.not_measured("4", "reference.4.consume", "raw consume", "msg/s", "broker down"),
        Measure(
            "4",
            "consume.workflow",
            "consume path",
            900.0,
            "ev/s",
            ratio_to="reference.4.consume",
            target=Target(">=", 0.5, "ratio"),
        ),
    ]
    [_, row] = evaluate(measures)
    assert row.ratio is None and row.verdict == "NOT MEASURED"


def test_a_ratio_to_an_unknown_measure_is_a_bug() -> None:
    with pytest.raises(KeyError, match="nowhere"):
        evaluate([Measure("2", "hub.publish", "hub", 1.0, "ev/s", ratio_to="nowhere")])


def test_format_value_per_unit() -> None:
    assert format_value(33_412.4, "msg/s") == "33,412 msg/s"
    assert format_value(0.4123, "ratio") == "41.2%"
    assert format_value(12.34, "ms") == "12.3 ms"
    assert format_value(0.912, "s") == "0.91 s"


def test_table_shows_every_figure_ratio_target_and_reason() -> None:
    lines = table_lines(evaluate(_hub_run()))
    text = "\n".join(lines)
    assert lines[0].split()[:3] == ["#", "measure", "figure"]
    hub = next(line for line in lines if "hub publish path" in line)
    assert "9,000 ev/s" in hub and "56.2% of raw windowed-confirm publish" in hub
    assert "ratio >= 50.0%" in hub and hub.rstrip().endswith("PASS")
    durable = next(line for line in lines if line.startswith("3"))
    assert "MISS" in durable
    assert "not measured: feasibility not implemented" in text and "NOT MEASURED" in text
    # Columns line up: every figure starts at the same offset.
    offsets = {
        line.index(figure) for line, figure in zip(lines[2:5], ("16,000", "9,000", "2,000"), strict=True)
    }
    assert len(offsets) == 1


def test_results_document_is_json_with_every_measure_and_a_summary() -> None:
    rows = evaluate(_hub_run())
    document = results_document(rows, {"mode": "quick"}, {"publish": {"events": 10}})
    parsed = json.loads(json.dumps(document))
    assert parsed["run"] == {"mode": "quick"}
    assert parsed["summary"] == {"PASS": 2, "MISS": 1, "NOT MEASURED": 1}
    by_key = {entry["key"]: entry for entry in parsed["measures"]}
    assert set(by_key) == {measure.key for measure in _hub_run()}
    assert by_key["hub.publish"]["ratio"] == pytest.approx(0.5625)
    assert by_key["hub.publish"]["target"] == {"op": ">=", "bound": 0.5, "applies_to": "ratio"}
    assert by_key["feasibility.p99"]["value"] is None
    assert by_key["feasibility.p99"]["missing"] == "feasibility not implemented"
    assert parsed["extra"] == {"publish": {"events": 10}}
