"""Expectations are checked against the hub's store, and a failed one says what was found instead."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from scenario.checks import RunFacts, evaluate
from scenario.model import Expectations
from store.database import create_engine, create_schema
from store.feasibility import feasibility_assessments
from store.parking import park
from store.schema import cases

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
