"""The reports: stage and process figures as tables, and `yekuo report stages|process` printing them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from ground.clock import frozen_at
from pipeline.decoded import DecodedEvent
from workflow.analytics import Bottleneck, StageAnalytics, StageStats
from workflow.cases import CaseTracker
from workflow.process import (
    ANY_CAUSE,
    REWORK_CAUSES,
    UNSPECIFIED,
    CauseFigures,
    Findings,
    GroupFigures,
    ProcessFigures,
    Spread,
)
from workflow.report import render_process_report, render_stage_report
from yekuo.cli import main

from .events import application_event


def _stats(stage: str, **values: object) -> StageStats:
    base: dict[str, object] = {
        "stage": stage,
        "customer_class": None,
        "unit": None,
        "completed": 4,
        "mean_days": 1.25,
        "min_days": 0.5,
        "p10_days": 0.65,
        "p50_days": 1.0,
        "p90_days": 2.5,
        "max_days": 3.0,
        "stdev_days": 0.75,
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
            _stats(
                "scheme_reply",
                completed=0,
                **dict.fromkeys(
                    ("mean_days", "min_days", "p10_days", "p50_days", "p90_days", "max_days", "stdev_days")
                ),
            ),
        ),
        by_class=(_stats("acceptance", customer_class="hv_single_source"),),
        by_unit=(_stats("acceptance", unit="41401", rework=3),),
        rework_total=3,
        cases_with_rework=2,
        bottleneck_stages=(
            Bottleneck("scheme_reply", None, 4.5, 2, 3),
            Bottleneck("acceptance", None, 0.0, 0, 4),
        ),
        bottleneck_units=(Bottleneck(None, "41402", 4.5, 2, 5),),
    )
    text = render_stage_report(analytics, {"acceptance": "业务受理"})
    lines = text.splitlines()
    assert lines[0] == "Stage durations (working days)"
    assert lines[1].split() == [
        "stage",
        "done",
        "mean",
        "min",
        "p10",
        "p50",
        "p90",
        "max",
        "stdev",
        "over",
        "limit",
        "rework",
        "in",
        "progress",
    ]
    assert lines[3].split() == [
        "acceptance",
        "业务受理",
        "4",
        "1.25",
        "0.50",
        "0.65",
        "1.00",
        "2.50",
        "3.00",
        "0.75",
        "1",
        "0",
        "2",
    ]
    assert lines[4].split() == ["scheme_reply", "0", "-", "-", "-", "-", "-", "-", "-", "1", "0", "2"]
    # Figures are right-aligned under their headers, whatever the width of the Chinese stage names.
    assert len(lines[3]) + sum(1 for c in lines[3] if ord(c) > 0x2E80) == len(lines[2])
    assert "By customer class" in text and "hv_single_source" in text
    assert "By supply unit" in text and "41401" in text
    stages = text.split("Bottleneck stages (working days past deadlines)\n")[1].splitlines()
    assert stages[0].split() == ["stage", "days", "past", "over", "limit", "done"]
    assert [row.split() for row in stages[2:4]] == [
        ["scheme_reply", "4.50", "2", "3"],
        ["acceptance", "业务受理", "0.00", "0", "4"],
    ]
    units = text.split("Bottleneck units (working days past deadlines)\n")[1].splitlines()
    assert units[2].split() == ["41402", "4.50", "2", "5"]
    assert text.endswith("Rework: 3 return(s) to an earlier stage in 2 case(s)\n")


def test_the_cli_prints_the_report_from_the_hub_database(
    sqlite_engine: Engine, tracker: CaseTracker, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite_engine.begin() as conn:
        tracker(conn, DecodedEvent(application_event("A1", 1)))
        tracker(
            conn,
            DecodedEvent(
                application_event("A1", 2, stage="scheme_reply", updated_at="2026-11-23T09:13:05+08:00")
            ),
        )
    assert main(["report", "stages", "--db-url", sqlite_engine.url.render_as_string()]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("acceptance"))
    # One visit of one working day: every figure of the spread is 1, the deviation 0.
    assert row.split() == [
        "acceptance",
        "业务受理",
        "1",
        *["1.00"] * 6,
        "0.00",
        "0",
        "0",
        "0",
    ]
    assert "scheme_reply 供电方案答复" in out


def _group(
    cases: int,
    working: list[float],
    *,
    unit: str | None = None,
    month: str | None = None,
    **rework: CauseFigures,
) -> GroupFigures:
    """A group's figures as the store would give them: calendar days are working days plus 2."""
    none = CauseFigures(0, 0.0, 0)
    return GroupFigures(
        customer_class=None,
        unit=unit,
        month=month,
        cases=cases,
        energised=len(working),
        measured=len(working),
        working_days=Spread.of(working),
        calendar_days=Spread.of(days + 2 for days in working),
        within_commitment=sum(days <= 5 for days in working) / len(working) if working else None,
        within_target=sum(days <= 15 for days in working) / len(working) if working else None,
        rework={cause: rework.get(cause, none) for cause in (*REWORK_CAUSES, UNSPECIFIED, ANY_CAUSE)},
        survey_to_scheme_days=Spread.of(()),
        scheme_drafting_days=Spread.of(()),
    )


def test_the_process_report_shows_both_day_counts_shares_rework_and_findings() -> None:
    # A (unit 41401) energised in 2 working days; B (41402) in 12 after two returns for information
    # errors; C (41402) not energised, returned once without a cause.
    reworked = {
        "information_error": CauseFigures(1, 1 / 3, 2),
        UNSPECIFIED: CauseFigures(1, 1 / 3, 1),
        ANY_CAUSE: CauseFigures(2, 2 / 3, 3),
    }
    figures = ProcessFigures(
        basis="opened",
        target_days=15,
        overall=_group(3, [2.0, 12.0], **reworked),
        by_class=(),
        by_unit=(
            _group(1, [2.0], unit="41401"),
            _group(
                2,
                [12.0],
                unit="41402",
                information_error=CauseFigures(1, 1 / 2, 2),
                unspecified=CauseFigures(1, 1 / 2, 1),
                any=CauseFigures(2, 1.0, 3),
            ),
        ),
        by_month=(_group(2, [2.0, 12.0], month="2026-03"),),
        in_progress=1,
        findings=Findings(3, 2, 2, {"information_error": 3}, {"address_mismatch": 3}),
    )
    text = render_process_report(figures)
    assert text.startswith("Process figures over the cases submitted in the period; wd = working days")
    overall = text.split("Overall\n")[1].splitlines()
    assert overall[0].split()[:5] == ["cases", "energised", "wd", "mean", "wd"]
    # 3 cases, 2 energised; working days 2 and 12 (mean 7, p50 7, p90 11), calendar days 4 and 14;
    # commitment (5) kept by A only, target (15) by both; B and C reworked.
    assert overall[2].split() == [
        "3",
        "2",
        "7.00",
        "7.00",
        "11.00",
        "9.00",
        "9.00",
        "13.00",
        "50.0%",
        "100.0%",
        "66.7%",
    ]
    assert "By supply unit" in text and "41402" in text
    assert "2026-03" in text.split("By month of energisation\n")[1]
    causes = text.split("Rework by cause (overall)\n")[1].splitlines()
    assert causes[2].split() == ["information_error", "1", "33.3%", "2"]
    assert ["unspecified", "1", "33.3%", "1"] in [line.split() for line in causes]
    assert "Consistency findings: 3 (2 open) on 2 application(s)" in text
    assert "  category information_error: 3" in text
    assert text.endswith("In progress: 1 case(s) not energised\n")


def test_the_cli_prints_the_process_report(
    sqlite_engine: Engine, tracker: CaseTracker, capsys: pytest.CaptureFixture[str]
) -> None:
    with frozen_at(datetime(2026, 6, 1, tzinfo=UTC)), sqlite_engine.begin() as conn:
        for sequence, (stage, moment) in enumerate(
            [("acceptance", "2026-03-02"), ("energisation", "2026-03-03"), ("archived", "2026-03-05")], 1
        ):
            at = f"{moment}T09:00:00+08:00"
            event = application_event(
                "R1",
                sequence,
                stage=stage,
                customer_class="lv_residential",
                submitted_at="2026-03-02T09:00:00+08:00",
                updated_at=at,
            )
            tracker(conn, DecodedEvent(event))
    url = sqlite_engine.url.render_as_string()
    assert main(["report", "process", "--db-url", url, "--from", "2026-03-01", "--to", "2026-03-31"]) == 0
    out = capsys.readouterr().out
    overall = out.split("Overall\n")[1].splitlines()
    # Mon 2 to Thu 5 March 09:00: 3 working and 3 calendar days, within 5 and 15 working days.
    assert overall[2].split() == ["1", "1", *["3.00"] * 6, "100.0%", "100.0%", "0.0%"]
    assert main(["report", "process", "--db-url", url, "--from", "2026-04-01"]) == 0
    assert "(no cases)" in capsys.readouterr().out


def test_the_cli_refuses_a_reversed_period(sqlite_engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    url = sqlite_engine.url.render_as_string()
    assert main(["report", "process", "--db-url", url, "--from", "2026-03-02", "--to", "2026-03-01"]) == 2
    assert "--from 2026-03-02 is after --to 2026-03-01" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "process", "--from", "2 March"])
    assert "'2 March' is not a date like 2026-11-30" in capsys.readouterr().err
