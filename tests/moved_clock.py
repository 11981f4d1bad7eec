"""Pytest plugin for the unit run under libfaketime with the clock moved ahead (`make unit-moved-clock`).

The wall clock is moved; the monotonic clock is left real (FAKETIME_DONT_FAKE_MONOTONIC), because timed
waits on locks reach the kernel past libfaketime and would wait out the whole offset. libfaketime 0.9.10
still shifts the absolute deadline CPython's `time.sleep` hands to clock_nanosleep, even on the monotonic
clock it leaves alone, and the kernel refuses it (EINVAL). So this run sleeps with a relative timeout
instead, in the test process and in every Python process it starts; the dates every test sees stay moved.
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path

# The processes the tests start inherit libfaketime and would fail their first sleep: they load the same
# relative sleep at start-up, as sitecustomize from this folder.
_SITE = Path(__file__).with_name("moved_clock_site")
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_SITE), os.environ.get("PYTHONPATH")]))
runpy.run_path(str(_SITE / "sitecustomize.py"))
