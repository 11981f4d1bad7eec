"""Backtest figures the forecast tests measure, shown in the terminal summary and kept in var/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

RESULTS_FILE = Path(__file__).resolve().parents[3] / "var" / "forecast_backtests.json"
_measured: dict[str, dict[str, float | str]] = {}


@pytest.fixture
def backtest_results() -> dict[str, dict[str, float | str]]:
    """Where a backtest records its figures (name -> figures) for the summary and the results file."""
    return _measured


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _measured:
        return
    terminalreporter.section("forecast backtests")
    for name, figures in sorted(_measured.items()):
        shown = ", ".join(f"{key} {value}" for key, value in figures.items())
        terminalreporter.write_line(f"{name}: {shown}")
    RESULTS_FILE.parent.mkdir(exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(_measured, indent=2, sort_keys=True) + "\n", encoding="utf-8")
