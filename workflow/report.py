"""The stage report (`yekuo report stages`): the stage analytics as plain-text tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from workflow.analytics import StageAnalytics, StageStats

_HEADERS = ("stage", "done", "mean", "p50", "p90", "over limit", "rework", "in progress")


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _table(
    title: str, label: str | None, rows: Sequence[tuple[str, StageStats]], names: Mapping[str, str]
) -> str:
    """A titled table; with a label column (class or unit) before the stage when label is given."""
    headers = (label, *_HEADERS) if label else _HEADERS
    text_columns = len(headers) - len(_HEADERS) + 1
    body = []
    for group, item in rows:
        cells = (
            f"{item.stage} {names.get(item.stage, '')}".strip(),
            str(item.completed),
            _days(item.mean_days),
            _days(item.p50_days),
            _days(item.p90_days),
            str(item.over_limit),
            str(item.rework),
            str(item.in_progress),
        )
        body.append((group, *cells) if label else cells)
    widths = [max([_width(header)] + [_width(row[i]) for row in body]) for i, header in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        # Text columns (group and stage) align left, figures right.
        return "  ".join(
            cell + " " * (width - _width(cell)) if i < text_columns else " " * (width - _width(cell)) + cell
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    lines = [title, line(headers), "  ".join("-" * width for width in widths)]
    lines.extend(line(row) for row in body)
    if not body:
        lines.append("(no stage visits)")
    return "\n".join(lines)


def _width(text: str) -> int:
    """Display width: CJK characters take two terminal columns."""
    return sum(2 if ord(char) > 0x2E80 else 1 for char in text)


def render_stage_report(analytics: StageAnalytics, stage_names: Mapping[str, str] | None = None) -> str:
    """The analytics as three tables (per stage, per stage and class, per stage and unit) and rework totals.

    Durations are in working days; `done` counts stage visits that were left, `over limit` those that
    finished after their deadline.
    """
    names = stage_names or {}
    by_stage = [("", item) for item in analytics.by_stage]
    by_class = [(item.customer_class or "-", item) for item in analytics.by_class]
    by_unit = [(item.unit or "-", item) for item in analytics.by_unit]
    sections = [
        _table("Stage durations (working days)", None, by_stage, names),
        _table("By customer class", "class", by_class, names),
        _table("By supply unit", "unit", by_unit, names),
        f"Rework: {analytics.rework_total} return(s) to an earlier stage"
        f" in {analytics.cases_with_rework} case(s)",
    ]
    return "\n\n".join(sections) + "\n"
