"""Expectations are checked against the hub's store, and a failed one says what was found instead."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from ground.clock import frozen_at
from ground.settings import PROJECT_ROOT
from pipeline.decoded import DecodedEvent
from simulators.scenario.checks import RunFacts, evaluate
from simulators.scenario.model import Expectations
from store.database import create_engine, create_schema
from store.feasibility import feasibility_assessments
from store.parking import park
from store.schema import cases
from tests.unit.workflow.events import application_event
from workflow.cases import CaseTracker
from workflow.config import load_workflow_config
from workflow.workdays import WorkingCalendar

DAY = date(2026, 11, 26)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    create_schema(engine)
    with engine.begin() as conn:
        for reason_code, reason in (
            ("malformed", "line 7: 'abc' is not a number"),
            ("mapping", "unknown code"),
        ):
            park(
                conn,
                kind="invalid",
                reason_code=reason_code,
                reason=reason,
                payload={},
                source_system="dispatch",
            )
        for number, verdict in (("A1", "feasible"), ("A2", "needs_reinforcement")):
            conn.execute(
                feasibility_assessments.insert().values(
                    application_no=number,
                    province="henan",
                    verdict=verdict,
                    document={},
                    application={},
                    is_open=True,
                    assessed_at=datetime(2026, 11, 26, tzinfo=UTC),
                    event_id=f"e-{number}",
                )
            )
    return engine


def _facts(tmp_path: Path, before: dict[str, str] | None = None) -> RunFacts:
    (tmp_path / "drop" / "done").mkdir(parents=True)
    (tmp_path / "drop" / "error").mkdir()
    (tmp_path / "drop" / "done" / "a.csv").write_text("x")
    (tmp_path / "drop" / "error" / "b.cime").write_text("x")
    (tmp_path / "drop" / "error" / "b.cime.reason").write_text("truncated")
    return RunFacts(DAY, {"marketing": 2, "poll:marketing": 0, "poll:pms": 0}, tmp_path / "drop", before)


def test_expectations_that_hold_pass(engine: Engine, tmp_path: Path) -> None:
    expect = Expectations.model_validate(
        {
            "assessed": 2,
            "verdict_counts": {"feasible": 1, "not_feasible": 0},
            "verdicts": [{"application": "A2", "verdict": "needs_reinforcement"}],
            "verdicts_changed": 1,
            "parked": [
                {"system": "dispatch", "count": 2},
                {"reason_code": "malformed", "reason_contains": "not a number", "count": 1},
                {"kind": "dead", "count": 0},
            ],
            "source_failures": {"marketing": {"min": 1}},
            "files_done": 1,
            "files_error": 1,
        }
    )
    with engine.connect() as conn:
        results = evaluate(conn, expect, _facts(tmp_path, {"A1": "feasible", "A2": "feasible"}))
    assert [(r.name, r.passed) for r in results if not r.passed] == []
    assert len(results) == 11


def test_expectations_that_fail_say_what_the_store_holds(engine: Engine, tmp_path: Path) -> None:
    expect = Expectations.model_validate(
        {
            "verdicts": [{"application": "A9", "verdict": "feasible"}],
            "verdicts_changed": {"min": 1},
            "parked": [{"system": "marketing", "count": {"min": 1}}],
            "source_failures": {"poll:dispatch": 0, "poll:pms": {"min": 1}},
            "files_error": 0,
        }
    )
    with engine.connect() as conn:
        results = {r.name: r for r in evaluate(conn, expect, _facts(tmp_path))}
    assert not any(r.passed for r in results.values())
    assert results["verdict of A9"].why == "no assessment of this application"
    assert results["verdicts changed"].why == "no fault fired once settled, so nothing was compared"
    parked = results["parked invalid from marketing"]
    assert parked.actual == "0"
    assert parked.why == "parked reasons: line 7: 'abc' is not a number; unknown code"
    assert (
        results["transient failures of poll:dispatch"].why == "counted: marketing, poll:marketing, poll:pms"
    )
    assert results["transient failures of poll:pms"].actual == "0"
    assert results["files in error"].actual == "1"  # the .reason file beside it is not counted


def test_rework_and_outcome_counts_are_checked(engine: Engine, tmp_path: Path) -> None:
    opened = datetime(2026, 11, 2, tzinfo=UTC)
    with engine.begin() as conn:
        for number, outcome, reworks in (
            ("C1", None, 0),
            ("C2", "withdrawn", 1),
            ("C3", "energised", 2),
            ("C4", "energised", 0),
        ):
            conn.execute(cases.insert().values(**_case_row(number, opened, outcome, reworks)))
    expect = Expectations.model_validate(
        {
            "reworked_cases": 2,
            "outcomes": {"energised": 2, "withdrawn": {"min": 1}, "open": 1, "cancelled": 0},
        }
    )
    with engine.connect() as conn:
        results = evaluate(conn, expect, _facts(tmp_path))
    assert [(r.name, r.actual, r.passed) for r in results] == [
        ("reworked_cases", "2", True),
        ("energised cases", "2", True),
        ("withdrawn cases", "1", True),
        ("open cases", "1", True),
        ("cancelled cases", "0", True),
    ]
    wrong = Expectations.model_validate({"outcomes": {"withdrawn": 0}})
    with engine.connect() as conn:
        [failed] = evaluate(conn, wrong, _facts(tmp_path / "again"))
    assert not failed.passed
    assert failed.why == "cases by outcome: energised 2, open 1, withdrawn 1"


def _case_row(number: str, opened: datetime, outcome: str | None, reworks: int) -> dict[str, object]:
    return {
        "application_no": number,
        "customer_no": "4130000001",
        "customer_class": "lv_residential",
        "business_type": "new_connection",
        "importance_grade": "none",
        "flow": "lv_residential_2_step",
        "status": "open" if outcome is None else "closed",
        "stage": "acceptance",
        "stage_visit": "acceptance#1",
        "stage_entered_at": opened,
        "deadline_provisional": False,
        "provisional": False,
        "calendar": "test",
        "end_to_end_commitment_days": 5,
        "end_to_end_provisional": False,
        "opened_at": opened,
        "outcome": outcome,
        "updated_at": opened,
        "survey_pending": False,
        "rework_count": reworks,
        "anomaly_count": 0,
        "event_count": 1,
        "application": {},
        "anomalies": [],
    }


def _energised(engine: Engine, number: str, accepted: str, energised: str, archived: str) -> None:
    """A residential case taken through the 2-step flow by the tracker, at local (Asia/Shanghai) times."""
    tracker = CaseTracker(load_workflow_config(PROJECT_ROOT), WorkingCalendar())
    steps = [("acceptance", accepted), ("energisation", energised), ("archived", archived)]
    with engine.begin() as conn:
        for sequence, (stage, moment) in enumerate(steps, start=1):
            event = application_event(
                number,
                sequence,
                stage=stage,
                submitted_at=accepted,
                updated_at=moment,
                customer_class="lv_residential",
                requested_capacity_kva=8.0,
            )
            tracker(conn, DecodedEvent(event))


def test_process_figures_are_the_hubs_own_over_the_cases_energised_in_the_window(
    engine: Engine, tmp_path: Path
) -> None:
    with frozen_at(datetime(2026, 11, 26, 10, 0, tzinfo=UTC)):
        # P1: Mon 2 to Fri 6 November, 09:00: 4 calendar days, archived inside a 30-day window.
        _energised(
            engine,
            "P1",
            "2026-11-02T09:00:00+08:00",
            "2026-11-03T09:00:00+08:00",
            "2026-11-06T09:00:00+08:00",
        )
        # P2: 2 to 16 November, 09:00: 14 calendar days, also inside.
        _energised(
            engine,
            "P2",
            "2026-11-02T09:00:00+08:00",
            "2026-11-09T09:00:00+08:00",
            "2026-11-16T09:00:00+08:00",
        )
        # P3: archived on 1 October, outside the window: its 30 days must not count.
        _energised(
            engine,
            "P3",
            "2026-09-01T09:00:00+08:00",
            "2026-09-02T09:00:00+08:00",
            "2026-10-01T09:00:00+08:00",
        )
        expect = Expectations.model_validate(
            {
                "process": {
                    "energised_within_days": 30,
                    # (4 + 14) / 2 = 9 calendar days; neither case went back, and no findings were raised.
                    "figures": {
                        "calendar_days_mean": {"min": 8.99, "max": 9.01},
                        "any_rework_share": {"max": 0},
                        "findings": {"max": 0},
                        "scheme_drafting_mean": {"min": 0},
                    },
                }
            }
        )
        facts = RunFacts(DAY, {}, tmp_path, None)
        with engine.connect() as conn:
            results = {result.name: result for result in evaluate(conn, expect, facts)}
    assert results["process calendar_days_mean"].passed, results["process calendar_days_mean"]
    assert results["process calendar_days_mean"].actual == "9"
    assert results["process any_rework_share"].passed
    assert results["process findings"].passed
    # No residential flow has a scheme reply stage: a figure the hub could not measure never passes.
    drafting = results["process scheme_drafting_mean"]
    assert (drafting.passed, drafting.actual) == (False, "not measured")
    assert "2 case(s) energised in the 30 days to 2026-11-26" in drafting.why


def test_process_expectations_name_known_figures_only() -> None:
    with pytest.raises(ValueError, match="days_to_nowhere"):
        Expectations.model_validate(
            {"process": {"energised_within_days": 30, "figures": {"days_to_nowhere": {"min": 1}}}}
        )
