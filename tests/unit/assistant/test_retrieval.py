"""Retrieval of the entry a Chinese question asks about, on a small knowledge base written here."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from assistant.retrieval import CONFIDENT_THRESHOLD, Analyzer, KnowledgeIndex, _Classifier
from tests.unit.assistant.fixtures import DECLINED_BASE, SMALL_BASE, entry


@pytest.fixture(scope="module")
def index() -> KnowledgeIndex:
    return KnowledgeIndex(SMALL_BASE)


def test_a_stored_question_is_found_with_confidence(index: KnowledgeIndex) -> None:
    match = index.search("现场勘查怎么预约")
    assert match is not None
    assert match.entry.id == "site-survey"
    assert CONFIDENT_THRESHOLD <= match.score <= 1.0
    assert match.confident


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("办电需要花钱吗", "fees"),  # 办电 / 报装 and 花钱 / 交钱 are folded together
        ("电能表过户要带什么证件", "name-transfer"),  # 电能表 / 电表, 证件 / 材料
        ("我想给电动车装个充电桩,要准备哪些资料", "ev-charger"),
        ("容量不够用了,想增容", "capacity-increase"),
        ("现场勘察的时候我必须在家吗", "site-survey"),
    ],
)
def test_paraphrased_questions_rank_their_entry_first(
    index: KnowledgeIndex, question: str, expected: str
) -> None:
    match = index.closest(question)
    assert match is not None and match.entry.id == expected


@pytest.mark.parametrize(
    ("question", "expected"), [("办电需要花钱吗", "fees"), ("容量不够用了,想增容", "capacity-increase")]
)
def test_close_paraphrases_are_answered(index: KnowledgeIndex, question: str, expected: str) -> None:
    match = index.search(question)
    assert match is not None and match.entry.id == expected


@pytest.mark.parametrize("question", ["电费每个月几号扣", "推荐一部好看的电影", "天然气是不是涨价了"])
def test_questions_the_base_does_not_cover_are_refused(index: KnowledgeIndex, question: str) -> None:
    assert index.search(question) is None


def test_scores_are_between_zero_and_one_and_rank_the_right_entry_first(index: KnowledgeIndex) -> None:
    exact = index.closest("房子卖了电表怎么过户")
    partial = index.closest("房子卖了,电表怎么处理")
    unrelated = index.closest("电费每个月几号扣")
    assert exact is not None and partial is not None
    assert exact.entry.id == partial.entry.id == "name-transfer"
    assert unrelated is None or unrelated.score < partial.score < exact.score <= 1.0


def test_the_thresholds_decide_refusal_and_confidence() -> None:
    question = "房子卖了,电表怎么处理"
    closest = KnowledgeIndex(SMALL_BASE).closest(question)
    assert closest is not None and 0 < closest.score < 1
    below = KnowledgeIndex(SMALL_BASE, answer_threshold=closest.score + 0.01, confident_threshold=1.0)
    unsure = KnowledgeIndex(
        SMALL_BASE, answer_threshold=closest.score, confident_threshold=closest.score + 0.01
    )
    sure = KnowledgeIndex(SMALL_BASE, answer_threshold=0.0, confident_threshold=closest.score)
    assert below.search(question) is None
    match = unsure.search(question)
    assert match is not None and not match.confident
    match = sure.search(question)
    assert match is not None and match.confident


def test_thresholds_out_of_order_are_refused() -> None:
    with pytest.raises(ValueError, match="thresholds"):
        KnowledgeIndex(SMALL_BASE, answer_threshold=0.8, confident_threshold=0.6)


def test_a_question_of_stop_words_only_is_refused(index: KnowledgeIndex) -> None:
    assert index.search("请问怎么办呢?") is None


def test_a_question_without_any_term_matches_nothing(index: KnowledgeIndex) -> None:
    assert index.closest("?!") is None


def test_synonyms_are_folded_and_stop_words_dropped() -> None:
    analyzer = Analyzer()
    assert analyzer.terms("电能表")[0] == analyzer.terms("表计")[0] == "电表"
    assert "怎么" not in analyzer.terms("送电怎么申请")
    assert analyzer.terms("送电")[0] == analyzer.terms("接电")[0] == "通电"


def test_character_pairs_are_terms_apart_from_words() -> None:
    terms = Analyzer().terms("临电")
    assert len(terms) == 2 and "临电" in terms  # the word, and the pair marked as a pair


def test_building_an_index_writes_nothing_to_stderr() -> None:
    program = (
        "from assistant.retrieval import KnowledgeIndex\n"
        "from tests.unit.assistant.fixtures import SMALL_BASE\n"
        "KnowledgeIndex(SMALL_BASE).search('办电要交钱吗')\n"
    )
    finished = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert finished.stderr == ""


@pytest.mark.parametrize(
    ("question", "near"),
    [
        ("充电桩充一度电要多少钱", "ev-charger"),
        ("家里充电桩突然停电了", "ev-charger"),
        ("过户以后电费怎么交", "name-transfer"),
    ],
)
def test_a_question_closer_to_a_declined_topic_is_refused(question: str, near: str) -> None:
    without = KnowledgeIndex(SMALL_BASE).search(question)
    assert without is not None and without.entry.id == near  # answered wrongly when nothing is declined
    assert KnowledgeIndex(DECLINED_BASE).search(question) is None


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("办电需要花钱吗", "fees"),
        ("电表过户要什么材料", "name-transfer"),
        ("现场勘察的时候我必须在家吗", "site-survey"),
    ],
)
def test_declined_topics_leave_the_entries_answered(question: str, expected: str) -> None:
    index = KnowledgeIndex(DECLINED_BASE)
    match = index.search(question)
    assert match is not None and match.entry.id == expected


def test_closest_ignores_the_declined_topics() -> None:
    closest = KnowledgeIndex(DECLINED_BASE).closest("充电桩充一度电要多少钱")
    assert closest is not None and closest.entry.id == "ev-charger" and closest.score < CONFIDENT_THRESHOLD


def test_the_word_only_one_entry_has_decides_between_entries_sharing_the_rest() -> None:
    base = replace(
        SMALL_BASE,
        entries=(
            entry("pv", "光伏并网怎么申请", "屋顶光伏要报装吗", "分布式光伏并网需要什么材料"),
            entry("ev", "充电桩怎么申请", "私人充电桩要报装吗", "充电桩报装需要什么材料"),
        ),
    )
    match = KnowledgeIndex(base).search("我想申请并网")
    assert match is not None and match.entry.id == "pv"


def test_the_classifier_gives_each_class_a_probability() -> None:
    examples = [
        ("光伏并网怎么申请", 0, 1.0),
        ("屋顶光伏要报装吗", 0, 1.0),
        ("充电桩怎么申请", 1, 1.0),
        ("私人充电桩要报装吗", 1, 1.0),
        ("一度电多少钱", 2, 1.0),
        ("电价怎么算", 2, 1.0),
    ]
    classifier = _Classifier(Analyzer(), examples, class_count=4)
    probabilities = classifier.probabilities("小区车位能装充电桩吗")
    assert probabilities is not None and probabilities.shape == (4,)
    assert probabilities.sum() == pytest.approx(1.0) and probabilities[3] == 0.0
    assert int(probabilities.argmax()) == 1


def test_a_classifier_of_one_class_knows_nothing() -> None:
    assert (
        _Classifier(Analyzer(), [("光伏并网怎么申请", 0, 1.0)], class_count=1).probabilities("并网") is None
    )


def test_two_indexes_of_one_base_score_alike() -> None:
    first = KnowledgeIndex(DECLINED_BASE).closest("房子卖了,电表怎么处理")
    second = KnowledgeIndex(DECLINED_BASE).closest("房子卖了,电表怎么处理")
    assert first == second


def test_a_base_of_one_entry_answers_what_its_words_match() -> None:
    base = replace(SMALL_BASE, entries=SMALL_BASE.entries[:1])
    index = KnowledgeIndex(base)
    match = index.search("办电要交钱吗")
    assert match is not None and match.entry.id == "fees"
    assert index.search("推荐一部好看的电影") is None


def test_a_base_without_entries_answers_nothing() -> None:
    index = KnowledgeIndex(replace(DECLINED_BASE, entries=()))
    assert index.search("电费怎么交") is None and index.closest("电费怎么交") is None
