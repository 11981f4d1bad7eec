"""The analytics facts of a case: written with it, rewritten as it moves, counted as the figures need.

Dates are in 2026, whose Chinese calendar is published: the National Day holiday in October and its
adjusted workdays make the working-day counts uneven. The hub's clock is frozen where cases are fed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ground.clock import frozen_at
from ground.settings import PROJECT_ROOT
from pipeline.decoded import DecodedEvent
from store.schema import case_figures, stage_visits
from workflow.cases import CaseTracker
from workflow.facts import excess_days, power_working_day
from workflow.workdays import WorkingCalendar
from yekuo.cli import main

from .events import application_event

NOW = datetime(2026, 12, 1, 2, tzinfo=UTC)


def test_the_power_working_day_gives_every_target_s_verdict(calendar: WorkingCalendar) -> None:
    # Every submission day of September-October 2026 (the National Day week and its adjusted workdays
    # included), power on each of the 40 days after it, against targets of 1 to 15 working days.
    first = date(2026, 9, 1)
    for offset in range(61):
        submitted = first + timedelta(days=offset)
        for later in range(-2, 40):
            energised = submitted + timedelta(days=later)
            index = power_working_day(calendar, submitted, energised)
            for target in range(1, 16):
                due = calendar.add_working_days(submitted, target).due
                assert (index <= target) == (energised <= due), (submitted, energised, target)


def test_a_case_s_facts_are_written_with_it_and_follow_it(
    sqlite_engine: Engine, tracker: CaseTracker, calendar: WorkingCalendar
) -> None:
    def facts() -> sa.Row[tuple[object, ...]]:
        with sqlite_engine.connect() as conn:
            return conn.execute(sa.select(case_figures)).one()

    steps = [
        ("acceptance", "2026-11-02T09:00:00+08:00"),
        ("energisation", "2026-11-13T09:00:00+08:00"),
        ("archived", "2026-11-16T15:00:00+08:00"),
    ]
    with frozen_at(NOW):
        for sequence, (stage, moment) in enumerate(steps[:2], start=1):
            event = application_event(
                "F1",
                sequence,
                stage=stage,
                customer_class="lv_residential",
                submitted_at=steps[0][1],
                updated_at=moment,
            )
            with sqlite_engine.begin() as conn:
                tracker(conn, DecodedEvent(event))
        open_case = facts()
        assert (open_case.energised_at, open_case.measured, open_case.working_days) == (None, False, None)
        event = application_event(
            "F1",
            3,
            stage="archived",
            customer_class="lv_residential",
            submitted_at=steps[0][1],
            updated_at=steps[2][1],
        )
        with sqlite_engine.begin() as conn:
            tracker(conn, DecodedEvent(event))
    energised = facts()
    opened = datetime.fromisoformat(steps[0][1])
    power = datetime.fromisoformat(steps[2][1])
    assert energised.measured and energised.energised_month == "2026-11"
    assert energised.working_days == calendar.working_time(opened, power)
    assert energised.calendar_days == (power - opened).total_seconds() / 86400
    # Mon 2 to Mon 16 November: the 10th working day after submission; a residential commitment of 5
    # working days is missed.
    assert energised.power_working_day == 10
    assert energised.within_commitment is False
    with sqlite_engine.connect() as conn:
        visits = conn.execute(
            sa.select(
                stage_visits.c.stage,
                stage_visits.c.deadline,
                stage_visits.c.left_at,
                stage_visits.c.excess_days,
            ).order_by(stage_visits.c.ordinal)
        ).all()
    # Acceptance (limit 1) and energisation were left late; archived, the terminal stage, is never left.
    for visit in visits[:-1]:
        assert visit.excess_days == excess_days(calendar, visit.deadline, visit.left_at)
    assert any(visit.excess_days and visit.excess_days > 0 for visit in visits[:-1])
    assert visits[-1].excess_days is None


def test_a_case_first_seen_energised_is_not_measured(sqlite_engine: Engine, tracker: CaseTracker) -> None:
    event = application_event(
        "F2",
        stage="archived",
        customer_class="lv_residential",
        submitted_at="2026-11-02T09:00:00+08:00",
        updated_at="2026-11-05T09:00:00+08:00",
    )
    with frozen_at(NOW), sqlite_engine.begin() as conn:
        tracker(conn, DecodedEvent(event))
        row = conn.execute(sa.select(case_figures)).one()
    assert row.energised_at is not None and not row.measured
    assert (row.working_days, row.power_working_day, row.within_commitment) == (None, None, None)


def test_the_rebuild_command_restores_every_case_s_facts(
    sqlite_engine: Engine,
    tracker: CaseTracker,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A database made before the analytics tables: the cases are there, their facts are not.
    monkeypatch.setenv("YEKUO_CONFIG_DIR", str(PROJECT_ROOT))
    with frozen_at(NOW):
        for number in ("F3", "F4"):
            for sequence, (stage, moment) in enumerate(
                [("acceptance", "2026-11-02T09:00:00+08:00"), ("archived", "2026-11-06T09:00:00+08:00")], 1
            ):
                event = application_event(
                    number,
                    sequence,
                    stage=stage,
                    customer_class="lv_residential",
                    submitted_at="2026-11-02T09:00:00+08:00",
                    updated_at=moment,
                )
                with sqlite_engine.begin() as conn:
                    tracker(conn, DecodedEvent(event))
        with sqlite_engine.begin() as conn:
            stored = {row.application_no: row for row in conn.execute(sa.select(case_figures))}
            conn.execute(case_figures.delete())
        assert main(["cases", "rebuild", "--db-url", sqlite_engine.url.render_as_string()]) == 0
    assert capsys.readouterr().out == "rebuilt 2 case(s)\n"
    with sqlite_engine.connect() as conn:
        rebuilt = {row.application_no: row for row in conn.execute(sa.select(case_figures))}
    assert rebuilt == stored and rebuilt["F3"].measured
