"""The assistant's retrieval methods compared on the development questions: BM25 alone, the classifier
alone, and the blend the hub ships (assistant/retrieval.py), each at the shipped thresholds.

`python -m bench.assistant_methods [QUESTIONS]` prints, per method, the answerable questions given the
right entry and the questions without an entry refused. The default file is tests/data/assistant/dev.yaml,
the questions the thresholds and weights are tuned on; the held-out questions are measured by
tests/unit/assistant/test_heldout.py only. Progress questions are left out: intent decides them before any
retrieval.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from assistant.evaluation import PROGRESS, Evaluation, evaluate, read_questions, standard_classifier
from assistant.knowledge import load_knowledge
from assistant.retrieval import CLASSIFIER_WEIGHT, KnowledgeIndex
from ground.settings import PROJECT_ROOT

DEV = PROJECT_ROOT / "tests" / "data" / "assistant" / "dev.yaml"
METHODS = {"BM25 alone": 0.0, "classifier alone": 1.0, "blend (shipped)": CLASSIFIER_WEIGHT}


@dataclass(frozen=True)
class MethodFigures:
    """One method's share of answerable questions given the right entry and of others refused."""

    method: str
    classifier_weight: float
    evaluation: Evaluation


def compare(questions_file: Path = DEV, config_dir: Path = PROJECT_ROOT) -> list[MethodFigures]:
    """Each method over the file's questions, progress questions left out."""
    base = load_knowledge(config_dir)
    questions = [question for question in read_questions(questions_file) if question.expect != PROGRESS]
    return [
        MethodFigures(
            method,
            weight,
            evaluate(standard_classifier(KnowledgeIndex(base, classifier_weight=weight)), questions),
        )
        for method, weight in METHODS.items()
    ]


def main() -> None:
    """Print the comparison."""
    questions_file = Path(sys.argv[1]) if len(sys.argv) > 1 else DEV
    for figures in compare(questions_file):
        result = figures.evaluation
        print(
            f"{figures.method} (classifier weight {figures.classifier_weight:g}): "
            f"right entry {result.correct}/{result.answerable} = {result.accuracy:.3f}, "
            f"refused {result.refused}/{result.unanswerable} = {result.refusal_rate:.3f}"
        )


if __name__ == "__main__":
    main()
