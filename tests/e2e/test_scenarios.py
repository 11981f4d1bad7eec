"""Every shipped scenario passes against the hub, and a scenario with wrong expectations fails, saying why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ground.settings import PROJECT_ROOT
from simulators.scenario.loader import load_scenario
from simulators.scenario.report import render_text
from simulators.scenario.runner import RunOptions, run_scenario
from yekuo.cli import main
from yekuo.hub import Hub

SCENARIOS = PROJECT_ROOT / "scenarios"


@pytest.mark.parametrize(
    "name",
    [
        "normal-day",
        "marketing-outage",
        "dispatch-gbk-garbage",
        "pms-bulk-rerating",
        "stress-day",
        "manual-baseline",
        "integrated",
    ],
)
def test_a_shipped_scenario_passes(name: str, tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    progress: list[str] = []
    result = run_scenario(scenario, Hub, RunOptions(work_dir=tmp_path), say=progress.append)
    assert result.passed, render_text(result) + "\n".join(progress)
    assert result.checks, "a shipped scenario checks something"
    assert any(line.startswith("settled:") for line in progress)


WRONG = """
expect:
  cases: 25
  overdue_cases: 0
  verdicts:
    - {application: "2611060024353", verdict: not_feasible}
    - {application: "2699999999999", verdict: feasible}
  parked:
    - {kind: invalid, system: dispatch, count: {min: 1}}
  files_error: 0
"""


def test_a_scenario_with_wrong_expectations_fails_naming_each_one_and_why(tmp_path: Path) -> None:
    text = (SCENARIOS / "normal-day.yaml").read_text(encoding="utf-8")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(text[: text.index("expect:")] + WRONG, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "yekuo.cli",
            "scenario",
            "run",
            str(wrong),
            "--json",
            "--work-dir",
            str(tmp_path / "w"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "settling the day" in run.stderr  # progress goes to stderr, the report alone to stdout
    report = json.loads(run.stdout)
    assert report["passed"] is False and report["settled"] is True
    by_name = {check["name"]: check for check in report["checks"]}
    assert by_name["cases"] == {
        "name": "cases",
        "expected": "exactly 25",
        "actual": "24",
        "passed": False,
        "why": "24 applications tracked as cases",
    }
    overdue = by_name["overdue_cases"]
    assert (overdue["actual"], overdue["passed"]) == ("4", False)
    assert overdue["why"] == "4 open cases whose stage deadline lies before the simulated day 2026-11-26"
    assert by_name["verdict of 2611060024353"]["actual"] == "feasible"
    assert by_name["verdict of 2611060024353"]["why"] == "assessed feasible"
    assert by_name["verdict of 2699999999999"]["why"] == "no assessment of this application"
    parked = by_name["parked invalid from dispatch"]
    assert (parked["actual"], parked["passed"], parked["why"]) == ("0", False, "parked reasons: none")
    assert by_name["files in error"]["passed"] is True


def test_an_invalid_scenario_file_exits_2_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\nseed: 1\nday_seconds: -1\n", encoding="utf-8")
    assert main(["scenario", "run", str(broken)]) == 2
    assert f"{broken}:3: day_seconds: Input should be greater than 0" in capsys.readouterr().err
