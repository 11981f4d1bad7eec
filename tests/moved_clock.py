"""Pytest plugin for the unit run under libfaketime with the clock moved ahead (`make unit-moved-clock`).

The wall clock is moved; the monotonic clock is left real (FAKETIME_DONT_FAKE_MONOTONIC), because timed
waits on locks reach the kernel past libfaketime and would wait out the whole offset. libfaketime 0.9.10
still shifts the absolute deadline CPython's `time.sleep` hands to clock_nanosleep, even on the monotonic
clock it leaves alone, and the kernel refuses it (EINVAL). So this run sleeps with a relative timeout
instead; the dates every test sees stay moved.
"""

from __future__ import annotations

import select
import time


def _relative_sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    select.select([], [], [], seconds)


time.sleep = _relative_sleep
