"""Counting answers, refusals and progress questions of a labelled question file."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.evaluation import (
    NONE,
    PROGRESS,
    Miss,
    Question,
    Verdict,
    evaluate,
    independent_of,
    read_questions,
    standard_classifier,
)
from assistant.retrieval import KnowledgeIndex
from ground.errors import ConfigError
from tests.unit.assistant.fixtures import SMALL_BASE

QUESTIONS = """\
questions:
  - q: 办电需要花钱吗
    expect: fees
  - q: 容量不够用了,想增容
    expect: capacity-increase
  - q: 电费每个月几号扣
    expect: none
  - q: 推荐一部好看的电影
    expect: none
  - q: 我的申请到哪一步了
    expect: progress
  - q: 2611200001234 验证码1234
    expect: progress
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "questions.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_each_kind_of_question_is_counted_and_every_miss_kept(tmp_path: Path) -> None:
    answers = {"办电需要花钱吗": Verdict("fees", 0.9), "容量不够用了,想增容": Verdict("fees", 0.4)}
    answers |= {"电费每个月几号扣": Verdict(NONE, 0.1), "推荐一部好看的电影": Verdict("fees", 0.3)}
    answers |= {
        "我的申请到哪一步了": Verdict(PROGRESS, None),
        "2611200001234 验证码1234": Verdict(NONE, None),
    }
    result = evaluate(answers.__getitem__, read_questions(write(tmp_path, QUESTIONS)))
    assert (result.answerable, result.correct, result.accuracy) == (2, 1, 0.5)
    assert (result.unanswerable, result.refused, result.refusal_rate) == (2, 1, 0.5)
    assert (result.progress_total, result.progress_detected, result.progress_rate) == (2, 1, 0.5)
    assert result.misses == (
        Miss("容量不够用了,想增容", "capacity-increase", "fees", 0.4),
        Miss("推荐一部好看的电影", "none", "fees", 0.3),
        Miss("2611200001234 验证码1234", "progress", "none", None),
    )


def test_the_standard_classifier_asks_intent_then_the_index(tmp_path: Path) -> None:
    result = evaluate(
        standard_classifier(KnowledgeIndex(SMALL_BASE)), read_questions(write(tmp_path, QUESTIONS))
    )
    assert result.misses == ()
    assert (result.accuracy, result.refusal_rate, result.progress_rate) == (1.0, 1.0, 1.0)


def test_a_refused_verdict_keeps_the_closest_score() -> None:
    verdict = standard_classifier(KnowledgeIndex(SMALL_BASE))("请问怎么办呢")
    assert verdict.label == NONE
    assert verdict.score is not None and 0 < verdict.score < 1


def test_a_malformed_question_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "questions:\n  - q: 办电要钱吗\n    expect: fees\n  - q: 只有问题\n")
    with pytest.raises(ConfigError, match=r"questions.yaml:4: a question is"):
        read_questions(path)


def test_a_file_without_questions_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"questions.yaml:1: expected a map with `questions`"):
        read_questions(write(tmp_path, "entries: []\n"))


def test_questions_worded_as_the_base_words_them_are_not_independent() -> None:
    entry = SMALL_BASE.entries[0]
    questions = [
        Question(entry.question, entry.id),
        Question(f"  {entry.paraphrases[0]}？", entry.id),
        Question("推荐一部好看的电影", NONE),
    ]
    assert independent_of(SMALL_BASE, questions) == [questions[2]]
