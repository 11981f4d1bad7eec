"""Rate limits: a sliding-window limiter for lookups that must not be called without bound, and the error a
refused caller gets (the API answers it 429 with Retry-After)."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque

from ground import clock


class TooManyError(Exception):
    """A rate limit was reached; retry_after_s says how long to wait (the API answers 429, Retry-After)."""

    def __init__(self, what: str, retry_after_s: int) -> None:
        super().__init__(f"too many {what}: try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class RateLimiter:
    """At most `limit` hits per key within any `window_s` seconds of the hub clock; safe across threads.

    A refused hit is not counted, so a caller who waits out the window gets in again. A key is kept while
    it has hits in the window, and at most max_keys keys are: past that the least recently hit one is
    forgotten, so a flood of distinct keys cannot grow the process's memory without bound.
    """

    def __init__(self, limit: int, window_s: float, *, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str) -> int | None:
        """Count a hit for the key and answer None; or, over the limit, the whole seconds until it may hit."""
        now = clock.now().timestamp()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            self._hits.move_to_end(key)
            if len(hits) >= self.limit:
                return max(1, math.ceil(hits[0] + self.window_s - now))
            hits.append(now)
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
            return None
