"""The dispatch file-feed figures: runs bench/file_feed.py in its own process and reads what it measured.

Contract with bench/file_feed.py: it is run as
    python bench/file_feed.py --json OUT [--quick]
and writes to OUT a JSON object {"runs": [{"format": "cime" | "csv", "rows": int, "seconds": float,
"peak_rss_mib": float, ...}, ...]}, one run per format and size (10k, 100k and 1M rows; --quick may stop
earlier), other keys ignored. It runs each file in its own process, so each peak RSS is that run's alone.
A script without the --json option is reported as such rather than read from its printed table.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FEED_SCRIPT = Path(__file__).resolve().parent / "file_feed.py"
_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class FeedRun:
    """One file of one format and size, read by the feed."""

    format: str
    rows: int
    seconds: float
    peak_rss_mib: float

    @property
    def rows_per_s(self) -> float:
        """Rows read per second."""
        return self.rows / self.seconds


@dataclass(frozen=True)
class FeedOutcome:
    """The runs, or why there are none."""

    runs: list[FeedRun]
    missing: str = ""


def parse_runs(document: Mapping[str, Any]) -> list[FeedRun]:
    """The runs of a file_feed.py result document; ValueError names what is wrong with it."""
    runs = document.get("runs")
    if not isinstance(runs, list) or not runs:
        raise ValueError("the result has no 'runs' list")
    parsed = []
    for index, run in enumerate(runs):
        try:
            parsed.append(
                FeedRun(
                    format=str(run["format"]),
                    rows=int(run["rows"]),
                    seconds=float(run["seconds"]),
                    peak_rss_mib=float(run["peak_rss_mib"]),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"run #{index} lacks or has a bad {exc}: {run!r}") from exc
        if parsed[-1].rows <= 0 or parsed[-1].seconds <= 0:
            raise ValueError(f"run #{index} has no rows or no duration: {run!r}")
    return parsed


def by_format(runs: Sequence[FeedRun]) -> dict[str, list[FeedRun]]:
    """Runs grouped per format, smallest file first."""
    grouped: dict[str, list[FeedRun]] = {}
    for run in runs:
        grouped.setdefault(run.format, []).append(run)
    return {name: sorted(group, key=lambda run: run.rows) for name, group in grouped.items()}


def rss_growth(runs: Sequence[FeedRun]) -> float:
    """How much more peak RSS the largest file took than the smallest, as a fraction (0.1 is 10%)."""
    smallest, largest = min(runs, key=lambda run: run.rows), max(runs, key=lambda run: run.rows)
    return largest.peak_rss_mib / smallest.peak_rss_mib - 1.0


def time_per_row_growth(runs: Sequence[FeedRun]) -> float:
    """Time per row of the largest file over that of the smallest: about 1 (or less) when time is linear."""
    smallest, largest = min(runs, key=lambda run: run.rows), max(runs, key=lambda run: run.rows)
    return (largest.seconds / largest.rows) / (smallest.seconds / smallest.rows)


def run_file_feed(quick: bool, script: Path = FEED_SCRIPT) -> FeedOutcome:
    """Run the file-feed benchmark if it exists; its figures, or the reason there are none."""
    if not script.exists():
        return FeedOutcome([], "file feed benchmark missing")
    usage = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    if "--json" not in usage.stdout:
        return FeedOutcome([], f"{script.name} has no --json option to hand over its figures")
    with tempfile.TemporaryDirectory(prefix="yekuo-bench-feed-") as folder:
        out = Path(folder) / "feed.json"
        command = [sys.executable, str(script), "--json", str(out), *(["--quick"] if quick else [])]
        try:
            # stderr is left to the terminal: it carries the feed's own progress.
            finished = subprocess.run(command, stdout=subprocess.DEVNULL, timeout=_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return FeedOutcome([], f"file feed benchmark ran over {_TIMEOUT_S:.0f} s")
        if finished.returncode != 0:
            return FeedOutcome([], f"file feed benchmark exited with status {finished.returncode}")
        try:
            return FeedOutcome(parse_runs(json.loads(out.read_text(encoding="utf-8"))))
        except (OSError, ValueError) as exc:
            return FeedOutcome([], f"file feed benchmark result unreadable: {exc}")
