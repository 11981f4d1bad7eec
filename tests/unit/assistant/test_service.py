"""The assistant's routing: progress through the shared rate-limited lookup, other questions through the
knowledge index, refusals with the hotline, and the questions kept for staff.

The knowledge index is a double answering a fixed table of questions (the real index is exercised by the API
tests); the progress lookup and the gap log are the real ones on SQLite. The case runs in March 2026 and
the hub clock is fixed at 1 June 2026.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from assistant.gaps import GapLog, list_gaps
from assistant.knowledge import KnowledgeEntry, KnowledgeMatch
from assistant.service import Assistant, TooManyQuestionsError
from ground import clock
from ground.settings import PROJECT_ROOT, ProgressSettings
from pipeline.decoded import DecodedEvent
from store.schema import assistant_gaps
from tests.unit.workflow.events import customer_event, track_stages
from workflow.cases import CaseTracker
from workflow.config import load_workflow_config
from workflow.progress import ProgressLookup, RateLimitedError

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
CONFIG = load_workflow_config(PROJECT_ROOT)
NUMBER = "2026031700001"
FEES = KnowledgeEntry(
    id="fees",
    question="办电要交费吗",
    paraphrases=(),
    answer="办电不收取业务费用。",
    tags=(),
    source="供电营业规则",
    file="knowledge/default/applying.yaml",
    line=1,
)


class TableIndex:
    """Answers the questions of its table with their scores; anything else is refused."""

    answer_threshold = 0.5
    confident_threshold = 0.7

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    def closest(self, question: str) -> KnowledgeMatch | None:
        score = self.scores.get(question, 0.2)
        return KnowledgeMatch(FEES, score, confident=score >= self.confident_threshold)

    def search(self, question: str) -> KnowledgeMatch | None:
        match = self.closest(question)
        return match if match is not None and match.score >= self.answer_threshold else None


@pytest.fixture
def engine(sqlite_engine: Engine) -> Iterator[Engine]:
    with clock.frozen_at(NOW):
        tracker = CaseTracker(CONFIG)
        with sqlite_engine.begin() as conn:
            tracker(
                conn,
                DecodedEvent(
                    customer_event("C1", name="张伟", contacts=[{"name": "张伟", "phone": "13800001111"}])
                ),
            )
            track_stages(tracker, conn, NUMBER, customer_no="C1", days=[("acceptance", "03-17")])
        yield sqlite_engine


def _assistant(
    engine: Engine, *, per_client: int = 100, lookups: int = 100
) -> tuple[Assistant, ProgressLookup]:
    lookup = ProgressLookup(
        engine,
        ProgressSettings(per_client=lookups, per_application=100, window_s=600),
        stage_names=lambda: CONFIG.stages,
    )
    index = TableIndex({"办电要交费吗": 0.9, "办电收钱不": 0.6})
    assistant = Assistant(
        index, lookup, hotline="95598", gaps=GapLog(engine), per_client=per_client, window_s=600
    )
    return assistant, lookup


def test_a_progress_question_is_answered_from_the_case(engine: Engine) -> None:
    assistant, _ = _assistant(engine)
    answer = assistant.ask(f"我的申请{NUMBER}到哪一步了，验证码1111", "10.0.0.1")
    assert answer.kind == "progress" and answer.progress is not None
    assert (answer.progress.stage, answer.progress.customer_name) == ("acceptance", "张*")
    assert "“业务受理”环节" in answer.text and "已超过承诺时限" in answer.text
    assert answer.entry_id is None


def test_a_wrong_code_is_answered_exactly_as_an_unknown_number(engine: Engine) -> None:
    assistant, _ = _assistant(engine)
    wrong = assistant.ask(f"我的申请{NUMBER}到哪一步了，验证码2222", "10.0.0.1")
    unknown = assistant.ask("我的申请2026031799999到哪一步了，验证码2222", "10.0.0.1")
    assert wrong == unknown
    assert wrong.kind == "progress" and wrong.progress is None and "未查询到该申请" in wrong.text


def test_progress_questions_spend_the_progress_pages_budget(engine: Engine) -> None:
    assistant, lookup = _assistant(engine, lookups=2)
    assistant.ask(f"我的申请{NUMBER}到哪了 验证码1111", "10.0.0.1")
    lookup.look_up("10.0.0.1", NUMBER, "1111")  # the page or POST /v1/progress, from the same address
    with pytest.raises(RateLimitedError):
        assistant.ask(f"我的申请{NUMBER}到哪了 验证码1111", "10.0.0.1")
    # Another address still has its own budget.
    assert assistant.ask(f"我的申请{NUMBER}到哪了 验证码1111", "10.0.0.2").progress is not None


def test_a_progress_question_without_its_keys_asks_for_them_and_looks_nothing_up(engine: Engine) -> None:
    assistant, lookup = _assistant(engine, lookups=1)
    answer = assistant.ask("我的申请到哪一步了", "10.0.0.1")
    assert answer.kind == "ask_for_number" and "申请编号" in answer.text and "验证码" in answer.text
    only_number = assistant.ask(f"我的申请{NUMBER}到哪一步了", "10.0.0.1")
    assert only_number.kind == "ask_for_number" and "手机号的后4位" in only_number.text
    assert lookup.look_up("10.0.0.1", NUMBER, "1111") is not None  # the one lookup was not spent


def test_other_questions_are_answered_from_the_knowledge_base_with_their_entry(engine: Engine) -> None:
    assistant, _ = _assistant(engine)
    answer = assistant.ask("办电要交费吗", "10.0.0.1")
    assert (answer.kind, answer.text, answer.entry_id) == ("knowledge", FEES.answer, "fees")
    assert (answer.entry_question, answer.source, answer.score) == (FEES.question, "供电营业规则", 0.9)
    with engine.connect() as conn:
        assert list_gaps(conn) == []  # a confident answer is no gap


def test_refused_and_low_confidence_questions_are_kept_scrubbed(engine: Engine) -> None:
    assistant, _ = _assistant(engine)
    refused = assistant.ask("我叫张伟，电费13800001111怎么交", "10.0.0.1")
    assert refused.kind == "refused" and "95598" in refused.text and refused.entry_id is None
    unsure = assistant.ask("办电收钱不", "10.0.0.1")
    assert (unsure.kind, unsure.entry_id) == ("knowledge", "fees")
    with engine.connect() as conn:
        kept = {(gap.question, gap.kind, gap.best_entry_id, gap.best_score) for gap in list_gaps(conn)}
    assert kept == {
        ("我叫【姓名】,电费【手机号】怎么交", "unanswered", "fees", 0.2),
        ("办电收钱不", "low_confidence", "fees", 0.6),
    }


def test_questions_are_limited_per_client_address(engine: Engine) -> None:
    with clock.frozen_at(NOW) as fixed:
        assistant, _ = _assistant(engine, per_client=2)
        assistant.ask("办电要交费吗", "10.0.0.1")
        assistant.ask("办电要交费吗", "10.0.0.1")
        with pytest.raises(TooManyQuestionsError) as refused:
            assistant.ask("办电要交费吗", "10.0.0.1")
        assert refused.value.retry_after_s == 600
        assert assistant.ask("办电要交费吗", "10.0.0.2").kind == "knowledge"
        fixed.advance(timedelta(seconds=refused.value.retry_after_s))
        assert assistant.ask("办电要交费吗", "10.0.0.1").kind == "knowledge"


def test_a_question_is_answered_when_it_cannot_be_kept_for_staff(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    assistant, _ = _assistant(engine)
    with engine.begin() as conn:
        assistant_gaps.drop(conn)
    answer = assistant.ask("办电收钱不", "10.0.0.1")
    assert (answer.kind, answer.entry_id) == ("knowledge", "fees")
    assert "could not keep an assistant question for staff" in caplog.text
