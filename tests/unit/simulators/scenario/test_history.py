"""A history plan: lives accepted before the day, released in listing order, each change once."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from simulators.marketing.process import CAUSE_CODES, OFFICE_OPENS, draw_life, load_process
from simulators.marketing.seed import generate_rows
from simulators.marketing.world import LEGACY_TIME_FORMAT, ApplicationRow
from simulators.scenario.history import CORRECTED_AFTER, HistoryPlan, Release, plan_history
from simulators.scenario.model import History
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
        assert all(release.change is not None or release.edit is not None for release in changes), app_no


def test_every_change_of_a_life_before_the_day_is_released_and_none_after() -> None:
    plan = plan_history(HISTORY, _rows(), DAY_STARTS, 4, CALENDAR)
    released = {(release.app_no, release.at, release.status) for release in plan.releases if release.change}
    assert all(
        release.change or release.edit or release.row["STATUS_CODE"] == "01" for release in plan.releases
    )
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


def _mistyped(plan: HistoryPlan, app_no: str) -> Release:
    (release,) = [item for item in plan.releases if item.app_no == app_no and item.mistyped]
    return release


def test_an_entry_error_is_a_mistyped_site_put_right_only_after_it_sends_the_application_back() -> None:
    rows = {row["APP_NO"]: row for row in _rows()}
    plan = plan_history(HISTORY, list(rows.values()), DAY_STARTS, 4, CALENDAR)
    erred = [
        life
        for life in plan.lives
        if life.entry_error_at is not None
        and life.entry_error_at < DAY_STARTS
        and rows[life.app_no]["LONGITUDE"] is not None
    ]
    assert erred, "the manual process mistypes 15% of surveys"
    for life in erred:
        row = rows[life.app_no]
        mistyped = _mistyped(plan, life.app_no)
        assert mistyped.at < life.entry_error_at
        # About 9 km east: a slip in the first decimal of the longitude; the latitude is kept.
        assert mistyped.edit == {
            "LONGITUDE": pytest.approx(row["LONGITUDE"] + 0.1),
            "LATITUDE": row["LATITUDE"],
        }
        fixes = [
            item for item in plan.releases if item.app_no == life.app_no and item.edit and not item.mistyped
        ]
        sent_back = [
            c for c in life.changes if c.cause == CAUSE_CODES["information_error"] and c.at < DAY_STARTS
        ]
        if not sent_back:
            assert fixes == []  # the wrong record stands until the error is found
            continue
        (fix,) = fixes
        assert fix.edit == {"LONGITUDE": row["LONGITUDE"], "LATITUDE": row["LATITUDE"]}
        assert sent_back[0].at < fix.at
    assert plan.corrected == {}  # nobody acts on the hub's findings in this history


def test_acting_on_findings_plans_the_corrected_rest_of_each_mistyped_life() -> None:
    rows = _rows()
    history = History(days=90, applications=120, process="manual", act_on_findings=True)
    plan = plan_history(history, rows, DAY_STARTS, 4, CALENDAR)
    process = load_process("manual")
    assert plan.corrected
    for app_no, (fix, *rest) in plan.corrected.items():
        mistyped = _mistyped(plan, app_no)
        assert fix.edit is not None and not fix.mistyped
        assert timedelta(0) < fix.at - mistyped.at <= CORRECTED_AFTER
        life = next(life for life in plan.lives if life.app_no == app_no)
        caught = draw_life(process, mistyped.row, life.accepted_at, 4, CALENDAR, entry_error_caught=True)
        assert [release.change for release in rest] == [
            change for change in caught.changes if mistyped.at < change.at < DAY_STARTS
        ]
