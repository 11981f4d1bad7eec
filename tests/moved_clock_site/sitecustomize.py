"""Relative sleeps for every Python process of the moved-clock run (tests/moved_clock.py says why).

The run puts this folder on PYTHONPATH, so the processes the tests start (hub instances, spawned
multiprocessing workers) sleep the same way as the test process.
"""

from __future__ import annotations

import select
import time
from typing import SupportsIndex


def _relative_sleep(seconds: float | SupportsIndex) -> None:
    length = float(seconds)
    if length < 0:
        raise ValueError("sleep length must be non-negative")
    select.select([], [], [], length)


time.sleep = _relative_sleep
