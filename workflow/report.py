"""The reports of `yekuo report stages` and `yekuo report process`: the analytics as plain-text tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from workflow.analytics import Bottleneck, StageAnalytics, StageStats
from workflow.process import ANY_CAUSE, GroupFigures, ProcessFigures, Spread

_HEADERS = (
    "stage",
    "done",
    "mean",
    "min",
    "p10",
    "p50",
    "p90",
    "max",
    "stdev",
    "over limit",
    "rework",
    "in progress",
)


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
            _days(item.min_days),
            _days(item.p10_days),
            _days(item.p50_days),
            _days(item.p90_days),
            _days(item.max_days),
            _days(item.stdev_days),
            str(item.over_limit),
            str(item.rework),
            str(item.in_progress),
        )
        body.append((group, *cells) if label else cells)
    return _grid(title, headers, body, text_columns, "(no stage visits)")


def _grid(
    title: str, headers: Sequence[str], body: Sequence[Sequence[str]], text_columns: int, empty: str
) -> str:
    """A titled table: the first text_columns columns align left, figures right."""
    widths = [max([_width(header)] + [_width(row[i]) for row in body]) for i, header in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell + " " * (width - _width(cell)) if i < text_columns else " " * (width - _width(cell)) + cell
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    lines = [title, line(headers), "  ".join("-" * width for width in widths)]
    lines.extend(line(row) for row in body)
    if not body:
        lines.append(empty)
    return "\n".join(lines)


def _width(text: str) -> int:
    """Display width: CJK characters take two terminal columns."""
    return sum(2 if ord(char) > 0x2E80 else 1 for char in text)


def render_stage_report(analytics: StageAnalytics, stage_names: Mapping[str, str] | None = None) -> str:
    """The analytics as three tables (per stage, per stage and class, per stage and unit) and rework totals.

    Durations are in working days; `done` counts stage visits that were left, `over limit` those that
    finished after their deadline; the bottleneck tables rank stages and units by the working days their
    visits ran past their deadlines.
    """
    names = stage_names or {}
    by_stage = [("", item) for item in analytics.by_stage]
    by_class = [(item.customer_class or "-", item) for item in analytics.by_class]
    by_unit = [(item.unit or "-", item) for item in analytics.by_unit]
    sections = [
        _table("Stage durations (working days)", None, by_stage, names),
        _table("By customer class", "class", by_class, names),
        _table("By supply unit", "unit", by_unit, names),
        _bottleneck_table(
            "Bottleneck stages (working days past deadlines)", "stage", analytics.bottleneck_stages, names
        ),
        _bottleneck_table(
            "Bottleneck units (working days past deadlines)", "unit", analytics.bottleneck_units, names
        ),
        f"Rework: {analytics.rework_total} return(s) to an earlier stage"
        f" in {analytics.cases_with_rework} case(s)",
    ]
    return "\n\n".join(sections) + "\n"


def _bottleneck_table(title: str, label: str, items: Sequence[Bottleneck], names: Mapping[str, str]) -> str:
    body = [
        (
            f"{item.stage} {names.get(item.stage, '')}".strip() if item.stage else (item.unit or "-"),
            f"{item.excess_days:.2f}",
            str(item.over_limit),
            str(item.completed),
        )
        for item in items
    ]
    return _grid(title, (label, "days past", "over limit", "done"), body, 1, "(no completed stage visits)")


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _spread(spread: Spread) -> tuple[str, str, str]:
    return _days(spread.mean), _days(spread.p50), _days(spread.p90)


_PROCESS_HEADERS = (
    "cases",
    "energised",
    "wd mean",
    "wd p50",
    "wd p90",
    "cd mean",
    "cd p50",
    "cd p90",
    "in commitment",
    "in target",
    "rework",
)


def _process_table(title: str, label: str | None, rows: Sequence[tuple[str, GroupFigures]]) -> str:
    headers = (label, *_PROCESS_HEADERS) if label else _PROCESS_HEADERS
    body = []
    for group, item in rows:
        cells = (
            str(item.cases),
            str(item.energised),
            *_spread(item.working_days),
            *_spread(item.calendar_days),
            _share(item.within_commitment),
            _share(item.within_target),
            _share(item.rework[ANY_CAUSE].share),
        )
        body.append((group, *cells) if label else cells)
    return _grid(title, headers, body, 1 if label else 0, "(no cases)")


def render_process_report(figures: ProcessFigures) -> str:
    """The process figures as tables: days to power, commitments and rework, overall and per group.

    `wd` columns are working days (Chinese calendar), `cd` columns calendar days, both from submission
    to energisation; `in commitment` is the share energised by the end-to-end deadline, `in target` the
    share energised within the target working days; `rework` the share of cases with a return.
    """
    overall = figures.overall
    basis = "energised in the period" if figures.basis == "energised" else "submitted in the period"
    sections = [
        f"Process figures over the cases {basis}; wd = working days, cd = calendar days,"
        f" from submission to power; target = {figures.target_days} working days",
        _process_table("Overall", None, [("", overall)]),
        _process_table(
            "By customer class", "class", [(item.customer_class or "-", item) for item in figures.by_class]
        ),
        _process_table("By supply unit", "unit", [(item.unit or "-", item) for item in figures.by_unit]),
        _process_table(
            "By month of energisation", "month", [(item.month or "-", item) for item in figures.by_month]
        ),
        _grid(
            "Rework by cause (overall)",
            ("cause", "cases", "share", "returns"),
            [
                (cause, str(item.cases), _share(item.share), str(item.returns))
                for cause, item in overall.rework.items()
            ],
            1,
            "(no cases)",
        ),
        _grid(
            "Survey and scheme (working days, overall)",
            ("figure", "cases", "mean", "p50", "p90"),
            [
                (
                    "survey to scheme reply",
                    str(overall.survey_to_scheme_days.count),
                    *_spread(overall.survey_to_scheme_days),
                ),
                (
                    "scheme drafting",
                    str(overall.scheme_drafting_days.count),
                    *_spread(overall.scheme_drafting_days),
                ),
            ],
            1,
            "",
        ),
        _findings(figures),
        f"In progress: {figures.in_progress} case(s) not energised"
        + (" at the end of the period" if figures.basis == "energised" else ""),
    ]
    return "\n\n".join(sections) + "\n"


def _findings(figures: ProcessFigures) -> str:
    found = figures.findings
    lines = [
        f"Consistency findings: {found.total} ({found.open} open) on {found.cases} application(s)",
        *(f"  category {name}: {count}" for name, count in found.by_category.items()),
        *(f"  rule {name}: {count}" for name, count in found.by_rule.items()),
    ]
    return "\n".join(lines)
