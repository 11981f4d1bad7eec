"""The sliding-window rate limiter: hits within any window, refused hits not counted, bounded memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ground import clock
from ground.clock import FixedClock
from ground.limits import RateLimiter

START = datetime(2026, 6, 1, tzinfo=UTC)


def test_a_key_gets_its_limit_in_any_window_and_is_told_how_long_to_wait() -> None:
    fixed = FixedClock(START)
    limiter = RateLimiter(2, 60)
    with clock.use(fixed):
        assert limiter.hit("a") is None
        fixed.advance(timedelta(seconds=20))
        assert limiter.hit("a") is None
        fixed.advance(timedelta(seconds=10))
        # Hits at 0 s and 20 s: the first leaves the 60 s window at 60 s, 30 s from now.
        assert limiter.hit("a") == 30
        assert limiter.hit("b") is None  # another key has its own count
        fixed.advance(timedelta(seconds=30))
        assert limiter.hit("a") is None
        # Refused hits were not counted: the hits in the window are at 20 s and 60 s now.
        assert limiter.hit("a") == 20


def test_past_max_keys_the_least_recently_hit_key_is_forgotten() -> None:
    limiter = RateLimiter(1, 60, max_keys=2)
    with clock.use(FixedClock(START)):
        assert limiter.hit("a") is None
        assert limiter.hit("b") is None
        assert limiter.hit("a") is not None  # a is the most recent now
        assert limiter.hit("c") is None  # b, the least recent, is forgotten
        assert limiter.hit("b") is None
        assert limiter.hit("a") is None  # and then a, pushed out by b
