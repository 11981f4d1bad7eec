"""Benchmark results: measures, ratios to their reference, target verdicts, the printed table and the JSON.

The machine is shared and noisy, so every hub figure is set against a reference measured in the same run
(a ratio), and targets on throughput are stated as ratios. A measure that could not be taken carries the
reason instead of a value, and its target is NOT MEASURED rather than passed or missed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

Verdict = Literal["PASS", "MISS", "NOT MEASURED"]
VERDICTS: tuple[Verdict, ...] = ("PASS", "MISS", "NOT MEASURED")


@dataclass(frozen=True)
class Target:
    """A bound the measure's value (or its ratio to the reference) must meet."""

    op: Literal[">=", "<="]
    bound: float
    applies_to: Literal["value", "ratio"] = "value"

    def met_by(self, reached: float) -> bool:
        """Whether a reached figure meets the bound."""
        return reached >= self.bound if self.op == ">=" else reached <= self.bound


@dataclass(frozen=True)
class Measure:
    """One line of the table: a figure, or the reason it was not measured."""

    section: str
    key: str
    label: str
    value: float | None
    unit: str
    detail: str = ""
    missing: str = ""
    ratio_to: str | None = None
    target: Target | None = None

    @classmethod
    def not_measured(
        cls, section: str, key: str, label: str, unit: str, reason: str, target: Target | None = None
    ) -> Measure:
        """A measure that could not be taken, saying why."""
        return cls(section, key, label, None, unit, missing=reason, target=target)


@dataclass(frozen=True)
class Row:
    """A measure with its ratio and verdict worked out."""

    measure: Measure
    ratio: float | None
    verdict: Verdict | None
    reference: str = ""


def percentile(samples: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile: the smallest sample with at least pct% of the samples at or below it."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 < pct <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {pct}")
    ordered = sorted(samples)
    rank = math.ceil(pct / 100 * len(ordered))
    return ordered[rank - 1]


def rate(count: int, seconds: float) -> float:
    """Items per second; a zero or negative duration is a bug in the caller, not a figure."""
    if seconds <= 0:
        raise ValueError(f"rate over a duration of {seconds} s")
    return count / seconds


def evaluate(measures: Iterable[Measure]) -> list[Row]:
    """Each measure with its ratio to its reference (same run) and its target verdict."""
    measures = list(measures)
    by_key = {measure.key: measure for measure in measures}
    rows = []
    for measure in measures:
        ratio = None
        label = ""
        if measure.ratio_to is not None:
            reference = by_key.get(measure.ratio_to)
            if reference is None:
                raise KeyError(f"measure {measure.key!r} refers to unknown measure {measure.ratio_to!r}")
            label = reference.label
            if measure.value is not None and reference.value:
                ratio = measure.value / reference.value
        rows.append(Row(measure, ratio, _verdict(measure, ratio), label))
    return rows


def _verdict(measure: Measure, ratio: float | None) -> Verdict | None:
    target = measure.target
    if target is None:
        return None
    reached = ratio if target.applies_to == "ratio" else measure.value
    if reached is None:
        return "NOT MEASURED"
    return "PASS" if target.met_by(reached) else "MISS"


def format_value(value: float, unit: str) -> str:
    """A figure with its unit, rounded for reading: 33,412 msg/s, 12.3 ms, 41.5%."""
    if unit == "ratio":
        return f"{value:.1%}"
    if unit in {"ms", "s"}:
        return f"{value:,.1f} {unit}" if value >= 10 else f"{value:,.2f} {unit}"
    if unit == "MB":
        return f"{value:,.1f} MB"
    return f"{value:,.0f} {unit}"


def _target_text(measure: Measure) -> str:
    target = measure.target
    if target is None:
        return ""
    if target.applies_to == "ratio":
        return f"ratio {target.op} {format_value(target.bound, 'ratio')}"
    return f"{target.op} {format_value(target.bound, measure.unit)}"


def table_lines(rows: Sequence[Row]) -> list[str]:
    """The table as text lines: section, measure, figure, ratio, target, result, detail."""
    header = ("#", "measure", "figure", "ratio", "target", "result", "detail")
    cells = [header]
    for row in rows:
        measure = row.measure
        figure = format_value(measure.value, measure.unit) if measure.value is not None else "not measured"
        detail = measure.detail if measure.value is not None else f"not measured: {measure.missing}"
        ratio = f"{row.ratio:.1%} of {row.reference}" if row.ratio is not None else ""
        cells.append(
            (measure.section, measure.label, figure, ratio, _target_text(measure), row.verdict or "", detail)
        )
    # The last column (detail) is left unpadded so long notes do not widen every line.
    widths = [max(len(line[col]) for line in cells) for col in range(len(header) - 1)]
    lines = []
    for index, line in enumerate(cells):
        padded = "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False))
        lines.append(f"{padded}  {line[-1]}".rstrip())
        if index == 0:
            lines.append("-" * len(lines[0]))
    return lines


def results_document(rows: Sequence[Row], run: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the run measured, as the JSON document written to bench/results/latest.json."""
    measures = []
    for row in rows:
        entry = asdict(row.measure)
        entry["ratio"] = row.ratio
        entry["reference"] = row.reference or None
        entry["verdict"] = row.verdict
        measures.append(entry)
    verdicts = [row.verdict for row in rows if row.verdict is not None]
    return {
        "run": dict(run),
        "summary": {verdict: verdicts.count(verdict) for verdict in VERDICTS},
        "measures": measures,
        "extra": dict(extra),
    }
