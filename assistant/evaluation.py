"""Measuring the assistant's answers on a labelled question file: top-1 accuracy, refusals, progress.

A question file is `questions:` a list of `{q: <question>, expect: <entry id> | none | progress}`: the entry
that answers it, `none` for a question the knowledge base must refuse, `progress` for one about the
customer's own application.

Held-out questions are written apart from the knowledge base, yet a short question can come out worded as
one of its phrasings ("电费发票怎么开"). Measured on such a question, the retrieval would only be looking
itself up: independent_of() keeps the questions that repeat no phrasing of the base, nor nearly (sharing at
least NEAR_REPEAT of their character pairs, counted as Jaccard similarity after `comparable`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.intent import progress_question
from assistant.knowledge import KnowledgeBase, comparable
from assistant.retrieval import KnowledgeIndex
from mappings.yamlfile import Diagnostics, is_list, is_map, item_line, read_yaml

PROGRESS = "progress"
NONE = "none"
NEAR_REPEAT = 0.7


@dataclass(frozen=True)
class Verdict:
    """How a question was classified (progress, none or an entry id), and the retrieval's score if any."""

    label: str
    score: float | None


Classifier = Callable[[str], Verdict]


@dataclass(frozen=True)
class Question:
    """A labelled question of a question file."""

    text: str
    expect: str


@dataclass(frozen=True)
class Miss:
    """A question classified otherwise than its label."""

    question: str
    expected: str
    got: str
    score: float | None


@dataclass(frozen=True)
class Evaluation:
    """Counts per kind of question, and every miss."""

    answerable: int
    correct: int
    unanswerable: int
    refused: int
    progress_total: int
    progress_detected: int
    misses: tuple[Miss, ...]

    @property
    def accuracy(self) -> float:
        """Share of answerable questions answered with the expected entry (top 1)."""
        return self.correct / self.answerable if self.answerable else 0.0

    @property
    def refusal_rate(self) -> float:
        """Share of questions no entry answers that were refused."""
        return self.refused / self.unanswerable if self.unanswerable else 0.0

    @property
    def progress_rate(self) -> float:
        """Share of progress questions recognised as such."""
        return self.progress_detected / self.progress_total if self.progress_total else 0.0


def read_questions(questions_file: Path) -> list[Question]:
    """The labelled questions of a file; ConfigError with file:line for a malformed one."""
    diag = Diagnostics()
    file = str(questions_file)
    document = read_yaml(questions_file, file, diag)
    questions: list[Question] = []
    if document is not None and not (is_map(document) and is_list(document.get("questions"))):
        diag.error("expected a map with `questions`, a list of {q, expect}", file, 1)
    elif document is not None:
        items = document["questions"]
        for index, item in enumerate(items):
            text, expect = (item.get("q"), item.get("expect")) if is_map(item) else (None, None)
            if isinstance(text, str) and text.strip() and isinstance(expect, str) and expect.strip():
                questions.append(Question(text.strip(), expect.strip()))
            else:
                line = item_line(items, index)
                diag.error("a question is {q: <text>, expect: <entry id> | none | progress}", file, line)
    diag.raise_if_any()
    return questions


def independent_of(base: KnowledgeBase, questions: Sequence[Question]) -> list[Question]:
    """The questions that repeat no question, paraphrase or declined example of the base, nor nearly."""
    wordings = [entry.question for entry in base.entries]
    wordings += [paraphrase for entry in base.entries for paraphrase in entry.paraphrases]
    wordings += [example for topic in base.declined for example in topic.examples]
    known = [_pairs(wording) for wording in wordings]
    return [
        question
        for question in questions
        if all(_similarity(_pairs(question.text), pairs) < NEAR_REPEAT for pairs in known)
    ]


def _pairs(text: str) -> frozenset[str]:
    plain = comparable(text)
    return frozenset(plain[index : index + 2] for index in range(len(plain) - 1)) or frozenset({plain})


def _similarity(one: frozenset[str], other: frozenset[str]) -> float:
    return len(one & other) / len(one | other)


def evaluate(classify: Classifier, questions: Sequence[Question]) -> Evaluation:
    """Classify every question and count how many got their label."""
    counts = {"answerable": 0, "correct": 0, "unanswerable": 0, "refused": 0, "progress": 0, "detected": 0}
    misses: list[Miss] = []
    for question in questions:
        verdict = classify(question.text)
        right = verdict.label == question.expect
        kind = {PROGRESS: ("progress", "detected"), NONE: ("unanswerable", "refused")}.get(
            question.expect, ("answerable", "correct")
        )
        counts[kind[0]] += 1
        counts[kind[1]] += right
        if not right:
            misses.append(Miss(question.text, question.expect, verdict.label, verdict.score))
    return Evaluation(
        answerable=counts["answerable"],
        correct=counts["correct"],
        unanswerable=counts["unanswerable"],
        refused=counts["refused"],
        progress_total=counts["progress"],
        progress_detected=counts["detected"],
        misses=tuple(misses),
    )


def standard_classifier(index: KnowledgeIndex) -> Classifier:
    """The assistant's own order: a progress question first, then the knowledge index, else none. A
    refused question's verdict keeps the closest entry's score, for tuning the threshold."""

    def classify(text: str) -> Verdict:
        if progress_question(text) is not None:
            return Verdict(PROGRESS, None)
        match = index.search(text)
        if match is not None:
            return Verdict(match.entry.id, match.score)
        closest = index.closest(text)
        return Verdict(NONE, closest.score if closest is not None else None)

    return classify
