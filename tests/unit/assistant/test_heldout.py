"""The acceptance bar, measured on held-out questions never used for tuning: the shipped knowledge base
must answer ≥ 90% of answerable questions with the right entry, refuse ≥ 90% of the others, recognise
≥ 90% of progress questions, and answer within 100 ms at the 99th percentile."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from assistant.evaluation import Evaluation, evaluate, read_questions, standard_classifier
from assistant.knowledge import load_knowledge
from assistant.retrieval import KnowledgeIndex

ROOT = Path(__file__).resolve().parents[3]
HELDOUT = ROOT / "tests" / "data" / "assistant" / "heldout.yaml"
BAR = 0.90
MIN_QUESTIONS = 200
P99_LIMIT_S = 0.100


@pytest.fixture(scope="module")
def index() -> KnowledgeIndex:
    return KnowledgeIndex(load_knowledge(ROOT))


@pytest.fixture(scope="module")
def result(index: KnowledgeIndex) -> Evaluation:
    return evaluate(standard_classifier(index), HELDOUT)


def report(result: Evaluation) -> str:
    misses = "\n".join(f"  {m.expected} -> {m.got} ({m.score}): {m.question}" for m in result.misses)
    return (
        f"accuracy {result.correct}/{result.answerable}, refused {result.refused}/{result.unanswerable}, "
        f"progress {result.progress_detected}/{result.progress_total}\n{misses}"
    )


def test_the_heldout_set_is_large_enough(result: Evaluation) -> None:
    assert result.answerable + result.unanswerable + result.progress_total >= MIN_QUESTIONS


def test_answerable_questions_get_the_right_entry(result: Evaluation) -> None:
    assert result.accuracy >= BAR, report(result)


def test_questions_without_an_entry_are_refused(result: Evaluation) -> None:
    assert result.refusal_rate >= BAR, report(result)


def test_progress_questions_are_recognised(result: Evaluation) -> None:
    assert result.progress_rate >= BAR, report(result)


def test_p99_answer_latency(index: KnowledgeIndex) -> None:
    classify = standard_classifier(index)
    durations = []
    for question in read_questions(HELDOUT):
        started = time.perf_counter()
        classify(question.text)
        durations.append(time.perf_counter() - started)
    durations.sort()
    assert durations[int(0.99 * (len(durations) - 1))] <= P99_LIMIT_S
