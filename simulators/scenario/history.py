"""A scenario's history: the drawn lives of applications accepted before the scenario day, in release order.

Each application is accepted on a working day of the `days` before the scenario day and lives by the
scenario's process (simulators/marketing/process.py). Every change that happens before the day starts is a
release: the application's appearance in the marketing system, then each status change at its own legacy
time. Releases are ordered by (time, APP_NO), the order of the marketing listing, so each one is listed
after everything released before it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from simulators.marketing.process import (
    CAUSE_CODES,
    PROCESS_FILE,
    Change,
    Life,
    arrival_times,
    draw_life,
    load_process,
)
from simulators.marketing.world import LEGACY_TIME_FORMAT, ApplicationRow, status_flow
from simulators.scenario.model import History
from workflow.workdays import WorkingCalendar


@dataclass(frozen=True)
class Release:
    """One change to make in the marketing simulator: an application appears, moves, or has its data edited.

    change None and edit None: the application appears; change: it moves to another status; edit: fields of
    the record are rewritten (a mistyped survey record, or its correction) without a move.
    """

    at: datetime
    row: ApplicationRow
    change: Change | None
    edit: Mapping[str, object] | None = None

    @property
    def app_no(self) -> str:
        """The application released."""
        return self.row["APP_NO"]

    @property
    def status(self) -> str:
        """The STATUS_CODE the application has after the release."""
        return self.change.status if self.change is not None else self.row["STATUS_CODE"]

    @property
    def mistyped(self) -> bool:
        """Whether this release enters a survey record wrongly."""
        return self.edit is not None and self.edit != _site(self.row)


@dataclass(frozen=True)
class HistoryPlan:
    """The lives drawn, and the releases before the day, oldest first.

    corrected: for each application with a mistyped survey record, the releases that replace its later ones
    when staff act on the hub's finding: the record put right half an hour after it was entered, then the
    life in which the error never sends the application back. Empty unless the history acts on findings.
    """

    lives: tuple[Life, ...]
    releases: tuple[Release, ...]
    corrected: Mapping[str, tuple[Release, ...]] = field(default_factory=dict)


# A slip in the first decimal of the longitude: about 9 km east, far beyond any low-voltage supply radius.
MISTYPED_LONGITUDE_DEGREES = 0.1
# Staff who watch the hub's findings put a flagged record right within half an hour.
CORRECTED_AFTER = timedelta(minutes=30)
# A survey record is keyed in shortly before the survey step is closed.
_KEYED_BEFORE = timedelta(minutes=10)


def _site(row: ApplicationRow) -> dict[str, object]:
    return {"LONGITUDE": row["LONGITUDE"], "LATITUDE": row["LATITUDE"]}


def _mistyped_site(row: ApplicationRow) -> dict[str, object]:
    longitude = row["LONGITUDE"]
    assert longitude is not None, "only a located site can be mistyped"
    return {"LONGITUDE": round(longitude + MISTYPED_LONGITUDE_DEGREES, 6), "LATITUDE": row["LATITUDE"]}


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
    """The lives of rows accepted over the history's days before day_starts (a naive local time).

    A survey entry error of a located site is a mistyped longitude keyed in just before the survey step is
    closed. Left alone, it is put right when the error is found and the application sent back; with
    act_on_findings the plan also holds the releases that replace the rest of the life once it is corrected.
    """
    process = load_process(history.process, history.process_file or PROCESS_FILE)
    last_day = day_starts.date() - timedelta(days=1)
    first_day = day_starts.date() - timedelta(days=history.days)
    times = arrival_times(len(rows), first_day, last_day, random.Random(f"{seed}:history"), calendar)
    lives: list[Life] = []
    releases: list[Release] = []
    corrected: dict[str, tuple[Release, ...]] = {}
    for row, accepted_at in zip(rows, times, strict=True):
        entered = _accepted(row, accepted_at)
        life = draw_life(process, entered, accepted_at, seed, calendar)
        lives.append(life)
        releases.append(Release(accepted_at, entered, None))
        located = entered["LONGITUDE"] is not None and entered["LATITUDE"] is not None
        if life.entry_error_at is None or not located:
            releases.extend(_moves(entered, life.changes, day_starts))
            continue
        keyed_at = max(life.entry_error_at - _KEYED_BEFORE, _before(life, life.entry_error_at) + _SECOND)
        releases.append(Release(keyed_at, entered, None, _mistyped_site(entered)))
        releases.extend(_moves(entered, life.changes, day_starts))
        # Found later, the error sends the application back and the survey is put right; a life withdrawn
        # before that keeps the wrong record.
        error_found = next(
            (change for change in life.changes if change.at > life.entry_error_at and change.cause == _FOUND),
            None,
        )
        if error_found is not None:
            releases.append(Release(_soon_after(life.changes, error_found.at), entered, None, _site(entered)))
        if history.act_on_findings and keyed_at < day_starts:
            caught = draw_life(process, entered, accepted_at, seed, calendar, entry_error_caught=True)
            fixed_at = _soon_after(caught.changes, keyed_at, CORRECTED_AFTER)
            corrected[life.app_no] = tuple(
                sorted(
                    [
                        Release(fixed_at, entered, None, _site(entered)),
                        *_moves(entered, [c for c in caught.changes if c.at > keyed_at], day_starts),
                    ],
                    key=lambda release: release.at,
                )
            )
    releases = [release for release in releases if release.at < day_starts]
    releases.sort(key=lambda release: (release.at, release.app_no))
    return HistoryPlan(tuple(lives), tuple(releases), corrected)


_SECOND = timedelta(seconds=1)
_FOUND = CAUSE_CODES["information_error"]


def _moves(row: ApplicationRow, changes: Sequence[Change], day_starts: datetime) -> list[Release]:
    return [Release(change.at, row, change) for change in changes if change.at < day_starts]


def _before(life: Life, moment: datetime) -> datetime:
    """The last change of the life before moment, or its acceptance."""
    return max((change.at for change in life.changes if change.at < moment), default=life.accepted_at)


def _soon_after(changes: Sequence[Change], moment: datetime, wanted: timedelta = _KEYED_BEFORE) -> datetime:
    """wanted after moment, or halfway to the life's next change when that comes sooner."""
    following = min((change.at for change in changes if change.at > moment), default=None)
    if following is None or following - moment > 2 * wanted:
        return moment + wanted
    return (moment + (following - moment) / 2).replace(microsecond=0)
