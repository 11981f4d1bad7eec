"""Progress answers in plain Chinese, checked against the case row and the stage visits of 100 seeded
applications (on track, at risk, overdue, provisional, in the customer's works, closed), and the wording of
the answers that look nothing up.

The hub clock is fixed at Thursday 10 December 2026, 10:00 in Shanghai, and the calendar is the one of
2026, before next year's holidays are published: deadlines from 15 December on are provisional.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant.answers import (
    PROVISIONAL,
    ask_for_number_answer,
    day_text,
    progress_answer,
    refusal_answer,
)
from assistant.intent import ProgressQuestion
from assistant.knowledge import KnowledgeMatch
from assistant.service import Assistant
from bench.assistant_latency import NOW, PUBLISHED_YEARS, seed_applications
from ground import clock
from ground.clock import FixedClock
from ground.settings import PROJECT_ROOT, ProgressSettings
from store.schema import cases, stage_visits
from workflow.config import load_workflow_config
from workflow.progress import Progress, ProgressLookup
from workflow.workdays import WorkingCalendar, local_date

CONFIG = load_workflow_config(PROJECT_ROOT)
CALENDAR = WorkingCalendar(published_years=PUBLISHED_YEARS)
TODAY = local_date(NOW)

OVERDUE = Progress(
    application_no="2026112000001",
    customer_name="张*",
    business_type="new_connection",
    status="open",
    outcome=None,
    stage="energisation",
    stage_name="装表接电",
    stage_deadline=date(2026, 12, 8),
    responsible="41401",
    opened_at=datetime(2026, 12, 1, 1, tzinfo=UTC),
    closed_at=None,
    steps=(),
    stage_limit_days=3,
    stage_working_days_used=5,
    stage_working_days_left=-2,
    overdue=True,
    end_to_end_commitment_days=5,
    end_to_end_deadline=date(2026, 12, 8),
    end_to_end_working_days_used=7,
    end_to_end_working_days_left=-2,
    end_to_end_status="overdue",
)


class NoKnowledge:
    """The progress path never searches the knowledge base."""

    def search(self, question: str) -> KnowledgeMatch | None:
        raise AssertionError(f"searched the knowledge base for a progress question: {question}")

    def closest(self, question: str) -> KnowledgeMatch | None:
        return self.search(question)


def test_an_overdue_stage_is_told_in_plain_words_with_its_days() -> None:
    assert progress_answer(OVERDUE) == (
        "您的申请（申请编号 2026112000001，户名 张*）目前在“装表接电”环节，责任单位：41401。"
        "本环节时限 3 个工作日，已用 5 个工作日，已超过承诺时限 2 个工作日（应于 2026年12月8日 前完成），"
        "我们已督办。"
        "整个办电承诺 5 个工作日，已用 7 个工作日，已超过承诺时限 2 个工作日（应于 2026年12月8日 前通电），"
        "我们已督办。"
    )


def test_an_at_risk_stage_with_a_provisional_deadline_says_both() -> None:
    at_risk = dataclasses.replace(
        OVERDUE,
        stage_deadline=date(2026, 12, 15),
        stage_working_days_used=2,
        stage_working_days_left=1,
        stage_deadline_provisional=True,
        overdue=False,
        at_risk=True,
        end_to_end_deadline=date(2026, 12, 16),
        end_to_end_working_days_used=3,
        end_to_end_working_days_left=2,
        end_to_end_status="on_track",
        end_to_end_provisional=True,
    )
    text = progress_answer(at_risk)
    assert (
        "已用 2 个工作日，还剩 1 个工作日，应于 2026年12月15日（节假日安排未公布，日期为暂估） 前完成" in text
    )
    assert "本环节已临近时限" in text and "督办" not in text
    assert "最晚 2026年12月16日（节假日安排未公布，日期为暂估） 前完成通电" in text


def test_the_customers_own_works_stop_the_clock_and_are_not_the_utilitys_delay() -> None:
    works = dataclasses.replace(
        OVERDUE,
        stage="external_works",
        stage_name="外部工程实施",
        stage_limit_days=20,
        stage_working_days_used=23,
        stage_working_days_left=-3,
        end_to_end_commitment_days=22,
        end_to_end_deadline=None,
        end_to_end_working_days_used=None,
        end_to_end_working_days_left=None,
        end_to_end_status="paused",
    )
    text = progress_answer(works)
    assert "本环节是您方实施的受电工程" in text and "已超出 3 个工作日" in text
    assert "暂停计时" in text and "督办" not in text and "承诺时限" not in text


def test_a_closed_application_says_how_it_ended() -> None:
    energised = dataclasses.replace(
        OVERDUE, status="closed", outcome="energised", closed_at=datetime(2026, 12, 3, 2, tzinfo=UTC)
    )
    assert progress_answer(energised) == (
        "您的申请（申请编号 2026112000001，户名 张*）已装表送电，办结日期 2026年12月3日。"
    )
    withdrawn = dataclasses.replace(energised, outcome="withdrawn", customer_name=None)
    assert progress_answer(withdrawn) == "您的申请（申请编号 2026112000001）已撤销，办结日期 2026年12月3日。"


def test_a_progress_question_without_its_keys_asks_for_them_and_says_where_they_are() -> None:
    both = ask_for_number_answer(ProgressQuestion(application_no=None, code=None))
    assert "申请编号" in both and "验证码" in both and "受理回执" in both and "手机号的后4位" in both
    code = ask_for_number_answer(ProgressQuestion(application_no="2026112000001", code=None))
    assert "验证码" in code and "手机号的后4位" in code and "受理回执" not in code
    number = ask_for_number_answer(ProgressQuestion(application_no=None, code="1111"))
    assert "申请编号" in number and "受理回执" in number and "手机号" not in number


def test_a_refusal_gives_the_hotline() -> None:
    assert "95598" in refusal_answer("95598") and "没有把握" in refusal_answer("95598")


@pytest.fixture
def fixed_clock() -> Iterator[FixedClock]:
    with clock.frozen_at(NOW) as fixed:
        yield fixed


def test_progress_answers_match_the_case_for_100_seeded_applications(
    sqlite_engine: Engine, fixed_clock: FixedClock
) -> None:
    seeded = seed_applications(sqlite_engine, 100, config=CONFIG, calendar=CALENDAR)
    lookup = ProgressLookup(
        sqlite_engine,
        ProgressSettings(per_client=1000, per_application=10, window_s=600),
        stage_names=lambda: CONFIG.stages,
        calendar=CALENDAR,
    )
    assistant = Assistant(NoKnowledge(), lookup, hotline="95598", per_client=1000, window_s=600)
    seen: Counter[str] = Counter()
    for application in seeded:
        answer = assistant.ask(
            f"我的申请{application.application_no}到哪一步了？验证码{application.code}", "10.0.0.1"
        )
        with sqlite_engine.connect() as conn:
            row = conn.execute(
                sa.select(cases).where(cases.c.application_no == application.application_no)
            ).one()
            visit = conn.execute(
                sa.select(stage_visits)
                .where(stage_visits.c.application_no == application.application_no)
                .order_by(stage_visits.c.ordinal.desc())
                .limit(1)
            ).one()
        assert answer.kind == "progress", application
        found = answer.progress
        assert found is not None
        name = application.customer_name
        assert found.customer_name == name[0] + "*" * (len(name) - 1)
        assert found.customer_name in answer.text and name not in answer.text
        assert (found.application_no, found.stage, found.status) == (
            row.application_no,
            row.stage,
            row.status,
        )
        assert found.stage_name == CONFIG.stages[row.stage]
        assert found.responsible == row.responsible == visit.unit and visit.stage == row.stage
        seen.update(_check_against_case(answer.text, found, row, visit))
    # The seeded mix holds every situation an answer words differently.
    for situation in ("open", "closed", "overdue", "at_risk", "provisional", "customer_works"):
        assert seen[situation] >= 3, (situation, seen)
    assert seen["end_to_end_overdue"] >= 1 and seen["end_to_end_at_risk"] >= 1, seen


def _check_against_case(text: str, found: Progress, row: sa.Row[object], visit: sa.Row[object]) -> list[str]:
    """Assert the answer's facts and words against the case row and its current stage visit; returns the
    situations the case is in."""
    if row.status != "open":
        assert found.stage_deadline is None and found.stage_working_days_used is None
        assert {"archived": "已装表送电", "withdrawn": "已撤销"}[row.stage] in text
        assert day_text(local_date(row.closed_at)) in text and "工作日" not in text
        return ["closed"]
    situations = ["open"]
    assert visit.left_at is None
    assert f"“{found.stage_name}”环节，责任单位：{row.responsible}。" in text
    overdue = row.deadline < TODAY
    at_risk = not overdue and row.at_risk_from <= TODAY
    left = CALENDAR.days_left(TODAY, row.deadline)
    used = CALENDAR.working_days_after(local_date(visit.entered_at), TODAY)
    assert used + left == row.stage_limit_days == visit.limit_days
    assert (found.stage_deadline, found.stage_limit_days) == (row.deadline, row.stage_limit_days)
    assert (found.stage_working_days_used, found.stage_working_days_left) == (used, left)
    assert (found.overdue, found.at_risk) == (overdue, at_risk)
    assert found.stage_deadline_provisional == row.deadline_provisional
    assert f"时限 {row.stage_limit_days} 个工作日，已用 {used} 个工作日" in text or (
        f"参考工期 {row.stage_limit_days} 个工作日，已用 {used} 个工作日" in text
    )
    works = row.end_to_end_deadline is None
    if works:
        situations.append("customer_works")
        assert "您方实施的受电工程" in text and "暂停计时" in text
        assert (f"已超出 {-left} 个工作日" if overdue else f"还剩 {left} 个工作日") in text
    elif overdue:
        situations.append("overdue")
        assert (
            f"已超过承诺时限 {-left} 个工作日（应于 {day_text(row.deadline)}" in text and "我们已督办" in text
        )
    else:
        assert f"还剩 {left} 个工作日，应于 {day_text(row.deadline)}" in text
    if at_risk and not works:
        situations.append("at_risk")
    assert ("本环节已临近时限" in text) == (at_risk and not works)
    if not works:
        commitment_left = CALENDAR.days_left(TODAY, row.end_to_end_deadline)
        commitment_used = row.end_to_end_commitment_days - commitment_left
        assert (
            f"整个办电承诺 {row.end_to_end_commitment_days} 个工作日，已用 {commitment_used} 个工作日" in text
        )
        assert day_text(row.end_to_end_deadline) in text
        if row.end_to_end_deadline < TODAY:
            situations.append("end_to_end_overdue")
            assert f"已超过承诺时限 {-commitment_left} 个工作日（应于" in text
        elif row.end_to_end_at_risk_from <= TODAY:
            situations.append("end_to_end_at_risk")
            assert "整体进度已临近时限" in text
    provisional = row.deadline_provisional or (not works and row.end_to_end_provisional)
    if provisional:
        situations.append("provisional")
    assert (PROVISIONAL in text) == provisional
    return situations
