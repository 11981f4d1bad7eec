"""POST /v1/progress: the customers' own progress lookup (workflow/progress.py) as public JSON."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import AwareDatetime, BaseModel, Field

from api.context import Context
from api.limits import too_many
from api.problems import problem, problem_responses
from workflow.progress import (
    CODE_PATTERN,
    MAX_APPLICATION_NO,
    NOT_FOUND,
    Progress,
    ProgressLookup,
    RateLimitedError,
)


def client_of(request: Request) -> str:
    """The address the request came from, as the server saw it (a proxy's, behind one)."""
    return request.client.host if request.client is not None else "unknown"


class ProgressQuery(BaseModel):
    """An application number and the verification code the customer received."""

    application_no: Annotated[str, Field(min_length=1, max_length=MAX_APPLICATION_NO)] = Field(
        description="application number (申请编号)", examples=["2026112000001"]
    )
    code: Annotated[str, Field(pattern=CODE_PATTERN)] = Field(
        description="the last 4 digits of the mobile number registered with the application",
        examples=["1111"],
    )


class ProgressStepView(BaseModel):
    """One visit of a stage."""

    stage: str = Field(description="stage id", examples=["acceptance"])
    stage_name: str = Field(description="stage name (环节)", examples=["业务受理"])
    entered_at: AwareDatetime = Field(description="when the application entered the stage")
    left_at: AwareDatetime | None = Field(description="when it left the stage; null while it is there")
    unit: str | None = Field(description="the responsible supply unit")
    observed: bool = Field(
        description="false: the hub first saw the application already in the stage, at entered_at"
    )


class ProgressView(BaseModel):
    """An application's progress as its customer sees it; no personal data but the masked name."""

    application_no: str = Field(description="application number")
    customer_name: str | None = Field(description="customer name, masked (张*)", examples=["张*"])
    business_type: str | None = Field(description="business type code", examples=["new_connection"])
    status: str = Field(description="open or closed")
    outcome: str | None = Field(description="energised, withdrawn or cancelled once closed")
    stage: str | None = Field(description="current stage id")
    stage_name: str | None = Field(description="current stage name")
    stage_deadline: date | None = Field(description="the current stage's deadline while the case is open")
    responsible: str | None = Field(description="the unit responsible now")
    opened_at: AwareDatetime | None = Field(description="when the application was accepted")
    closed_at: AwareDatetime | None = Field(description="when it was closed")
    steps: list[ProgressStepView] = Field(description="the stage visits in order")


def progress_json(found: Progress) -> dict[str, Any]:
    """The JSON form of a progress answer."""
    view = ProgressView.model_validate({**found.__dict__, "steps": [step.__dict__ for step in found.steps]})
    return view.model_dump(mode="json")


router = APIRouter(prefix="/v1", tags=["progress"])


async def progress_lookup(context: Context) -> ProgressLookup:
    """The progress lookup of the app (a dependency)."""
    if context.progress is None:
        raise LookupError("the API context holds no progress lookup")
    return context.progress


@router.post(
    "/progress",
    summary="A customer's application progress, by application number and verification code (public)",
    responses={
        200: {"model": ProgressView},
        **problem_responses("progress-not-found", "too-many-requests", "validation-failed"),
    },
)
def look_up_progress(
    query: ProgressQuery, request: Request, lookup: Annotated[ProgressLookup, Depends(progress_lookup)]
) -> dict[str, Any]:
    """Stages, dates and responsible units of the application. The code is the last 4 digits of the
    registered mobile; a wrong code is answered exactly as an unknown number (404), and lookups are
    rate-limited per client address and per application number (429 with Retry-After)."""
    try:
        found = lookup.look_up(client_of(request), query.application_no, query.code)
    except RateLimitedError as exc:
        raise too_many(exc) from exc
    if found is None:
        raise problem("progress-not-found", NOT_FOUND)
    return progress_json(found)
