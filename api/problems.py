"""Every API error as RFC 9457 problem details (application/problem+json) with a stable machine code.

    {"type": "https://yekuo.dev/problems/application-not-found", "title": "Application not found",
     "status": 404, "detail": "application 2026-X is not tracked", "code": "application-not-found",
     "instance": "/v1/applications/2026-X"}

Handlers raise `problem(code, detail)`; the codes and their HTTP statuses are listed once, in PROBLEM_TYPES,
so a client can switch on `code` and the README table is this dictionary. Framework errors (unknown path,
wrong method, request validation, an unexpected exception) are answered in the same shape.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://yekuo.dev/problems/"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProblemType:
    """One kind of error: its HTTP status and a title that does not vary between occurrences."""

    status: int
    title: str


PROBLEM_TYPES: dict[str, ProblemType] = {
    # Credentials and permissions.
    "unauthenticated": ProblemType(401, "Credentials missing or not valid"),
    "forbidden": ProblemType(403, "The caller lacks the permission this endpoint needs"),
    # Requests the API cannot take as they are.
    "validation-failed": ProblemType(422, "The request does not validate"),
    "malformed-json": ProblemType(400, "The request body is not well-formed JSON"),
    "unsupported-media-type": ProblemType(415, "The request body's content type is not accepted here"),
    "invalid-cursor": ProblemType(400, "The cursor was not made by this listing"),
    "invalid-sort": ProblemType(422, "The listing cannot be sorted that way"),
    "invalid-parameter": ProblemType(422, "A parameter has a value the endpoint cannot use"),
    "invalid-file-name": ProblemType(400, "The file name is not a plain file name"),
    "no-legacy-code": ProblemType(422, "The marketing system has no code for a value"),
    "consistency-findings": ProblemType(422, "The submission disagrees with what the hub knows"),
    "unknown-province": ProblemType(422, "No rule set for that province"),
    "webhook-destination-refused": ProblemType(422, "The hub does not deliver webhooks to that URL"),
    "payload-too-large": ProblemType(413, "The request body is larger than allowed"),
    "too-many-requests": ProblemType(429, "Too many requests; try again after Retry-After seconds"),
    "not-found": ProblemType(404, "No such resource"),
    "method-not-allowed": ProblemType(405, "The resource does not accept that method"),
    "bad-request": ProblemType(400, "The request is malformed"),
    "invalid-last-event-id": ProblemType(400, "Last-Event-ID is not an event id of this feed"),
    # Resources that are not there.
    "application-not-found": ProblemType(404, "Application not found"),
    "customer-not-found": ProblemType(404, "Customer not found"),
    "equipment-not-found": ProblemType(404, "Grid equipment not found"),
    "feasibility-not-found": ProblemType(404, "No feasibility assessment for the application"),
    "submission-not-found": ProblemType(404, "Submission not found"),
    "dispatch-file-not-found": ProblemType(404, "No finished intake of a file with that content"),
    "adapter-not-found": ProblemType(404, "Adapter not found"),
    "parked-message-not-found": ProblemType(404, "Parked message not found"),
    "webhook-not-found": ProblemType(404, "Webhook subscription not found"),
    "delivery-not-found": ProblemType(404, "Webhook delivery not found"),
    "progress-not-found": ProblemType(404, "No application with this number and verification code"),
    # State that forbids the request.
    "not-parked": ProblemType(409, "The message is no longer parked"),
    "not-replayable": ProblemType(422, "The message has no legacy record to replay"),
    "operation-refused": ProblemType(400, "The operator service refused the action"),
    "idempotency-key-reused": ProblemType(409, "The Idempotency-Key was used for a different request"),
    "idempotency-key-in-use": ProblemType(409, "A request with this Idempotency-Key is still in progress"),
    "delivery-pending": ProblemType(409, "The delivery is still pending; it needs no replay"),
    "webhook-limit-reached": ProblemType(409, "The caller holds as many webhook subscriptions as allowed"),
    "insufficient-load-history": ProblemType(409, "The measured load history cannot carry a forecast"),
    "insufficient-application-history": ProblemType(409, "The application history cannot carry a forecast"),
    # The hub or one of its dependencies cannot serve it now.
    "bus-unavailable": ProblemType(503, "The bus refused the message; nothing changed"),
    "dispatch-not-configured": ProblemType(503, "The dispatch intake is not configured"),
    "insufficient-storage": ProblemType(507, "The drop folder's disk is too full to take a file"),
    "service-unavailable": ProblemType(503, "The service cannot answer now"),
    "internal-error": ProblemType(500, "Internal error"),
}

# What a bare HTTP status (from the framework or a dependency) is reported as.
_CODE_OF_STATUS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "idempotency-key-in-use",
    413: "payload-too-large",
    422: "validation-failed",
    503: "service-unavailable",
}


class Problem(BaseModel):
    """RFC 9457 problem details, with `code` as this API's stable machine-readable error code."""

    type: str = Field(description="URI naming the kind of problem", examples=[f"{TYPE_BASE}not-found"])
    title: str = Field(description="short summary of the kind of problem", examples=["No such resource"])
    status: int = Field(description="the HTTP status code", examples=[404])
    detail: str = Field(description="what went wrong in this occurrence", examples=["no such resource"])
    code: str = Field(description="stable machine-readable error code", examples=["not-found"])
    instance: str = Field(description="the request path this occurrence is about", examples=["/v1/x"])


class ProblemError(HTTPException):
    """An error the API answers as problem details; raise it through `problem()`.

    It is an HTTPException, so a router mounted without the problem handlers still answers its status.
    """

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(PROBLEM_TYPES[code].status, detail, headers)
        self.code = code
        self.problem_detail = detail
        self.extra = extra or {}


def problem(code: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> ProblemError:
    """The error to raise for a problem code listed in PROBLEM_TYPES (KeyError for an unknown code)."""
    return ProblemError(code, detail, headers=headers, extra=extra)


def problem_body(
    code: str, detail: str, instance: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON members of a problem."""
    kind = PROBLEM_TYPES[code]
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
        "code": code,
        "instance": instance,
    }
    body.update(extra or {})
    return body


def problem_response(
    code: str,
    detail: str,
    instance: str,
    *,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """A problem+json response; used by handlers and by middleware that answers before routing."""
    return JSONResponse(
        problem_body(code, detail, instance, extra),
        status_code=PROBLEM_TYPES[code].status,
        headers=headers,
        media_type=PROBLEM_CONTENT_TYPE,
    )


def problem_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these problem codes, grouped by status."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(PROBLEM_TYPES[code].status, []).append(code)
    return {
        status: {
            "description": "; ".join(f"`{code}`: {PROBLEM_TYPES[code].title}" for code in sorted(listed)),
            "model": Problem,
            "content": {
                PROBLEM_CONTENT_TYPE: {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "example": problem_body(listed[0], PROBLEM_TYPES[listed[0]].title, "/v1/..."),
                }
            },
        }
        for status, listed in sorted(by_status.items())
    }


def _unreadable_body(request: Request, exc: RequestValidationError) -> JSONResponse | None:
    """415 for a body the framework left as bytes because it was not sent as JSON, 400 for broken JSON.

    Either way the request never reached validation, so 422 would send the client looking at its fields.
    """
    if isinstance(exc.body, (bytes, bytearray)):
        sent = request.headers.get("content-type")
        detail = f"the body was sent as {sent[:80]!r}" if sent else "the body was sent without a Content-Type"
        return problem_response(
            "unsupported-media-type",
            f"{detail}; send it as application/json",
            request.url.path,
            headers={"Accept": "application/json"},
        )
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            # The decoder's message names the expected token and the offset, never the body's content.
            reason = str((error.get("ctx") or {}).get("error", "invalid JSON"))
            position = error.get("loc", ("body", "?"))[-1]
            return problem_response(
                "malformed-json", f"the body is not JSON: {reason} at character {position}", request.url.path
            )
    return None


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of the app as problem+json."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(
            exc.code, exc.problem_detail, request.url.path, headers=dict(exc.headers or {}), extra=exc.extra
        )

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _CODE_OF_STATUS.get(exc.status_code)
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if code is None:
            code = "internal-error" if exc.status_code >= 500 else "bad-request"
        return problem_response(code, detail, request.url.path, headers=dict(exc.headers or {}))

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        unreadable = _unreadable_body(request, exc)
        if unreadable is not None:
            return unreadable
        errors = [
            {
                "loc": [str(part) for part in error.get("loc", ())],
                "msg": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
            for error in exc.errors()
        ]
        summary = "; ".join(f"{'.'.join(error['loc'])}: {error['msg']}" for error in errors[:5])
        return problem_response(
            "validation-failed",
            summary or "the request does not validate",
            request.url.path,
            extra={"errors": errors},
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The cause goes to the log only: a stack trace or driver message can carry data the caller
        # must not see.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response("internal-error", "the hub could not answer; see its log", request.url.path)

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
