"""A history plan: lives accepted before the day, released in listing order, each change once."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from scenario.history import plan_history
from scenario.model import History
from simulators.marketing.process import OFFICE_OPENS
from simulators.marketing.seed import generate_rows
from simulators.marketing.world import LEGACY_TIME_FORMAT, ApplicationRow
from workflow.workdays import WorkingCalendar

CALENDAR = WorkingCalendar()
DAY_STARTS = datetime(2026, 11, 26, 8, 30)
HISTORY = History(days=90, applications=120, process="manual")


def _rows() -> list[ApplicationRow]:
    _, rows = generate_rows(4, 80, 120)
    return rows


def test_releases_come_in_listing_order_before_the_day_and_each_application_appears_first() -> None:
    plan = plan_history(HISTORY, _rows(), DAY_STARTS, 4, CALENDAR)
    keys = [(release.at, release.app_no) for release in plan.releases]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert all(release.at < DAY_STARTS for release in plan.releases)
    first = DAY_STARTS.date() - timedelta(days=90)
    for app_no, group in itertools.groupby(
        sorted(plan.releases, key=lambda r: (r.app_no, r.at)), key=lambda r: r.app_no
    ):
        releases = list(group)
        appearance, *changes = releases
        assert appearance.change is None and appearance.status == "01"
        assert appearance.row["HANDLE_TIME"] == appearance.at.strftime(LEGACY_TIME_FORMAT)
        assert first <= appearance.at.date() < DAY_STARTS.date()
        assert CALENDAR.is_workday(appearance.at.date()) and appearance.at.time() >= OFFICE_OPENS
        assert all(release.change is not None for release in changes), app_no


def test_every_change_of_a_life_before_the_day_is_released_and_none_after() -> None:
    plan = plan_history(HISTORY, _rows(), DAY_STARTS, 4, CALENDAR)
    released = {(release.app_no, release.at, release.status) for release in plan.releases if release.change}
    drawn = {
        (life.app_no, change.at, change.status)
        for life in plan.lives
        for change in life.changes
        if change.at < DAY_STARTS
    }
    assert released == drawn
    later = [change for life in plan.lives for change in life.changes if change.at >= DAY_STARTS]
    assert later  # some lives go on after the day starts: they stay open in the marketing system
    assert len(plan.lives) == 120


def test_the_same_seed_plans_the_same_history() -> None:
    assert plan_history(HISTORY, _rows(), DAY_STARTS, 4, CALENDAR) == plan_history(
        HISTORY, _rows(), DAY_STARTS, 4, CALENDAR
    )
    other = plan_history(HISTORY, _rows(), DAY_STARTS, 5, CALENDAR)
    assert other != plan_history(HISTORY, _rows(), DAY_STARTS, 4, CALENDAR)
