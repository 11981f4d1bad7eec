"""Page 5, customer progress (进度查询): public and read-only, no login.

A form takes the application number and the verification code (last 4 digits of the registered mobile)
and shows the stages with their dates and responsible units, through the same rate-limited lookup as POST
/v1/progress (api/progress.py), so the form and the API share one budget per address and per number. A
wrong code and an unknown number get the same page. The code travels in the form's body, never in a URL.

Above the form a chat box takes a question in Chinese (POST /ui/progress/ask) and shows the assistant's
answer, as POST /v1/assistant/ask gives it: a progress question spends the same lookup budget, and its
answer shows the stages below as the lookup does.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from api.assistant import MAX_QUESTION, customer_assistant
from api.progress import client_of, progress_lookup
from api.ui.context import Ui
from api.ui.login import form_fields
from api.ui.render import render
from assistant.service import Assistant
from ground.limits import TooManyError
from workflow.progress import MAX_APPLICATION_NO, ProgressLookup, RateLimitedError, well_formed_code

PAGE = "/ui/progress"
ASK = "/ui/progress/ask"
NOT_FOUND = "未查询到该申请: 请核对申请编号和验证码 (登记手机号后4位)。"
BAD_CODE = "验证码为登记手机号的后4位数字。"
BAD_NUMBER = f"请填写申请编号 (最多 {MAX_APPLICATION_NO} 个字符)。"
BAD_QUESTION = f"请输入您的问题 (最多 {MAX_QUESTION} 个字)。"


router = APIRouter(include_in_schema=False)


def page(env: Jinja2Templates, request: Request, status: int, **context: object) -> HTMLResponse:
    """The progress page with what this request found or refused."""
    defaults = {"found": None, "error": None, "question": "", "answer": None, "ask_error": None}
    response = render(env, request, "progress.html", {**defaults, **context})
    response.status_code = status
    return response


@router.get(PAGE)
def progress_form(request: Request, ui: Ui) -> HTMLResponse:
    return page(ui.env, request, 200, application_no="")


@router.post(PAGE)
async def look_up(
    request: Request, ui: Ui, lookup: Annotated[ProgressLookup, Depends(progress_lookup)]
) -> HTMLResponse:
    fields = await form_fields(request)
    application_no = fields.get("application_no", "").strip()
    code = fields.get("code", "").strip()
    if not application_no or len(application_no) > MAX_APPLICATION_NO:
        return page(
            ui.env, request, 422, application_no=application_no[:MAX_APPLICATION_NO], error=BAD_NUMBER
        )
    if not well_formed_code(code):
        return page(ui.env, request, 422, application_no=application_no, error=BAD_CODE)
    try:
        found = await run_in_threadpool(lookup.look_up, client_of(request), application_no, code)
    except RateLimitedError as exc:
        response = page(
            ui.env,
            request,
            429,
            application_no=application_no,
            error=f"查询过于频繁, 请 {exc.retry_after_s} 秒后再试。",
        )
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    if found is None:
        return page(ui.env, request, 404, application_no=application_no, error=NOT_FOUND)
    return page(ui.env, request, 200, application_no=application_no, found=found)


@router.post(ASK)
async def ask(
    request: Request, ui: Ui, assistant: Annotated[Assistant, Depends(customer_assistant)]
) -> HTMLResponse:
    # A question about an application may hold its verification code: only a question answered from
    # the knowledge base is shown back.
    question = (await form_fields(request)).get("question", "").strip()
    if not question or len(question) > MAX_QUESTION:
        return page(ui.env, request, 422, application_no="", ask_error=BAD_QUESTION)
    try:
        # The lookup, the classifier and the gap log block: off the event loop.
        answer = await run_in_threadpool(assistant.ask, question, client_of(request))
    except TooManyError as exc:
        response = page(
            ui.env,
            request,
            429,
            application_no="",
            ask_error=f"提问过于频繁, 请 {exc.retry_after_s} 秒后再试。",
        )
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    shown = question if answer.kind in ("knowledge", "refused") else ""
    return page(ui.env, request, 200, application_no="", question=shown, answer=answer, found=answer.progress)
