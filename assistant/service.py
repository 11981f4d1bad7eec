"""The assistant: one question in, one answer out.

A question about the customer's own application (assistant/intent.py) is answered from the case through
the progress lookup the progress page and POST /v1/progress use, so it spends the same budget per address
and per application number and a wrong code is answered exactly as an unknown number. Without both the
number and the code the answer asks for what is missing. Any other question is answered from the
knowledge base; when no entry is close enough the answer says so and gives the hotline. Refused and
low-confidence questions are kept, scrubbed, for staff (assistant/gaps.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, Protocol

from sqlalchemy.exc import SQLAlchemyError

from assistant.answers import (
    NOT_FOUND,
    ask_for_number_answer,
    progress_answer,
    refusal_answer,
)
from assistant.gaps import GapKind
from assistant.intent import progress_question
from assistant.knowledge import KnowledgeMatch
from ground.limits import RateLimiter, TooManyError
from workflow.progress import Progress, ProgressLookup

log = logging.getLogger(__name__)

AnswerKind = Literal["progress", "knowledge", "ask_for_number", "refused"]


class KnowledgeSearch(Protocol):
    """What the assistant needs of the knowledge index (assistant/retrieval.py's KnowledgeIndex)."""

    def search(self, question: str) -> KnowledgeMatch | None:
        """The closest entry, or None when none is close enough to answer with."""

    def closest(self, question: str) -> KnowledgeMatch | None:
        """The closest entry however far (None: the question has no term at all), for staff."""


class GapRecorder(Protocol):
    """Where questions the knowledge base did not answer well go (assistant/gaps.py's GapLog)."""

    def record(self, question: str, kind: GapKind, entry_id: str | None, score: float | None) -> None:
        """Keep the question, scrubbed, for staff."""


@dataclass(frozen=True)
class AssistantAnswer:
    """An answer, with the knowledge entry it came from or the progress facts it was written from.

    progress is None for a progress question whose number and code open no application.
    """

    kind: AnswerKind
    text: str
    entry_id: str | None = None
    entry_question: str | None = None
    source: str | None = None
    score: float | None = None
    progress: Progress | None = None


class TooManyQuestionsError(TooManyError):
    """Too many questions from this address; retry_after_s says how long to wait."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("questions", retry_after_s)


class Assistant:
    """Answers customers' questions: progress from the case, anything else from the knowledge base.

    per_client questions per window_s seconds from one address; a progress question also spends the
    lookup's own budget and raises api.progress.RateLimitedError past it.
    """

    def __init__(
        self,
        index: KnowledgeSearch,
        lookup: ProgressLookup,
        *,
        hotline: str,
        gaps: GapRecorder | None = None,
        per_client: int,
        window_s: float,
    ) -> None:
        self._index = index
        self._lookup = lookup
        self._gaps = gaps
        self.hotline = hotline
        self.per_client = RateLimiter(per_client, window_s)

    def ask(self, question: str, client: str) -> AssistantAnswer:
        """The answer to one question from the given client address."""
        wait = self.per_client.hit(client)
        if wait is not None:
            raise TooManyQuestionsError(wait)
        wanted = progress_question(question)
        if wanted is not None:
            if wanted.application_no is None or wanted.code is None:
                return AssistantAnswer("ask_for_number", ask_for_number_answer(wanted))
            found = self._lookup.look_up(client, wanted.application_no, wanted.code)
            text = progress_answer(found) if found is not None else NOT_FOUND
            return AssistantAnswer("progress", text, progress=found)
        match = self._index.search(question)
        if match is None:
            self._keep(question, "unanswered", self._index.closest(question))
            return AssistantAnswer("refused", refusal_answer(self.hotline))
        if not match.confident:
            self._keep(question, "low_confidence", match)
        entry = match.entry
        return AssistantAnswer(
            "knowledge",
            entry.answer,
            entry_id=entry.id,
            entry_question=entry.question,
            source=entry.source,
            score=match.score,
        )

    def _keep(self, question: str, kind: GapKind, match: KnowledgeMatch | None) -> None:
        if self._gaps is None:
            return
        try:
            self._gaps.record(
                question, kind, match.entry.id if match else None, match.score if match else None
            )
        except SQLAlchemyError:
            # The customer still gets the answer; staff lose one count of one question, said in the log.
            log.exception("could not keep an assistant question for staff (%s)", kind)
