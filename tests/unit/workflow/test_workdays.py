"""Working days on the Chinese calendar: 2026 Spring Festival and National Day, adjusted weekend workdays,
and provisional counts into 2027, whose adjusted workdays are not published yet."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from importlib.metadata import version

import pytest

from workflow.cases import calendar_signature
from workflow.workdays import SHANGHAI, Deadline, WorkingCalendar, published_years_of_package

# The calendar as of November 2026: arrangements published up to 2026 (State Council notice of Nov 2025).
AS_OF_NOV_2026 = range(2001, 2027)


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return WorkingCalendar(published_years=AS_OF_NOV_2026)


def _local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def test_the_installed_package_carries_the_2026_arrangement() -> None:
    assert 2026 in published_years_of_package()
    assert 2025 in published_years_of_package()


def test_spring_festival_2026_days_off_and_adjusted_weekend_workdays(calendar: WorkingCalendar) -> None:
    # 春节: 15-23 February off; Saturday 14 and Saturday 28 February are workdays (国办发明电〔2025〕7号).
    assert calendar.is_workday(date(2026, 2, 13))  # Friday
    assert calendar.is_workday(date(2026, 2, 14))  # Saturday, adjusted workday
    for day in range(15, 24):
        assert not calendar.is_workday(date(2026, 2, day)), f"2026-02-{day} is a day off"
    assert calendar.is_workday(date(2026, 2, 24))  # Tuesday, back to work
    assert calendar.is_workday(date(2026, 2, 28))  # Saturday, adjusted workday
    assert not calendar.is_workday(date(2026, 3, 1))  # an ordinary Sunday


def test_national_day_2026_days_off_and_adjusted_weekend_workdays(calendar: WorkingCalendar) -> None:
    # 国庆节: 1-7 October off, Sunday 20 September and Saturday 10 October workdays; 中秋 25 September off.
    assert calendar.is_workday(date(2026, 9, 20))  # Sunday, adjusted workday
    assert not calendar.is_workday(date(2026, 9, 25))  # Friday, Mid-Autumn Festival
    for day in range(1, 8):
        assert not calendar.is_workday(date(2026, 10, day)), f"2026-10-0{day} is a day off"
    assert calendar.is_workday(date(2026, 10, 8))
    assert calendar.is_workday(date(2026, 10, 10))  # Saturday, adjusted workday
    assert not calendar.is_workday(date(2026, 10, 11))


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (date(2026, 2, 12), 1, date(2026, 2, 13)),
        (date(2026, 2, 12), 2, date(2026, 2, 14)),  # the adjusted Saturday counts
        (date(2026, 2, 12), 3, date(2026, 2, 24)),  # then the whole festival is skipped
        (date(2026, 2, 13), 6, date(2026, 2, 28)),  # ends on the second adjusted Saturday
        (date(2026, 2, 16), 1, date(2026, 2, 24)),  # entered on a holiday
        (date(2026, 9, 18), 1, date(2026, 9, 20)),  # Sunday 20 September is a workday
        (date(2026, 9, 24), 1, date(2026, 9, 28)),  # Mid-Autumn Friday and the weekend skipped
        (date(2026, 9, 30), 1, date(2026, 10, 8)),  # Golden Week skipped
        (date(2026, 9, 30), 3, date(2026, 10, 10)),  # ends on the adjusted Saturday
        (date(2026, 11, 20), 15, date(2026, 12, 11)),  # an ordinary stretch: three full weeks
    ],
)
def test_adding_working_days(calendar: WorkingCalendar, start: date, days: int, due: date) -> None:
    assert calendar.add_working_days(start, days) == Deadline(due, provisional=False)


def test_a_deadline_in_2027_is_provisional_and_computed_from_the_rules(calendar: WorkingCalendar) -> None:
    # Mid-December 2026 + 22 working days: 16-31 December give 12, 1 January 2027 is New Year's Day
    # (a holiday by rule), then 4-8 and 11-15 January give the other 10.
    deadline = calendar.add_working_days(date(2026, 12, 15), 22)
    assert deadline == Deadline(date(2027, 1, 15), provisional=True)


def test_a_provisional_deadline_is_final_once_the_year_is_published() -> None:
    later = WorkingCalendar(published_years=[*AS_OF_NOV_2026, 2027])
    assert later.add_working_days(date(2026, 12, 15), 22).provisional is False


def test_a_deadline_within_a_published_year_is_not_provisional(calendar: WorkingCalendar) -> None:
    assert calendar.add_working_days(date(2026, 12, 1), 5) == Deadline(date(2026, 12, 8), provisional=False)


def test_years_beyond_every_calendar_count_weekdays_and_never_crash(calendar: WorkingCalendar) -> None:
    deadline = calendar.add_working_days(date(2150, 1, 1), 10)  # Thursday 1 January 2150
    assert deadline == Deadline(date(2150, 1, 15), provisional=True)


def test_a_limit_counts_at_least_one_day(calendar: WorkingCalendar) -> None:
    with pytest.raises(ValueError, match="at least one working day"):
        calendar.add_working_days(date(2026, 12, 1), 0)


def test_days_left_and_days_past(calendar: WorkingCalendar) -> None:
    assert calendar.days_left(date(2026, 2, 12), date(2026, 2, 24)) == 3  # 13, 14 and 24 February
    assert calendar.days_left(date(2026, 2, 24), date(2026, 2, 24)) == 0
    assert calendar.days_left(date(2026, 2, 26), date(2026, 2, 24)) == -2
    assert calendar.days_left(date(2026, 2, 21), date(2026, 2, 14)) == 0  # past due, only holidays since


def test_subtracting_working_days_skips_the_festival(calendar: WorkingCalendar) -> None:
    assert calendar.subtract_working_days(date(2026, 2, 24), 1) == date(2026, 2, 14)
    assert calendar.subtract_working_days(date(2026, 2, 24), 0) == date(2026, 2, 24)


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        ("2026-11-23 10:00", "2026-11-25 16:00", 14 / 24 + 1 + 16 / 24),
        ("2026-11-27 18:00", "2026-11-30 06:00", 6 / 24 + 6 / 24),  # the weekend does not count
        ("2026-02-13 12:00", "2026-02-24 12:00", 0.5 + 1 + 0.5),  # only the adjusted Saturday in between
        ("2026-11-23 10:00", "2026-11-23 09:00", 0.0),
    ],
)
def test_working_time_between_moments(calendar: WorkingCalendar, start: str, end: str, days: float) -> None:
    assert calendar.working_time(_local(start), _local(end)) == pytest.approx(days)


def test_working_time_of_many_days_matches_the_day_count(calendar: WorkingCalendar) -> None:
    start = _local("2026-01-05 00:00")
    end = start + timedelta(days=365)
    assert calendar.working_time(start, end) == pytest.approx(
        calendar.working_days_after(date(2026, 1, 4), date(2027, 1, 4))
    )


def test_a_deadline_late_in_december_waits_for_next_years_notice(calendar: WorkingCalendar) -> None:
    # 2026-12-14 is before the configured 15th: final. 2026-12-15 on: 2027's notice could still move a day.
    assert calendar.add_working_days(date(2026, 12, 10), 2) == Deadline(date(2026, 12, 14), provisional=False)
    assert calendar.add_working_days(date(2026, 12, 10), 3) == Deadline(date(2026, 12, 15), provisional=True)
    assert calendar.add_working_days(date(2026, 12, 21), 4) == Deadline(date(2026, 12, 25), provisional=True)


def test_late_december_is_final_once_the_next_year_is_published() -> None:
    later = WorkingCalendar(published_years=[*AS_OF_NOV_2026, 2027])
    assert later.add_working_days(date(2026, 12, 21), 4) == Deadline(date(2026, 12, 25), provisional=False)


def test_the_late_december_day_is_configurable() -> None:
    strict = WorkingCalendar(published_years=AS_OF_NOV_2026, late_december_from=28)
    assert strict.add_working_days(date(2026, 12, 21), 4).provisional is False
    assert strict.add_working_days(date(2026, 12, 21), 5).provisional is True
    with pytest.raises(ValueError, match="a day of December"):
        WorkingCalendar(late_december_from=32)


def test_the_calendar_signature_names_the_package_version_and_the_late_december_day() -> None:
    signature = calendar_signature(WorkingCalendar(published_years=AS_OF_NOV_2026, late_december_from=20))
    assert signature == f"2001-2026/26@{version('holidays')}/dec20"
