"""Checking a scenario's expectations against the hub's store once a run has settled."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical_model.case import CaseStatus
from simulators.scenario.model import Count, Expectations, ProcessExpectation, ProcessFigure
from store.feasibility import feasibility_assessments
from store.grid import grid_equipment
from store.loads import load_profiles
from store.parking import list_parked
from store.schema import cases, customers
from workflow.process import ANY_CAUSE, GroupFigures, ProcessFigures, ProcessFilter, process_figures
from workflow.workdays import SHANGHAI


@dataclass(frozen=True)
class CheckResult:
    """One expectation: what was expected, what the store held, and whether that passes."""

    name: str
    expected: str
    actual: str
    passed: bool
    why: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class RunFacts:
    """What the runner observed outside the store: transient failures, drop-folder outcomes, earlier verdicts.

    source_failures: by adapter (marketing: every failed call of its client) and by hub loop (poll:pms).
    """

    day: date
    source_failures: Mapping[str, int]
    drop_dir: Path
    verdicts_before: Mapping[str, str] | None


def verdicts(conn: Connection) -> dict[str, str]:
    """The current verdict of every assessed application."""
    table = feasibility_assessments
    return {
        row.application_no: row.verdict
        for row in conn.execute(sa.select(table.c.application_no, table.c.verdict))
    }


def _count(conn: Connection, query: Any) -> int:
    return int(conn.execute(query).scalar_one())


def _check(name: str, count: Count, actual: int, why: str = "") -> CheckResult:
    passed = count.holds(actual)
    return CheckResult(name, count.describe(), str(actual), passed, "" if passed else why)


def _files(folder: Path) -> int:
    return sum(1 for path in folder.glob("*") if path.is_file() and path.suffix != ".reason")


def evaluate(conn: Connection, expect: Expectations, facts: RunFacts) -> list[CheckResult]:
    """Every expectation of the scenario: totals, verdicts, parked messages, loop failures, files."""
    return [
        *_totals(conn, expect, facts),
        *_outcomes(conn, expect),
        *_process(conn, expect.process, facts),
        *_verdicts(conn, expect, facts),
        *_parked(conn, expect),
        *_loops(expect, facts),
        *_files_checks(expect, facts),
    ]


def _totals(conn: Connection, expect: Expectations, facts: RunFacts) -> list[CheckResult]:
    results: list[CheckResult] = []
    count_of = sa.select(sa.func.count())
    totals = {
        "cases": (expect.cases, count_of.select_from(cases), "applications tracked as cases"),
        "customers": (expect.customers, count_of.select_from(customers), "customers in the hub's store"),
        "grid_equipment": (
            expect.grid_equipment,
            count_of.select_from(grid_equipment).where(grid_equipment.c.deleted_at.is_(None)),
            "pieces of equipment in the grid projection (deleted ones not counted)",
        ),
        "load_profiles": (
            expect.load_profiles,
            count_of.select_from(load_profiles),
            "load profiles (equipment, day, phase) in the load projection",
        ),
        "overdue_cases": (
            expect.overdue_cases,
            count_of.select_from(cases).where(
                cases.c.status == CaseStatus.OPEN.value, cases.c.deadline < facts.day
            ),
            f"open cases whose stage deadline lies before the simulated day {facts.day.isoformat()}",
        ),
        "reworked_cases": (
            expect.reworked_cases,
            count_of.select_from(cases).where(cases.c.rework_count > 0),
            "cases returned to an earlier stage at least once",
        ),
        "assessed": (
            expect.assessed,
            count_of.select_from(feasibility_assessments),
            "applications with a feasibility assessment (none once at energisation or withdrawn)",
        ),
    }
    for name, (count, query, meaning) in totals.items():
        if count is not None:
            actual = _count(conn, query)
            results.append(_check(name, count, actual, f"{actual} {meaning}"))
    return results


def _outcomes(conn: Connection, expect: Expectations) -> list[CheckResult]:
    if not expect.outcomes:
        return []
    found = {
        outcome or "open": int(count)
        for outcome, count in conn.execute(
            sa.select(cases.c.outcome, sa.func.count()).group_by(cases.c.outcome)
        ).all()
    }
    summary = ", ".join(f"{outcome} {count}" for outcome, count in sorted(found.items())) or "no cases"
    return [
        _check(f"{outcome} cases", count, found.get(outcome, 0), f"cases by outcome: {summary}")
        for outcome, count in expect.outcomes.items()
    ]


def _process(conn: Connection, expect: ProcessExpectation | None, facts: RunFacts) -> list[CheckResult]:
    if expect is None:
        return []
    day_ends = datetime.combine(facts.day + timedelta(days=1), time(), SHANGHAI)
    where = ProcessFilter(
        basis="energised",
        period_from=day_ends - timedelta(days=expect.energised_within_days),
        period_to=day_ends,
    )
    figures = process_figures(conn, where=where)
    overall = figures.overall
    days = expect.energised_within_days
    window = f"{overall.energised} case(s) energised in the {days} days to {facts.day}"
    results = []
    for name, band in expect.figures.items():
        actual = _figure(figures, overall, name)
        shown = "not measured" if actual is None else f"{actual:.3g}"
        passed = band.holds(actual)
        why = "" if passed else window
        results.append(CheckResult(f"process {name}", band.describe(), shown, passed, why))
    return results


def _figure(figures: ProcessFigures, overall: GroupFigures, name: ProcessFigure) -> float | None:
    """One named figure; shares are of the energised cases, days are the hub's measured durations."""
    rework = overall.rework  # every known cause and "any" are always present
    named: dict[str, float | None] = {
        "calendar_days_mean": overall.calendar_days.mean,
        "calendar_days_p50": overall.calendar_days.p50,
        "working_days_mean": overall.working_days.mean,
        "working_days_p50": overall.working_days.p50,
        "within_commitment_share": overall.within_commitment,
        "within_target_share": overall.within_target,
        "any_rework_share": rework[ANY_CAUSE].share,
        "information_error_rework_share": rework["information_error"].share,
        "documents_missing_rework_share": rework["documents_missing"].share,
        "survey_to_scheme_mean": overall.survey_to_scheme_days.mean,
        "scheme_drafting_mean": overall.scheme_drafting_days.mean,
        "findings": float(figures.findings.total),
        "cases_with_findings": float(figures.findings.cases),
    }
    return named[name]


def _verdicts(conn: Connection, expect: Expectations, facts: RunFacts) -> list[CheckResult]:
    results: list[CheckResult] = []
    current = verdicts(conn)
    for verdict, count in expect.verdict_counts.items():
        actual = sum(1 for value in current.values() if value == verdict)
        results.append(_check(f"verdict {verdict}", count, actual, f"{actual} of {len(current)} assessments"))
    for wanted in expect.verdicts:
        found = current.get(wanted.application)
        why = "no assessment of this application" if found is None else f"assessed {found}"
        results.append(
            CheckResult(
                f"verdict of {wanted.application}",
                wanted.verdict,
                found or "none",
                found == wanted.verdict,
                "" if found == wanted.verdict else why,
            )
        )
    if expect.verdicts_changed is not None:
        before = facts.verdicts_before or {}
        changed = sorted(no for no, verdict in current.items() if no in before and before[no] != verdict)
        why = (
            "no fault fired once settled, so nothing was compared"
            if facts.verdicts_before is None
            else f"{len(before)} verdicts before them; changed: {', '.join(changed[:5]) or 'none'}"
        )
        results.append(_check("verdicts changed", expect.verdicts_changed, len(changed), why))
    return results


def _parked(conn: Connection, expect: Expectations) -> list[CheckResult]:
    results: list[CheckResult] = []
    for parked in expect.parked:
        messages = [
            message
            for message in list_parked(conn, parked.kind)
            if (parked.system is None or message.source_system == parked.system)
            and (parked.reason_code is None or message.reason_code == parked.reason_code)
            and (parked.reason_contains is None or parked.reason_contains in message.reason)
        ]
        label = f"parked {parked.kind}" + (f" from {parked.system}" if parked.system else "")
        if parked.reason_code:
            label += f" ({parked.reason_code})"
        if parked.reason_contains:
            label += f" with reason containing {parked.reason_contains!r}"
        reasons = sorted({message.reason for message in list_parked(conn, parked.kind)})
        why = "parked reasons: " + ("; ".join(reason[:120] for reason in reasons[:5]) or "none")
        results.append(_check(label, parked.count, len(messages), why))
    return results


def _loops(expect: Expectations, facts: RunFacts) -> list[CheckResult]:
    results: list[CheckResult] = []
    for loop, count in expect.source_failures.items():
        failures = facts.source_failures.get(loop)
        if failures is None:
            results.append(
                CheckResult(
                    f"transient failures of {loop}",
                    count.describe(),
                    "no such adapter or loop",
                    False,
                    f"counted: {', '.join(sorted(facts.source_failures))}",
                )
            )
        else:
            results.append(
                _check(f"transient failures of {loop}", count, failures, "as counted where they happened")
            )
    return results


def _files_checks(expect: Expectations, facts: RunFacts) -> list[CheckResult]:
    results: list[CheckResult] = []
    for label, count, folder in (
        ("files done", expect.files_done, "done"),
        ("files in error", expect.files_error, "error"),
    ):
        if count is not None:
            results.append(
                _check(label, count, _files(facts.drop_dir / folder), f"in {facts.drop_dir / folder}")
            )
    return results
