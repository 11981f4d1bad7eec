"""The stage report: the analytics as tables, and `yekuo report stages` printing them from the database."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from workflow.analytics import StageAnalytics, StageStats
from workflow.cases import CaseTracker
from workflow.report import render_stage_report
from yekuo.cli import main

from .events import application_event


def _stats(stage: str, **values: object) -> StageStats:
    base: dict[str, object] = {
        "stage": stage,
        "customer_class": None,
        "unit": None,
        "completed": 4,
        "mean_days": 1.25,
        "p50_days": 1.0,
        "p90_days": 2.5,
        "over_limit": 1,
        "rework": 0,
        "in_progress": 2,
    }
    base.update(values)
    return StageStats(**base)  # type: ignore[arg-type]


def test_the_report_has_one_table_per_grouping_and_rework_totals() -> None:
    analytics = StageAnalytics(
        by_stage=(
            _stats("acceptance"),
            _stats("scheme_reply", mean_days=None, p50_days=None, p90_days=None, completed=0),
        ),
        by_class=(_stats("acceptance", customer_class="hv_single_source"),),
        by_unit=(_stats("acceptance", unit="41401", rework=3),),
        rework_total=3,
        cases_with_rework=2,
    )
    text = render_stage_report(analytics, {"acceptance": "业务受理"})
    lines = text.splitlines()
    assert lines[0] == "Stage durations (working days)"
    assert lines[1].split() == [
        "stage",
        "done",
        "mean",
        "p50",
        "p90",
        "over",
        "limit",
        "rework",
        "in",
        "progress",
    ]
    assert lines[3].split() == ["acceptance", "业务受理", "4", "1.25", "1.00", "2.50", "1", "0", "2"]
    assert lines[4].split() == ["scheme_reply", "0", "-", "-", "-", "1", "0", "2"]
    # Figures are right-aligned under their headers, whatever the width of the Chinese stage names.
    assert len(lines[3]) + sum(1 for c in lines[3] if ord(c) > 0x2E80) == len(lines[2])
    assert "By customer class" in text and "hv_single_source" in text
    assert "By supply unit" in text and "41401" in text
    assert text.endswith("Rework: 3 return(s) to an earlier stage in 2 case(s)\n")


def test_the_cli_prints_the_report_from_the_hub_database(
    sqlite_engine: Engine, tracker: CaseTracker, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite_engine.begin() as conn:
        tracker(conn, application_event("A1", 1))
        tracker(
            conn, application_event("A1", 2, stage="scheme_reply", updated_at="2026-11-23T09:13:05+08:00")
        )
    assert main(["report", "stages", "--db-url", sqlite_engine.url.render_as_string()]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("acceptance"))
    assert row.split() == ["acceptance", "业务受理", "1", "1.00", "1.00", "1.00", "0", "0", "0"]
    assert "scheme_reply 供电方案答复" in out
