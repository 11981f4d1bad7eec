"""Process figures: days to power, commitments kept, rework by cause, findings, survey and scheme times.

Every case runs in March-April 2026, whose Chinese calendar is published: March has no holiday, so its
working days are its weekdays; 6 April (清明) and 1-5 May (劳动节) are days off and Saturday 9 May a workday.
Expected figures are worked out by hand in the comments. The hub's clock is frozen for every test.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ground.clock import frozen_at
from pipeline.decoded import DecodedEvent
from store.schema import cases, consistency_findings, stage_visits
from workflow.cases import CaseTracker
from workflow.process import ProcessFigures, ProcessFilter, process_figures
from workflow.workdays import SHANGHAI

from .events import application_event

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


def at(day: str, hour: int = 9) -> str:
    """A local time in Asia/Shanghai, e.g. at('03-02') is 2 March 2026, 09:00."""
    return f"2026-{day}T{hour:02d}:00:00+08:00"


def feed(
    conn: Connection,
    tracker: CaseTracker,
    number: str,
    steps: list[tuple[str, str]],
    *,
    causes: tuple[str | None, ...] = (),
    **application: str,
) -> None:
    """Open a case at the first step's time, move it through the steps, then give its reworks causes."""
    submitted = steps[0][1]
    for sequence, (stage, moment) in enumerate(steps, start=1):
        event = application_event(
            number, sequence, stage=stage, submitted_at=submitted, updated_at=moment, **application
        )
        tracker(conn, DecodedEvent(event))
    reworks = conn.execute(
        sa.select(stage_visits.c.id)
        .where(stage_visits.c.application_no == number, stage_visits.c.exit_kind == "rework")
        .order_by(stage_visits.c.ordinal)
    ).scalars()
    for visit, cause in zip(reworks, causes, strict=True):
        conn.execute(stage_visits.update().where(stage_visits.c.id == visit).values(exit_cause=cause))


def finding(conn: Connection, number: str, rule: str, category: str, found: str, cleared: str | None) -> None:
    conn.execute(
        consistency_findings.insert().values(
            application_no=number,
            rule=rule,
            category=category,
            found_at=datetime.fromisoformat(found),
            cleared_at=datetime.fromisoformat(cleared) if cleared else None,
            systems=["marketing", "pms"],
            details={},
            message=f"{rule} disagrees",
        )
    )


@pytest.fixture
def frozen() -> Iterator[None]:
    with frozen_at(NOW):
        yield


@pytest.fixture
def seeded(sqlite_engine: Engine, tracker: CaseTracker, frozen: None) -> Engine:
    with sqlite_engine.begin() as conn:
        seed_cases(conn, tracker)
    return sqlite_engine


def seed_cases(conn: Connection, tracker: CaseTracker) -> None:
    """The cases and findings every test here counts, worked out by hand below; the clock must be NOW."""
    # R1: Mon 2 March 09:00 to Wed 4 March 09:00: 2 working days, 2 calendar days. Residential
    # commitment 5: due Mon 9 March, met; 15-day target due Mon 23 March, met.
    feed(
        conn,
        tracker,
        "R1",
        [("acceptance", at("03-02")), ("energisation", at("03-03")), ("archived", at("03-04"))],
        org_no="41401",
        customer_class="lv_residential",
    )
    # R2: two returns for information errors; 2 March to Thu 26 March 09:00: weekdays 2-25 March are
    # 18 working days, 24 calendar days. Commitment due 9 March: missed; target due 23 March: missed.
    feed(
        conn,
        tracker,
        "R2",
        [
            ("acceptance", at("03-02")),
            ("energisation", at("03-05")),
            ("acceptance", at("03-06")),
            ("energisation", at("03-09")),
            ("acceptance", at("03-10")),
            ("energisation", at("03-11")),
            ("archived", at("03-26")),
        ],
        causes=("information_error", "information_error"),
        org_no="41402",
        customer_class="lv_residential",
    )
    # H1: high voltage 4-step (the survey is done in scheme reply); one return without a cause.
    # 2 March to Wed 25 March 09:00: 17 working days, 23 calendar days. Commitment 22 plus 7 working
    # days of customer works (13-23 March): met; target due 23 March: missed.
    # Survey to scheme: 4 March 09:00 to 12 March 09:00 = 6 working days (4, 5, 6, 9, 10, 11).
    # Drafting: scheme reply 4-5 March (1) and 6-12 March (4) = 5 working days.
    feed(
        conn,
        tracker,
        "H1",
        [
            ("acceptance", at("03-02")),
            ("scheme_reply", at("03-04")),
            ("acceptance", at("03-05")),
            ("scheme_reply", at("03-06")),
            ("external_works", at("03-12")),
            ("energisation", at("03-23")),
            ("archived", at("03-25")),
        ],
        causes=(None,),
        org_no="41401",
    )
    # R3: Mon 30 March to Wed 1 April: 2 working days, 2 calendar days; commitment due 7 April
    # (6 April is a holiday): met; target met. Energised in April.
    feed(
        conn,
        tracker,
        "R3",
        [("acceptance", at("03-30")), ("energisation", at("03-31")), ("archived", at("04-01"))],
        org_no="41402",
        customer_class="lv_residential",
    )
    # U1: first seen already archived: energised, but when is unknown, so it is not measured.
    feed(conn, tracker, "U1", [("archived", at("03-10"))], org_no="41401", customer_class="lv_residential")
    # P1: still in acceptance, in progress.
    feed(
        conn,
        tracker,
        "P1",
        [("acceptance", at("03-16"))],
        org_no="41401",
        customer_class="lv_residential",
    )

    finding(conn, "R2", "address_mismatch", "information_error", at("03-03"), at("03-06"))
    finding(conn, "R2", "capacity_mismatch", "information_error", at("03-10"), None)
    finding(conn, "H1", "missing_licence", "documents_missing", at("03-12"), None)
    finding(conn, "X9", "address_mismatch", "information_error", at("03-12"), None)  # not tracked
    finding(conn, "R1", "address_mismatch", "information_error", at("02-20"), None)


def figures(engine: Engine, where: ProcessFilter | None = None) -> ProcessFigures:
    with engine.connect() as conn:
        return process_figures(conn, where=where)


def local(day: str) -> datetime:
    return datetime.fromisoformat(f"2026-{day}T00:00:00").replace(tzinfo=SHANGHAI)


def test_days_to_power_in_working_and_calendar_days(seeded: Engine) -> None:
    overall = figures(seeded).overall
    # Energised: R1, R2, H1, R3 and U1; U1 has no moment of power, so four are measured.
    assert (overall.cases, overall.energised, overall.measured) == (5, 5, 4)
    working = [2.0, 18.0, 17.0, 2.0]
    assert overall.working_days.count == 4
    assert overall.working_days.mean == pytest.approx(statistics.mean(working))
    assert overall.working_days.p50 == pytest.approx(statistics.median(working))
    assert overall.working_days.p90 == pytest.approx(
        statistics.quantiles(working, n=10, method="inclusive")[8]
    )
    days = [2.0, 24.0, 23.0, 2.0]
    assert overall.calendar_days.mean == pytest.approx(statistics.mean(days))
    assert overall.calendar_days.p50 == pytest.approx(statistics.median(days))
    # Commitment met by R1, H1, R3 of 4; the 15-day target by R1 and R3.
    assert overall.within_commitment == pytest.approx(3 / 4)
    assert overall.within_target == pytest.approx(2 / 4)


def test_rework_by_cause_counts_cases_and_returns(seeded: Engine) -> None:
    rework = figures(seeded).overall.rework
    assert list(rework) == [
        "information_error",
        "documents_missing",
        "design_change",
        "grid_constraint",
        "unspecified",
        "any",
    ]
    # 5 cases considered: R2 returned twice for information errors, H1 once without a cause.
    assert (rework["information_error"].cases, rework["information_error"].returns) == (1, 2)
    assert rework["information_error"].share == pytest.approx(1 / 5)
    assert (rework["unspecified"].cases, rework["unspecified"].returns) == (1, 1)
    assert (rework["documents_missing"].cases, rework["documents_missing"].returns) == (0, 0)
    assert rework["documents_missing"].share == 0.0
    assert (rework["any"].cases, rework["any"].returns) == (2, 3)
    assert rework["any"].share == pytest.approx(2 / 5)


def test_survey_to_scheme_and_drafting(seeded: Engine) -> None:
    overall = figures(seeded).overall
    # Only H1 has a survey and a scheme reply; the residential 2-step flow has neither.
    assert overall.survey_to_scheme_days.count == 1
    assert overall.survey_to_scheme_days.mean == pytest.approx(6.0)
    assert overall.scheme_drafting_days.count == 1
    assert overall.scheme_drafting_days.p50 == pytest.approx(5.0)


def test_a_full_chain_survey_runs_before_the_scheme_reply(
    sqlite_engine: Engine,
    tracker: CaseTracker,
    frozen: None,
) -> None:
    with sqlite_engine.begin() as conn:
        feed(
            conn,
            tracker,
            "F1",
            [
                ("acceptance", at("03-02")),
                ("site_survey", at("03-03")),
                ("scheme_reply", at("03-05")),
                ("design_review", at("03-10")),
                ("mid_inspection", at("03-11")),
                ("completion_inspection", at("03-12")),
                ("contract", at("03-13")),
                ("energisation", at("03-16")),
                ("archived", at("03-17")),
            ],
            importance_grade="first",
        )
    overall = figures(sqlite_engine).overall
    # Survey entered Tue 3 March, scheme reply left Tue 10 March: 3, 4, 5, 6, 9 March = 5 working days;
    # drafting 5 March to 10 March: 5, 6, 9 = 3.
    assert overall.survey_to_scheme_days.mean == pytest.approx(5.0)
    assert overall.scheme_drafting_days.mean == pytest.approx(3.0)
    assert overall.working_days.mean == pytest.approx(11.0)  # 2-16 March: 11 weekdays


def test_holidays_are_no_working_days(
    sqlite_engine: Engine,
    tracker: CaseTracker,
    frozen: None,
) -> None:
    with sqlite_engine.begin() as conn:
        feed(
            conn,
            tracker,
            "L1",
            [("acceptance", at("04-30")), ("energisation", at("05-06")), ("archived", at("05-07"))],
            customer_class="lv_residential",
        )
    overall = figures(sqlite_engine).overall
    # Thu 30 April 09:00 to Thu 7 May 09:00: 15 hours of 30 April, 1-5 May off, 6 May, 9 hours of 7 May.
    assert overall.working_days.mean == pytest.approx(15 / 24 + 1 + 9 / 24)
    assert overall.calendar_days.mean == pytest.approx(7.0)
    # Residential commitment 5 from 30 April: 6, 7, 8, 9 (Saturday, a workday), 11 May: met.
    assert overall.within_commitment == 1.0


def test_groups_by_class_unit_and_month(seeded: Engine) -> None:
    result = figures(seeded)
    by_class = {item.customer_class: item for item in result.by_class}
    assert list(by_class) == ["hv_single_source", "lv_residential"]
    assert (by_class["lv_residential"].cases, by_class["lv_residential"].measured) == (4, 3)
    assert by_class["hv_single_source"].working_days.mean == pytest.approx(17.0)
    by_unit = {item.unit: item for item in result.by_unit}
    assert {unit: item.cases for unit, item in by_unit.items()} == {"41401": 3, "41402": 2}
    assert by_unit["41402"].working_days.mean == pytest.approx((18 + 2) / 2)
    assert by_unit["41402"].within_commitment == pytest.approx(1 / 2)
    by_month = {item.month: item for item in result.by_month}
    assert {month: item.energised for month, item in by_month.items()} == {"2026-03": 4, "2026-04": 1}
    assert by_month["2026-04"].working_days.mean == pytest.approx(2.0)
    assert result.in_progress == 1  # P1


def test_findings_by_category_and_rule(seeded: Engine) -> None:
    found = figures(seeded).findings
    assert (found.total, found.open, found.cases) == (5, 4, 4)
    assert found.by_category == {"documents_missing": 1, "information_error": 4}
    assert found.by_rule == {"address_mismatch": 3, "capacity_mismatch": 1, "missing_licence": 1}
    march = ProcessFilter(period_from=local("03-01"), period_to=local("04-01"))
    assert figures(seeded, march).findings.total == 4  # R1's February finding is out
    # A class filter leaves out findings of other classes and of applications not tracked.
    residential = figures(seeded, ProcessFilter(customer_class="lv_residential")).findings
    assert residential.by_rule == {"address_mismatch": 2, "capacity_mismatch": 1}


def test_period_by_energisation(seeded: Engine) -> None:
    march = figures(seeded, ProcessFilter(period_from=local("03-01"), period_to=local("04-01")))
    # Energised in March: R1, R2, H1, U1. At the end of March, P1 and R3 (energised 1 April) were open.
    assert (march.overall.cases, march.overall.measured) == (4, 3)
    assert march.overall.working_days.mean == pytest.approx((2 + 18 + 17) / 3)
    assert march.in_progress == 2
    assert [item.month for item in march.by_month] == ["2026-03"]


def test_period_by_submission_counts_cases_in_progress(seeded: Engine) -> None:
    where = ProcessFilter(basis="opened", period_from=local("03-01"), period_to=local("04-01"))
    result = figures(seeded, where)
    # Submitted in March: all six; P1 is in progress and counts in the rework shares only.
    assert (result.overall.cases, result.overall.energised, result.in_progress) == (6, 5, 1)
    assert result.overall.rework["any"].share == pytest.approx(2 / 6)
    assert result.overall.working_days.count == 4
    late = ProcessFilter(basis="opened", period_from=local("03-20"), period_to=local("04-01"))
    assert figures(seeded, late).overall.cases == 1  # R3


def test_class_and_unit_filters(seeded: Engine) -> None:
    unit = figures(seeded, ProcessFilter(unit="41402"))
    assert [item.unit for item in unit.by_unit] == ["41402"]
    assert unit.overall.cases == 2 and unit.in_progress == 0
    high = figures(seeded, ProcessFilter(customer_class="hv_single_source"))
    assert high.overall.cases == 1 and high.overall.rework["unspecified"].cases == 1
    assert high.findings.by_category == {"documents_missing": 1}


def test_no_cases_give_empty_figures(sqlite_engine: Engine, frozen: None) -> None:
    result = figures(sqlite_engine)
    assert (result.overall.cases, result.overall.energised, result.in_progress) == (0, 0, 0)
    assert result.overall.working_days.mean is None and result.overall.within_commitment is None
    assert result.overall.rework["any"].share is None
    assert (result.by_class, result.by_unit, result.by_month) == ((), (), ())
    assert result.findings.total == 0 and result.findings.by_category == {}
    assert result.as_dict()["overall"]["days_to_power"]["working_days"]["p90"] is None


def test_bad_filters_are_refused() -> None:
    with pytest.raises(ValueError, match="basis must be one of energised, opened"):
        ProcessFilter(basis="closed")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="the period starts"):
        ProcessFilter(period_from=local("03-02"), period_to=local("03-01"))


def test_a_cause_the_source_invented_is_shown_not_dropped(
    sqlite_engine: Engine,
    tracker: CaseTracker,
    frozen: None,
) -> None:
    with sqlite_engine.begin() as conn:
        feed(
            conn,
            tracker,
            "R9",
            [
                ("acceptance", at("03-02")),
                ("energisation", at("03-03")),
                ("acceptance", at("03-04")),
                ("energisation", at("03-05")),
                ("archived", at("03-06")),
            ],
            causes=("meter_fault",),
            customer_class="lv_residential",
        )
    rework = figures(sqlite_engine).overall.rework
    assert rework["meter_fault"].returns == 1 and rework["unspecified"].returns == 0


def test_a_case_closed_outside_its_terminal_stage_is_neither_energised_nor_in_progress(
    seeded: Engine, tracker: CaseTracker
) -> None:
    # P1 is withdrawn on 20 March while in acceptance, as a case the customer gives up is.
    withdrawn = application_event(
        "P1",
        2,
        stage="withdrawn",
        submitted_at=at("03-16"),
        updated_at=at("03-20"),
        org_no="41401",
        customer_class="lv_residential",
    )
    with seeded.begin() as conn:
        tracker(conn, DecodedEvent(withdrawn))
        assert conn.execute(sa.select(cases.c.outcome).where(cases.c.application_no == "P1")).scalar() == (
            "withdrawn"
        )
    result = figures(seeded)
    assert (result.overall.cases, result.overall.energised, result.in_progress) == (5, 5, 0)
    opened = figures(seeded, ProcessFilter(basis="opened"))
    assert (opened.overall.cases, opened.overall.energised, opened.in_progress) == (6, 5, 0)
    assert [item.month for item in opened.by_month] == ["2026-03", "2026-04"]
