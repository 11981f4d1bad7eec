"""Bounds on requests: bodies over a size (413), control characters in the path or query (400), and the
429 answer to a rate limit (ground/limits.py) a route reached.

The declared Content-Length is checked first; a chunked body is counted as it is read, and reading past the
bound raises, which the handler's body parsing passes on as HTTP 413. Routes that stream large bodies and
enforce their own bound (the dispatch upload, the SOAP push) are exempt.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import unquote_plus

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem, problem_response
from ground.limits import TooManyError

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def too_many(exc: TooManyError) -> HTTPException:
    """The 429 problem to raise for a refused rate limit, with its Retry-After header."""
    return problem("too-many-requests", str(exc), headers={"Retry-After": str(exc.retry_after_s)})


class BodyTooLargeError(HTTPException):
    """The body grew past the bound while it was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the {limit} bytes allowed")


class BodyLimit:
    """ASGI middleware refusing request bodies over max_bytes, except on the exempt paths."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, exempt: Collection[str] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLargeError:
            # Raised where the body is read outside a handler (e.g. by a middleware further in).
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the request body is larger than the {self.max_bytes} bytes allowed"
        await problem_response("payload-too-large", detail, scope["path"], headers={"Connection": "close"})(
            scope, receive, send
        )


class ControlCharacters:
    """ASGI middleware refusing control characters (NUL, line breaks, escapes) in the path or query (400).

    No identifier, code or filter value of the API contains one, and some databases refuse NUL outright,
    so they are answered 400 here instead of failing deep inside a query.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = unquote_plus(scope.get("query_string", b"").decode("latin-1"))
            if _has_control(scope["path"]) or _has_control(query):
                detail = "the path or query contains a control character"
                await problem_response("bad-request", detail, scope["path"])(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _has_control(text: str) -> bool:
    return any(ord(char) < 0x20 or ord(char) == 0x7F for char in text)
