"""Tests of the circuit breaker: it opens after failures in a row, rests, tries once, and closes again."""

from __future__ import annotations

import pytest

from adapters.marketing.breaker import CircuitBreaker, CircuitOpenError, CircuitState
from ground.errors import ConfigError, SourceUnavailableError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker("marketing", failure_threshold=3, reset_timeout_s=30, clock=clock)


def _fail(breaker: CircuitBreaker, times: int) -> None:
    for attempt in range(times):
        breaker.before_call()
        breaker.failed(SourceUnavailableError(f"HTTP 503 #{attempt}"))


def test_closed_breaker_lets_calls_through_and_counts_failures_in_a_row(breaker: CircuitBreaker) -> None:
    _fail(breaker, 2)
    breaker.before_call()
    breaker.succeeded()
    _fail(breaker, 2)
    status = breaker.status()
    assert (status.state, status.consecutive_failures, status.available) == (CircuitState.CLOSED, 2, True)


def test_it_opens_after_the_threshold_and_refuses_without_calling(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    _fail(breaker, 3)
    status = breaker.status()
    assert (status.state, status.trips, status.available) == (CircuitState.OPEN, 1, False)
    assert status.last_error == "HTTP 503 #2" and status.retry_in_s == 30
    clock.now += 10
    with pytest.raises(
        CircuitOpenError, match=r"circuit open after 3 failures in a row, next try in 20\.0 s"
    ):
        breaker.before_call()
    assert isinstance(CircuitOpenError("x"), SourceUnavailableError)


def test_after_the_rest_one_trial_goes_through_and_success_closes(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    _fail(breaker, 3)
    clock.now += 30
    breaker.before_call()
    assert breaker.status().state is CircuitState.HALF_OPEN
    with pytest.raises(CircuitOpenError, match="a trial call is under way"):
        breaker.before_call()
    breaker.succeeded()
    status = breaker.status()
    assert (status.state, status.consecutive_failures, status.opened_at) == (CircuitState.CLOSED, 0, None)
    assert status.last_success_at is not None


def test_a_failed_trial_opens_the_circuit_again(breaker: CircuitBreaker, clock: Clock) -> None:
    _fail(breaker, 3)
    clock.now += 31
    _fail(breaker, 1)
    status = breaker.status()
    assert (status.state, status.trips) == (CircuitState.OPEN, 2)
    with pytest.raises(CircuitOpenError):
        breaker.before_call()


def test_status_serialises_for_operators(breaker: CircuitBreaker) -> None:
    _fail(breaker, 3)
    view = breaker.status().as_dict()
    assert view["state"] == "open" and view["available"] is False and view["failure_threshold"] == 3
    assert isinstance(view["opened_at"], str)


@pytest.mark.parametrize(("threshold", "reset"), [(0, 1.0), (1, -1.0)])
def test_nonsense_settings_are_config_errors(threshold: int, reset: float) -> None:
    with pytest.raises(ConfigError):
        CircuitBreaker("marketing", failure_threshold=threshold, reset_timeout_s=reset)
