"""The marketing writer: sends what the hub owes the marketing system, durably, with retries.

Two queues in the hub database feed it: submissions (online applications to create) and
marketing_writebacks (stage changes and other results). Each step takes the rows that are due, holds each
under a lease while it calls the marketing system, and settles it:
- answered: a submission becomes `submitted` with its application number, a write-back `done`; a created
  application is also fetched into the push inbox, so its case opens without waiting for the next poll;
- refused for good: `failed` at the first try, with the reason, and the others go on. That is a soap:Client
  fault or HTTP 4xx (the marketing system's answer names the field), and arguments holding a character XML
  cannot carry (stored before the API refused them): such a request could never be sent, so it is not;
- unavailable (timeout, reset, soap:Server fault, HTTP 5xx) or an unreadable answer: tried again later,
  with exponential backoff and jitter (the write's request id makes a repeat harmless); after
  max_attempts tries, `failed` with the last error as reason;
- circuit open: nothing is called and no try is counted; the step raises, and the hub loop backs off.
A failed row keeps its reason: GET /v1/submissions/{tracking_id} shows it, /admin/adapters counts it.
Write-backs of one application are sent in the order they were queued: one waiting for its retry holds
back the later ones of that application.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from adapters.marketing.breaker import CircuitOpenError
from adapters.marketing.client import MarketingClient
from ground import clock
from ground.errors import (
    ConfigError,
    MalformedInputError,
    SourceRejectedError,
    SourceUnavailableError,
    YekuoError,
)
from ground.settings import MarketingSettings
from store.submissions import (
    Submission,
    Writeback,
    claim,
    due_submissions,
    marketing_writebacks,
    pending_writebacks,
    settle,
    store_push,
    submissions,
)

log = logging.getLogger(__name__)

RETRYABLE = (SourceUnavailableError, MalformedInputError)
DEFAULT_MAX_ATTEMPTS = MarketingSettings.model_fields["write_max_attempts"].default
# Outside XML 1.0's Char production: the SOAP request cannot be built at all.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def unsendable(arguments: Mapping[str, Any], path: str = "") -> str | None:
    """Why these arguments can never be sent (a text holding a character XML cannot carry), or None."""
    for name, value in _leaves(arguments, path):
        if isinstance(value, str):
            found = _NOT_XML.search(value)
            if found is not None:
                return (
                    f"{name} holds U+{ord(found.group()):04X} at position {found.start()}, which XML "
                    "cannot carry: the marketing system cannot be sent this request"
                )
    return None


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, value


@dataclass(frozen=True)
class WriterPolicy:
    """How the writer retries: backoff from initial_backoff_s doubling to max_backoff_s, with jitter; fails a
    write after max_attempts tries that failed for a transient reason; holds a row for lease_s; takes
    batch rows per step."""

    initial_backoff_s: float = 2.0
    max_backoff_s: float = 300.0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    lease_s: float = 120.0
    batch: int = 50

    def __post_init__(self) -> None:
        if self.initial_backoff_s < 0 or self.max_backoff_s < self.initial_backoff_s:
            raise ConfigError("writer backoff must satisfy 0 <= initial_backoff_s <= max_backoff_s")
        if self.max_attempts < 1:
            raise ConfigError(f"writer max_attempts must be at least 1, got {self.max_attempts}")
        if self.lease_s <= 0 or self.batch < 1:
            raise ConfigError("writer lease_s must be positive and batch at least 1")

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Seconds to wait after the attempts-th failure: exponential, with half of it random."""
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * float(2 ** max(attempts - 1, 0)))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass
class WriterStats:
    """What the writer has done since it started."""

    submitted: int = 0
    written: int = 0
    failed: int = 0
    retried: int = 0
    last_error: str | None = None
    by_operation: dict[str, int] = field(default_factory=dict)


class MarketingWriter:
    """Creates submitted applications in the marketing system and sends the queued write-backs.

    "Now" comes from the hub's clock (ground.clock), the one the submission store stamps its rows with.
    """

    name = "marketing"

    def __init__(
        self,
        engine: Engine,
        client: MarketingClient,
        *,
        policy: WriterPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.client = client
        self.policy = policy or WriterPolicy()
        self.stats = WriterStats()
        self._rng = rng or random.Random()

    def step(self) -> bool:
        """Send what is due; return whether anything was sent (a hub loop step)."""
        now = clock.now()
        with self.engine.connect() as conn:
            due = due_submissions(conn, now, self.policy.batch)
            queued = pending_writebacks(conn, self.policy.batch * 4)
        worked = False
        for submission in due:
            worked = self._submit(submission) or worked
        held: set[str] = set()
        sent = 0
        for writeback in queued:
            if sent >= self.policy.batch or writeback.application_no in held:
                continue
            leased = writeback.lease_until is not None and writeback.lease_until > now
            if writeback.next_attempt_at > now or leased:
                held.add(writeback.application_no)
                continue
            outcome = self._write(writeback)
            sent += 1
            worked = worked or outcome is not None
            # A refused write is final; one waiting for its retry holds back the later ones.
            if outcome in (None, "retry"):
                held.add(writeback.application_no)
        return worked

    def _lease(self) -> datetime:
        return clock.now() + timedelta(seconds=self.policy.lease_s)

    def _submit(self, submission: Submission) -> bool:
        key = submissions.c.tracking_id
        with self.engine.begin() as conn:
            if not claim(conn, submissions, key, submission.tracking_id, self._lease()):
                return False
        arguments = submission.arguments
        attempts = submission.attempts + 1
        reason = unsendable(arguments)
        if reason is not None:
            self._fail(submissions, key, submission.tracking_id, attempts, reason)
            return True
        try:
            created = self.client.create_application(
                submission.tracking_id, arguments["application"], arguments.get("customer")
            )
        except CircuitOpenError:
            self._release(submissions, key, submission.tracking_id)
            raise
        except SourceRejectedError as exc:
            self._fail(submissions, key, submission.tracking_id, attempts, str(exc))
            return True
        except RETRYABLE as exc:
            self._again(submissions, key, submission.tracking_id, attempts, exc)
            return True
        with self.engine.begin() as conn:
            settle(
                conn,
                submissions,
                key,
                submission.tracking_id,
                status="submitted",
                application_no=created.app_no,
                customer_no=created.cons_no,
                attempts=attempts,
                submitted_at=clock.now(),
                last_error=None,
            )
        self.stats.submitted += 1
        log.info("submission %s created as application %s", submission.tracking_id, created.app_no)
        self._bring_in(created.app_no)
        return True

    def _bring_in(self, app_no: str) -> None:
        """Fetch a created application and its customer into the push inbox (else the poll brings it)."""
        try:
            application = self.client.get_application(app_no)
            customer = self.client.get_customer(str(application["CONS_NO"]))
            with self.engine.begin() as conn:
                store_push(conn, application, customer, via="create")
        except YekuoError as exc:
            log.info("created application %s is left to the next poll: %s", app_no, exc)

    def _write(self, writeback: Writeback) -> str | None:
        key = marketing_writebacks.c.id
        with self.engine.begin() as conn:
            if not claim(conn, marketing_writebacks, key, writeback.id, self._lease()):
                return None
        attempts = writeback.attempts + 1
        reason = unsendable(writeback.arguments)
        if reason is not None:
            self._fail(marketing_writebacks, key, writeback.id, attempts, reason)
            return "failed"
        try:
            answer = self.client.write(writeback.operation, writeback.arguments)
        except CircuitOpenError:
            self._release(marketing_writebacks, key, writeback.id)
            raise
        except SourceRejectedError as exc:
            self._fail(marketing_writebacks, key, writeback.id, attempts, str(exc))
            return "failed"
        except RETRYABLE as exc:
            self._again(marketing_writebacks, key, writeback.id, attempts, exc)
            return "retry"
        with self.engine.begin() as conn:
            settle(
                conn,
                marketing_writebacks,
                key,
                writeback.id,
                status="done",
                result=answer,
                attempts=attempts,
                done_at=clock.now(),
                last_error=None,
            )
        self.stats.written += 1
        self.stats.by_operation[writeback.operation] = self.stats.by_operation.get(writeback.operation, 0) + 1
        return "done"

    def _release(self, table: Any, key: Any, value: object) -> None:
        with self.engine.begin() as conn:
            settle(conn, table, key, value)

    def _fail(self, table: Any, key: Any, value: object, attempts: int, reason: str) -> None:
        with self.engine.begin() as conn:
            settle(conn, table, key, value, status="failed", reason=reason, attempts=attempts)
        self.stats.failed += 1
        log.warning("%s %s failed: %s", table.name, value, reason)

    def _again(self, table: Any, key: Any, value: object, attempts: int, error: YekuoError) -> None:
        self.stats.last_error = str(error)
        limit = self.policy.max_attempts
        if attempts >= limit:
            self._fail(table, key, value, attempts, f"gave up after {attempts} attempts: {error}")
            return
        due = clock.now() + timedelta(seconds=self.policy.delay(attempts, self._rng))
        with self.engine.begin() as conn:
            settle(conn, table, key, value, attempts=attempts, next_attempt_at=due, last_error=str(error))
        self.stats.retried += 1
        log.info("%s %s: attempt %d failed, next at %s: %s", table.name, value, attempts, due, error)
