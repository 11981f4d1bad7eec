"""The hub's one source of "now": every module asks it, and a test or a scenario moves it for all of them.

Code that needs the time calls `now()` (or takes a `Callable[[], datetime]` defaulting to it), never
`datetime.now()`. `frozen_at` and `use` swap the source for everything at once, so a test that fixes the
date cannot leave one corner of the hub on the wall clock. Durations and timeouts keep using
`time.monotonic()`: they measure intervals, not dates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from time import monotonic

Clock = Callable[[], datetime]


def system_now() -> datetime:
    """The wall clock, timezone-aware UTC."""
    return datetime.now(UTC)


_source: Clock = system_now


def now() -> datetime:
    """The current time, timezone-aware, from whichever source is installed."""
    return _source()


def install(source: Clock) -> Clock:
    """Make `source` the hub's clock; returns the one it replaces, so the caller can put it back."""
    global _source
    previous, _source = _source, source
    return previous


@contextmanager
def use(source: Clock) -> Iterator[None]:
    """Run a block with `source` as the hub's clock."""
    previous = install(source)
    try:
        yield
    finally:
        install(previous)


class FixedClock:
    """A clock that stands still until told to move: `clock.now += timedelta(...)` or `advance(...)`."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a fixed clock needs a timezone-aware time")
        self.now = at

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> datetime:
        self.now += by
        return self.now


class RunningClock:
    """A clock set to `at` when made that then runs at wall-clock speed: a simulated day's "now"."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a running clock needs a timezone-aware start")
        self._at = at
        self._started = monotonic()

    def __call__(self) -> datetime:
        return self._at + timedelta(seconds=monotonic() - self._started)


@contextmanager
def frozen_at(at: datetime) -> Iterator[FixedClock]:
    """Install a fixed clock at `at` for the block and hand it over so the block can move it."""
    clock = FixedClock(at)
    with use(clock):
        yield clock
