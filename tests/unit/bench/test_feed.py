"""The file-feed figures: the contract with bench/file_feed.py, RSS flatness and linear time."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench.feed import FeedRun, by_format, parse_runs, rss_growth, run_file_feed, time_per_row_growth

RUNS = {
    "runs": [
        {"format": "csv", "rows": 1_000_000, "seconds": 20.0, "peak_rss_mib": 66.0},
        {"format": "csv", "rows": 10_000, "seconds": 0.25, "peak_rss_mib": 60.0},
        {"format": "cime", "rows": 10_000, "seconds": 0.5, "peak_rss_mib": 70.0},
        {"format": "csv", "rows": 100_000, "seconds": 2.0, "peak_rss_mib": 61.0},
    ]
}


def test_runs_are_grouped_per_format_smallest_first() -> None:
    grouped = by_format(parse_runs(RUNS))
    assert list(grouped) == ["csv", "cime"]
    assert [run.rows for run in grouped["csv"]] == [10_000, 100_000, 1_000_000]
    assert grouped["csv"][0].rows_per_s == 40_000


def test_rss_growth_and_time_per_row_growth() -> None:
    csv = by_format(parse_runs(RUNS))["csv"]
    assert rss_growth(csv) == pytest.approx(0.10)
    # 25 µs per row at 10k rows, 20 µs at 1M: faster per row, so time grows (sub)linearly.
    assert time_per_row_growth(csv) == pytest.approx(0.8)
    quadratic = [FeedRun("csv", 10_000, 1.0, 50.0), FeedRun("csv", 100_000, 100.0, 50.0)]
    assert time_per_row_growth(quadratic) == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({}, "no 'runs' list"),
        ({"runs": []}, "no 'runs' list"),
        ({"runs": [{"format": "csv", "rows": 10}]}, "run #0 lacks or has a bad"),
        ({"runs": [{"format": "csv", "rows": "many", "seconds": 1, "peak_rss_mib": 1}]}, "run #0"),
        ({"runs": [{"format": "csv", "rows": 0, "seconds": 1, "peak_rss_mib": 1}]}, "no rows or no duration"),
    ],
)
def test_a_bad_result_document_is_refused_with_the_reason(document: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_runs(document)


def _script(folder: Path, body: str) -> Path:
    script = folder / "file_feed.py"
    usage = "if '--help' in sys.argv:\n    print('--json OUT  --quick')\n    sys.exit(0)\n"
    script.write_text(f"import json, sys\n{usage}{body}\n", encoding="utf-8")
    return script


def test_missing_script_is_reported_not_invented(tmp_path: Path) -> None:
    outcome = run_file_feed(quick=True, script=tmp_path / "file_feed.py")
    assert outcome.runs == [] and outcome.missing == "file feed benchmark missing"


def test_the_script_is_run_with_the_contract_arguments(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "out = sys.argv[sys.argv.index('--json') + 1]\n"
        "quick = '--quick' in sys.argv\n"
        f"runs = {json.dumps(RUNS['runs'])}\n"
        "json.dump({'runs': runs[:2] if quick else runs}, open(out, 'w'))",
    )
    assert len(run_file_feed(quick=True, script=script).runs) == 2
    full = run_file_feed(quick=False, script=script)
    assert full.missing == "" and len(full.runs) == 4


def test_a_script_without_the_json_option_is_reported(tmp_path: Path) -> None:
    script = tmp_path / "file_feed.py"
    script.write_text("print('format rows seconds')\n", encoding="utf-8")
    outcome = run_file_feed(quick=True, script=script)
    assert (
        outcome.runs == [] and outcome.missing == "file_feed.py has no --json option to hand over its figures"
    )


def test_a_failing_or_silent_script_is_reported(tmp_path: Path) -> None:
    failing = _script(tmp_path, "sys.exit(3)")
    assert run_file_feed(quick=True, script=failing).missing == "file feed benchmark exited with status 3"
    silent = _script(tmp_path, "pass")
    assert run_file_feed(quick=True, script=silent).missing.startswith(
        "file feed benchmark result unreadable"
    )


def test_the_script_runs_under_this_interpreter(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "out = sys.argv[sys.argv.index('--json') + 1]\n"
        "json.dump({'runs': [{'format': sys.executable, 'rows': 1, 'seconds': 1, 'peak_rss_mib': 1}]}, "
        "open(out, 'w'))",
    )
    [run] = run_file_feed(quick=True, script=script).runs
    assert run.format == sys.executable
