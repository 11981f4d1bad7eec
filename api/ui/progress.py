"""Page 5, customer progress (进度查询): public and read-only, no login.

A form takes the application number and the verification code (last 4 digits of the registered mobile)
and shows the stages with their dates and responsible units, through the same rate-limited lookup as POST
/v1/progress (api/progress.py), so the form and the API share one budget per address and per number. A
wrong code and an unknown number get the same page. The code travels in the form's body, never in a URL.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.progress import MAX_APPLICATION_NO, ProgressLookup, RateLimitedError, client_of, well_formed_code
from api.ui.login import form_fields
from api.ui.render import render

PAGE = "/ui/progress"
NOT_FOUND = "未查询到该申请: 请核对申请编号和验证码 (登记手机号后4位)。"
BAD_CODE = "验证码为登记手机号的后4位数字。"
BAD_NUMBER = f"请填写申请编号 (最多 {MAX_APPLICATION_NO} 个字符)。"


def progress_page_router(env: Jinja2Templates, lookup: ProgressLookup) -> APIRouter:
    """GET and POST /ui/progress."""
    router = APIRouter(include_in_schema=False)

    def page(request: Request, status: int, **context: object) -> HTMLResponse:
        response = render(env, request, "progress.html", {"found": None, "error": None, **context})
        response.status_code = status
        return response

    @router.get(PAGE)
    def progress_form(request: Request) -> HTMLResponse:
        return page(request, 200, application_no="")

    @router.post(PAGE)
    async def look_up(request: Request) -> HTMLResponse:
        fields = await form_fields(request)
        application_no = fields.get("application_no", "").strip()
        code = fields.get("code", "").strip()
        if not application_no or len(application_no) > MAX_APPLICATION_NO:
            return page(request, 422, application_no=application_no[:MAX_APPLICATION_NO], error=BAD_NUMBER)
        if not well_formed_code(code):
            return page(request, 422, application_no=application_no, error=BAD_CODE)
        try:
            found = lookup.look_up(client_of(request), application_no, code)
        except RateLimitedError as exc:
            response = page(
                request,
                429,
                application_no=application_no,
                error=f"查询过于频繁, 请 {exc.retry_after_s} 秒后再试。",
            )
            response.headers["Retry-After"] = str(exc.retry_after_s)
            return response
        if found is None:
            return page(request, 404, application_no=application_no, error=NOT_FOUND)
        return page(request, 200, application_no=application_no, found=found)

    return router
