"""A circuit breaker for calls to a legacy system: after repeated failures, stop calling it for a while.

closed     calls go through; `failure_threshold` failures in a row open the circuit.
open       calls are refused at once with CircuitOpenError (no request reaches the system) until
           `reset_timeout_s` has passed since the circuit opened.
half_open  one trial call goes through; success closes the circuit, failure opens it again.

A business refusal (SourceRejectedError) is an answer and counts as success: the system is up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ground.errors import ConfigError, SourceUnavailableError
from ground.logs import redact
from store.database import utcnow


class CircuitState(StrEnum):
    """Where a circuit breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(SourceUnavailableError):
    """The circuit is open: the call was not made, to give the failing system a rest."""


@dataclass(frozen=True)
class BreakerStatus:
    """A snapshot of a circuit breaker, for /ready and the admin status.

    failed_calls counts every call that failed for a transient reason since start, retries included: the
    failures as the adapter met them, whether or not its retries hid them from the loop above.
    """

    name: str
    state: CircuitState
    consecutive_failures: int
    failure_threshold: int
    trips: int
    failed_calls: int
    opened_at: datetime | None
    retry_in_s: float | None
    last_error: str | None
    last_failure_at: datetime | None
    last_success_at: datetime | None

    @property
    def available(self) -> bool:
        """Whether calls go through (closed, or half open for a trial)."""
        return self.state is not CircuitState.OPEN

    def as_dict(self) -> dict[str, object]:
        """The JSON form of the admin status."""
        return {
            "name": self.name,
            "state": self.state.value,
            "available": self.available,
            "consecutive_failures": self.consecutive_failures,
            "failure_threshold": self.failure_threshold,
            "trips": self.trips,
            "failed_calls": self.failed_calls,
            "opened_at": self.opened_at.isoformat() if self.opened_at else None,
            "retry_in_s": self.retry_in_s,
            "last_error": self.last_error,
            "last_failure_at": self.last_failure_at.isoformat() if self.last_failure_at else None,
            "last_success_at": self.last_success_at.isoformat() if self.last_success_at else None,
        }


class CircuitBreaker:
    """Counts failures of calls to one system; thread-safe.

    clock measures the open period (monotonic seconds); now stamps the times shown to operators.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        if failure_threshold < 1:
            raise ConfigError(f"circuit breaker {name}: failure_threshold must be at least 1")
        if reset_timeout_s < 0:
            raise ConfigError(f"circuit breaker {name}: reset_timeout_s must not be negative")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._trips = 0
        self._failed_calls = 0
        self._opened_mono = 0.0
        self._opened_at: datetime | None = None
        self._trial_running = False
        self._last_error: str | None = None
        self._last_failure_at: datetime | None = None
        self._last_success_at: datetime | None = None

    def before_call(self) -> None:
        """Let a call through, or raise CircuitOpenError while the circuit is open."""
        with self._lock:
            if self._state is CircuitState.CLOSED:
                return
            if self._state is CircuitState.OPEN:
                waited = self._clock() - self._opened_mono
                if waited < self.reset_timeout_s:
                    raise CircuitOpenError(
                        f"{self.name}: circuit open after {self._failures} failures in a row, next try in "
                        f"{self.reset_timeout_s - waited:.1f} s; last error: {self._last_error}"
                    )
                self._state = CircuitState.HALF_OPEN
            if self._trial_running:
                raise CircuitOpenError(f"{self.name}: circuit half open, a trial call is under way")
            self._trial_running = True

    def succeeded(self) -> None:
        """Record a call the system answered."""
        with self._lock:
            self._state = CircuitState.CLOSED
            self._failures = 0
            self._trial_running = False
            self._opened_at = None
            self._last_success_at = self._now()

    def failed(self, error: BaseException) -> None:
        """Record a call that failed for a reason worth a retry (unavailable, unreadable answer)."""
        with self._lock:
            self._failures += 1
            self._failed_calls += 1
            self._last_error = redact(str(error))  # shown to operators, who may lack pii:read
            self._last_failure_at = self._now()
            trial = self._state is CircuitState.HALF_OPEN
            self._trial_running = False
            if trial or (self._state is CircuitState.CLOSED and self._failures >= self.failure_threshold):
                self._state = CircuitState.OPEN
                self._opened_mono = self._clock()
                self._opened_at = self._now()
                self._trips += 1

    def status(self) -> BreakerStatus:
        """A snapshot of the breaker."""
        with self._lock:
            retry_in = None
            if self._state is CircuitState.OPEN:
                retry_in = max(0.0, round(self.reset_timeout_s - (self._clock() - self._opened_mono), 3))
            return BreakerStatus(
                name=self.name,
                state=self._state,
                consecutive_failures=self._failures,
                failure_threshold=self.failure_threshold,
                trips=self._trips,
                failed_calls=self._failed_calls,
                opened_at=self._opened_at,
                retry_in_s=retry_in,
                last_error=self._last_error,
                last_failure_at=self._last_failure_at,
                last_success_at=self._last_success_at,
            )
