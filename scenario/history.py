"""A scenario's history: the drawn lives of applications accepted before the scenario day, in release order.

Each application is accepted on a working day of the `days` before the scenario day and lives by the
scenario's process (simulators/marketing/process.py). Every change that happens before the day starts is a
release: the application's appearance in the marketing system, then each status change at its own legacy
time. Releases are ordered by (time, APP_NO), the order of the marketing listing, so each one is listed
after everything released before it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from scenario.model import History
from simulators.marketing.process import PROCESS_FILE, Change, Life, arrival_times, draw_life, load_process
from simulators.marketing.world import LEGACY_TIME_FORMAT, ApplicationRow, status_flow
from workflow.workdays import WorkingCalendar


@dataclass(frozen=True)
class Release:
    """One change to make in the marketing simulator: an application appears (change None) or moves."""

    at: datetime
    row: ApplicationRow
    change: Change | None

    @property
    def app_no(self) -> str:
        """The application released."""
        return self.row["APP_NO"]

    @property
    def status(self) -> str:
        """The STATUS_CODE the application has after the release."""
        return self.change.status if self.change is not None else self.row["STATUS_CODE"]


@dataclass(frozen=True)
class HistoryPlan:
    """The lives drawn, and the releases before the day, oldest first."""

    lives: tuple[Life, ...]
    releases: tuple[Release, ...]


def _accepted(row: ApplicationRow, at: datetime) -> ApplicationRow:
    """The application as it is first entered: handled and changed at `at`, at the first step of its flow."""
    entered = ApplicationRow(**row)
    stamp = at.strftime(LEGACY_TIME_FORMAT)
    entered["HANDLE_TIME"] = stamp
    entered["UPDATE_TIME"] = stamp
    entered["STATUS_CODE"] = status_flow(row)[0]
    entered["RETURN_REASON_CODE"] = None
    return entered


def plan_history(
    history: History,
    rows: Sequence[ApplicationRow],
    day_starts: datetime,
    seed: int,
    calendar: WorkingCalendar,
) -> HistoryPlan:
    """The lives of rows accepted over the history's days before day_starts (a naive local time)."""
    process = load_process(history.process, history.process_file or PROCESS_FILE)
    last_day = day_starts.date() - timedelta(days=1)
    first_day = day_starts.date() - timedelta(days=history.days)
    times = arrival_times(len(rows), first_day, last_day, random.Random(f"{seed}:history"), calendar)
    lives: list[Life] = []
    releases: list[Release] = []
    for row, accepted_at in zip(rows, times, strict=True):
        entered = _accepted(row, accepted_at)
        life = draw_life(process, entered, accepted_at, seed, calendar)
        lives.append(life)
        releases.append(Release(accepted_at, entered, None))
        releases.extend(
            Release(change.at, entered, change) for change in life.changes if change.at < day_starts
        )
    releases.sort(key=lambda release: (release.at, release.app_no))
    return HistoryPlan(tuple(lives), tuple(releases))
