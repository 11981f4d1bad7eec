"""The acceptance bar, measured on held-out questions never used for tuning: the shipped knowledge base must
answer ≥ 90% of answerable questions with the right entry, refuse ≥ 90% of the others and recognise ≥ 90% of
progress questions.

Only the questions independent of the base count (assistant/evaluation.py): a held-out question worded as
one of the base's own phrasings would measure nothing. The answer latency is measured in bench/
(`python -m bench --only assistant`), not here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.evaluation import Evaluation, evaluate, independent_of, read_questions, standard_classifier
from assistant.knowledge import load_knowledge
from assistant.retrieval import KnowledgeIndex

ROOT = Path(__file__).resolve().parents[3]
HELDOUT = ROOT / "tests" / "data" / "assistant" / "heldout.yaml"
BAR = 0.90
MIN_QUESTIONS = 200


@pytest.fixture(scope="module")
def result() -> Evaluation:
    base = load_knowledge(ROOT)
    return evaluate(standard_classifier(KnowledgeIndex(base)), independent_of(base, read_questions(HELDOUT)))


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
