"""Idempotency-Key on every write (POST, PUT, PATCH, DELETE): a retried request gets the first response.

Keys belong to the caller (token `sub` or API key name), so two callers never share one. The first request
with a key claims it and runs; if it succeeded (2xx), its response is kept for `retention`. The same key
with the same request (method, path, query and body) replays that response with `Idempotent-Replayed:
true`; with a different request it is refused (409 `idempotency-key-reused`); while the first is still
running, a second is refused (409 `idempotency-key-in-use`). A failed request releases its key, so the
caller can retry with it. Bodies are hashed as they stream, so large uploads are fingerprinted in constant
memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response
from api.security import caller_of
from store.database import Engine, utcnow
from store.idempotency import StoredResponse, claim, complete, purge_expired, release

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_CHARS = 191
# Response headers that belong to the outcome and are replayed with it.
_REPLAYED_HEADERS = ("content-type", "location")


@dataclass(frozen=True)
class IdempotencyOptions:
    """How long keys are kept and when an unfinished claim counts as abandoned."""

    retention: timedelta = timedelta(hours=24)
    stale_after: timedelta = timedelta(minutes=10)
    max_stored_bytes: int = 1024 * 1024
    purge_every: timedelta = timedelta(minutes=5)


class Idempotency:
    """ASGI middleware; it runs inside the access control, which names the caller."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        engine: Engine,
        options: IdempotencyOptions | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.app = app
        self.engine = engine
        self.options = options or IdempotencyOptions()
        self.clock = clock
        self._next_purge: datetime | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = Headers(scope=scope).get(IDEMPOTENCY_HEADER) if scope["type"] == "http" else None
        principal = caller_of(scope)
        if key is None or scope["method"] not in WRITE_METHODS or principal is None:
            await self.app(scope, receive, send)
            return
        if not key or len(key) > MAX_KEY_CHARS or not key.isprintable() or not key.isascii():
            detail = f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_KEY_CHARS} printable ASCII characters"
            await problem_response("invalid-parameter", detail, scope["path"])(scope, receive, send)
            return
        outcome = await run_in_threadpool(self._claim, principal.sub, key)
        if outcome == "in_progress":
            detail = f"a request with {IDEMPOTENCY_HEADER} {key!r} is still running; retry later"
            await problem_response("idempotency-key-in-use", detail, scope["path"])(scope, receive, send)
        elif isinstance(outcome, StoredResponse):
            await self._replay(scope, receive, send, key, outcome)
        else:
            await self._first(scope, receive, send, principal.sub, key)

    def _claim(self, principal: str, key: str) -> str | StoredResponse:
        now = self.clock()
        with self.engine.begin() as conn:
            if self._next_purge is None or now >= self._next_purge:
                purge_expired(conn, now)
                self._next_purge = now + self.options.purge_every
            return claim(
                conn,
                principal,
                key,
                now=now,
                stale_after=self.options.stale_after,
                retention=self.options.retention,
            )

    async def _replay(
        self, scope: Scope, receive: Receive, send: Send, key: str, stored: StoredResponse
    ) -> None:
        fingerprint = _Fingerprint(scope)
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            fingerprint.update(message.get("body", b""))
            if not message.get("more_body", False):
                break
        if fingerprint.hexdigest() != stored.fingerprint:
            detail = f"{IDEMPOTENCY_HEADER} {key!r} was used for a different request; use a new key"
            await problem_response("idempotency-key-reused", detail, scope["path"])(scope, receive, send)
            return
        headers = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in stored.headers.items()
        ]
        headers.append((REPLAYED_HEADER.lower().encode("latin-1"), b"true"))
        headers.append((b"content-length", str(len(stored.body)).encode("latin-1")))
        await send({"type": "http.response.start", "status": stored.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": stored.body})

    async def _first(self, scope: Scope, receive: Receive, send: Send, principal: str, key: str) -> None:
        fingerprint = _Fingerprint(scope)
        read_to_end = False
        status = 0
        headers: dict[str, str] = {}
        body = bytearray()
        fits = True

        async def hashing_receive() -> Message:
            nonlocal read_to_end
            message = await receive()
            if message["type"] == "http.request":
                fingerprint.update(message.get("body", b""))
                read_to_end = read_to_end or not message.get("more_body", False)
            return message

        async def capturing_send(message: Message) -> None:
            nonlocal status, fits, read_to_end
            if message["type"] == "http.response.start":
                # What the handler left unread still belongs to the request: hash it before answering,
                # since the server ends the request body once the response is complete.
                while not read_to_end:
                    rest = await receive()
                    if rest["type"] != "http.request":
                        break
                    fingerprint.update(rest.get("body", b""))
                    read_to_end = not rest.get("more_body", False)
                status = message["status"]
                for name, value in message.get("headers", ()):
                    decoded = name.decode("latin-1").lower()
                    if decoded in _REPLAYED_HEADERS:
                        headers[decoded] = value.decode("latin-1")
            elif message["type"] == "http.response.body" and fits:
                body.extend(message.get("body", b""))
                fits = len(body) <= self.options.max_stored_bytes
            await send(message)

        kept = False
        try:
            await self.app(scope, hashing_receive, capturing_send)
            if 200 <= status < 300 and read_to_end and fits:
                stored = StoredResponse(fingerprint.hexdigest(), status, headers, bytes(body))
                await run_in_threadpool(self._complete, principal, key, stored)
                kept = True
        finally:
            if not kept:
                await run_in_threadpool(self._release, principal, key)

    def _complete(self, principal: str, key: str, stored: StoredResponse) -> None:
        with self.engine.begin() as conn:
            complete(conn, principal, key, stored)

    def _release(self, principal: str, key: str) -> None:
        with self.engine.begin() as conn:
            release(conn, principal, key)


class _Fingerprint:
    """SHA-256 over the method, path, query string and body of a request."""

    def __init__(self, scope: Scope) -> None:
        self._hash = hashlib.sha256()
        for part in (scope["method"].encode(), scope["path"].encode("utf-8"), scope.get("query_string", b"")):
            self._hash.update(len(part).to_bytes(8, "big") + part)

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
