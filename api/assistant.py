"""POST /v1/assistant/ask: a customer's question in Chinese, answered (public, like POST /v1/progress).

A progress question with its application number and verification code is answered from the case through
the progress lookup's own budget; any other from the knowledge base, with the entry the answer came from;
none close enough: a refusal with the hotline. Questions are limited per client address
(YEKUO_ASSISTANT__PER_CLIENT); past that limit, or the progress lookup's, the answer is 429 with Retry-After.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from api.context import Context
from api.limits import too_many
from api.problems import problem_responses
from api.progress import client_of
from assistant.gaps import GapLog
from assistant.knowledge import load_knowledge
from assistant.retrieval import ANSWER_THRESHOLD, CONFIDENT_THRESHOLD, KnowledgeIndex
from assistant.service import Assistant, AssistantAnswer
from ground.errors import ConfigError
from ground.limits import TooManyError
from ground.settings import AssistantSettings
from store.database import Engine
from workflow.progress import ProgressLookup

MAX_QUESTION = 500


def build_assistant(
    engine: Engine, lookup: ProgressLookup, settings: AssistantSettings, config_dir: Path
) -> Assistant:
    """The assistant of the configured province: its knowledge base under config_dir is loaded and checked
    now (ConfigError listing every problem), and indexed once."""
    answer = _or(settings.answer_threshold, ANSWER_THRESHOLD)
    confident = _or(settings.confident_threshold, CONFIDENT_THRESHOLD)
    if answer > confident:
        raise ConfigError(
            f"YEKUO_ASSISTANT__ANSWER_THRESHOLD ({answer:g}) is above YEKUO_ASSISTANT__CONFIDENT_THRESHOLD "
            f"({confident:g}): an answer below the confident mark must still be possible"
        )
    index = knowledge_index(config_dir, settings.province, answer, confident)
    return Assistant(
        index,
        lookup,
        hotline=index.base.hotline,
        gaps=GapLog(engine),
        per_client=settings.per_client,
        window_s=settings.window_s,
    )


@cache
def knowledge_index(
    config_dir: Path, province: str, answer_threshold: float, confident_threshold: float
) -> KnowledgeIndex:
    """The province's knowledge base, loaded, checked and indexed once per process: training the index
    takes about a second, and every app the process builds (the hub has one; tests many) shares it."""
    return KnowledgeIndex(
        load_knowledge(config_dir, province),
        answer_threshold=answer_threshold,
        confident_threshold=confident_threshold,
    )


def _or(override: float | None, default: float) -> float:
    return default if override is None else override


class AssistantQuestion(BaseModel):
    """A question in Chinese; a progress question carries the application number and verification code."""

    question: Annotated[str, Field(min_length=1, max_length=MAX_QUESTION)] = Field(
        description="the customer's question", examples=["我的申请2026112000001到哪一步了？验证码1111"]
    )


class AssistantProgressFacts(BaseModel):
    """What a progress answer was written from; no personal data but the masked name."""

    application_no: str = Field(description="application number")
    customer_name: str | None = Field(description="customer name, masked (张*)", examples=["张*"])
    status: str = Field(description="open or closed")
    outcome: str | None = Field(description="energised, withdrawn or cancelled once closed")
    stage: str | None = Field(description="current stage id", examples=["energisation"])
    stage_name: str | None = Field(description="current stage name", examples=["装表接电"])
    responsible: str | None = Field(description="the unit responsible now")
    stage_limit_days: int | None = Field(description="the current stage's limit in working days")
    stage_working_days_used: int | None = Field(description="working days of the stage used up to today")
    stage_working_days_left: int | None = Field(
        description="working days left; negative: overdue by that many"
    )
    stage_deadline: date | None = Field(description="the current stage's deadline while the case is open")
    stage_deadline_provisional: bool = Field(
        description="the deadline counts days of an unpublished calendar"
    )
    at_risk: bool = Field(description="the stage is close to its deadline")
    overdue: bool = Field(description="the stage is past its deadline")
    end_to_end_commitment_days: int | None = Field(description="the end-to-end commitment in working days")
    end_to_end_deadline: date | None = Field(description="last day of the commitment; null: paused")
    end_to_end_working_days_used: int | None = Field(description="working days of the commitment used")
    end_to_end_working_days_left: int | None = Field(description="working days of the commitment left")
    end_to_end_status: str | None = Field(
        description="on_track, at_risk, overdue, paused (the customer's works), met, missed, withdrawn, "
        "cancelled"
    )
    end_to_end_provisional: bool = Field(description="the end-to-end deadline counts unpublished days")


class AssistantReply(BaseModel):
    """The answer, and where it came from."""

    kind: Literal["progress", "knowledge", "ask_for_number", "refused"] = Field(
        description="progress: from the case; knowledge: from a knowledge entry; ask_for_number: the "
        "question needs the application number and verification code; refused: no entry is close enough"
    )
    text: str = Field(description="the answer in Chinese")
    entry_id: str | None = Field(description="the knowledge entry answered with", examples=["fees"])
    entry_question: str | None = Field(description="that entry's question")
    source: str | None = Field(description="the public rule the entry is written from")
    score: float | None = Field(description="how close the entry is to the question, 0 to 1")
    progress: AssistantProgressFacts | None = Field(
        description="the progress facts; null for other kinds and when the number and code open nothing"
    )


def reply_json(answer: AssistantAnswer) -> dict[str, Any]:
    """The JSON form of an answer."""
    facts = answer.progress.__dict__ if answer.progress is not None else None
    reply = AssistantReply.model_validate({**answer.__dict__, "progress": facts})
    return reply.model_dump(mode="json")


router = APIRouter(prefix="/v1", tags=["assistant"])


async def customer_assistant(context: Context) -> Assistant:
    """The assistant of the app (a dependency)."""
    if context.assistant is None:
        raise LookupError("the API context holds no assistant")
    return context.assistant


@router.post(
    "/assistant/ask",
    summary="A customer's question answered from their case or the knowledge base (public)",
    responses={
        200: {"model": AssistantReply},
        **problem_responses("too-many-requests", "validation-failed"),
    },
)
def ask(
    body: AssistantQuestion, request: Request, assistant: Annotated[Assistant, Depends(customer_assistant)]
) -> dict[str, Any]:
    """A progress question is answered from the case (a wrong code exactly as an unknown number);
    others from the knowledge base or refused with the hotline. Rate-limited per client address, and
    progress questions also by the progress lookup's limits (429 with Retry-After)."""
    try:
        answer = assistant.ask(body.question, client_of(request))
    except TooManyError as exc:
        raise too_many(exc) from exc
    return reply_json(answer)
