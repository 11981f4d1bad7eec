"""Chinese working days (工作日) with adjusted workdays (调休), and provisional counts in unpublished years.

The calendar comes from the `holidays` package (holidays.China): statutory holidays, days off moved by the
State Council's yearly arrangement, and the weekend days that become workdays (weekend_workdays). The State
Council publishes a year's arrangement around November-December of the year before, and the package ships
it some weeks later. Until then the package still knows that year's holidays by rule (lunar dates, in-lieu
days) but none of its adjusted workdays.

A year counts as published when the package carries its official arrangement: the years listed in
`ChinaStaticHolidays.special_public_holidays`, the table the package fills from each year's State Council
notice. Every other year is counted from the rules (weekends and rule-based holidays), and whatever is
computed from such days is marked provisional. So is a span that ends late in December while the next
year is unpublished: the next year's notice can still turn a December weekend into an adjusted workday, so
from `late_december_from` on such a day is not final either. Nothing is stored as final: deadlines are
recomputed from the stage entry time with the calendar in force, so they become final once a package update
knows the year.
Dates are local dates in Asia/Shanghai.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
from holidays.countries.china import ChinaStaticHolidays

SHANGHAI = ZoneInfo("Asia/Shanghai")
_ONE_DAY = timedelta(days=1)
_SECONDS_PER_DAY = 86400.0
# From this day of December on, a day's status waits for the next year's notice (workflow/stages.yaml
# calendar.late_december_from overrides it).
LATE_DECEMBER_FROM = 15


def published_years_of_package() -> frozenset[int]:
    """Years whose official holiday arrangement (with adjusted workdays) the installed package carries."""
    return frozenset(int(year) for year in ChinaStaticHolidays.special_public_holidays)


def local_date(moment: datetime) -> date:
    """The Asia/Shanghai calendar date of an aware datetime."""
    return moment.astimezone(SHANGHAI).date()


@dataclass(frozen=True)
class Deadline:
    """A due date (the last working day allowed) and whether unpublished calendar days were counted."""

    due: date
    provisional: bool


class WorkingCalendar:
    """Working-day arithmetic on the Chinese calendar.

    published_years: years whose arrangement is official; by default those the installed package carries.
    late_december_from: the first December day whose status waits for the next year's notice.
    """

    def __init__(
        self, published_years: Iterable[int] | None = None, *, late_december_from: int = LATE_DECEMBER_FROM
    ) -> None:
        if not 1 <= late_december_from <= 31:
            raise ValueError(f"late_december_from is a day of December, got {late_december_from}")
        self.published_years = (
            frozenset(published_years) if published_years is not None else published_years_of_package()
        )
        self.late_december_from = late_december_from
        self._lock = threading.Lock()
        self._years: dict[int, tuple[frozenset[date], frozenset[date]]] = {}

    def is_published(self, year: int) -> bool:
        """Whether the year's adjusted workdays are known."""
        return year in self.published_years

    def is_workday(self, day: date) -> bool:
        """Whether staff work on this day: a weekday that is no holiday, or an adjusted weekend workday."""
        days_off, weekend_workdays = self._year(day.year)
        if day in weekend_workdays:
            return True
        return day.weekday() < 5 and day not in days_off

    def spans_unpublished(self, first: date, last: date) -> bool:
        """Whether any day from first to last (inclusive) is not final: in an unpublished year, or late in
        a December whose next year is unpublished."""
        if any(not self.is_published(year) for year in range(first.year, last.year + 1)):
            return True
        late = last.month == 12 and last.day >= self.late_december_from
        return late and not self.is_published(last.year + 1)

    def add_working_days(self, start: date, days: int) -> Deadline:
        """The days-th working day after start (start itself not counted); days must be at least 1."""
        if days < 1:
            raise ValueError(f"a time limit counts at least one working day, got {days}")
        day = start
        counted = 0
        while counted < days:
            day += _ONE_DAY
            if self.is_workday(day):
                counted += 1
        return Deadline(day, self.spans_unpublished(start + _ONE_DAY, day))

    def subtract_working_days(self, day: date, days: int) -> date:
        """The working day `days` working days before day (day itself when days is 0)."""
        counted = 0
        while counted < days:
            day -= _ONE_DAY
            if self.is_workday(day):
                counted += 1
        return day

    def working_days_after(self, start: date, end: date) -> int:
        """How many working days d satisfy start < d <= end (0 when end is not after start)."""
        count = 0
        day = start + _ONE_DAY
        while day <= end:
            count += self.is_workday(day)
            day += _ONE_DAY
        return count

    def days_left(self, today: date, due: date) -> int:
        """Working days after today up to the due date; past the due date, minus the working days since."""
        if today <= due:
            return self.working_days_after(today, due)
        return -self.working_days_after(due, today)

    def working_time(self, start: datetime, end: datetime) -> float:
        """Working days elapsed between two moments: each working day counts the share of it that passed."""
        if end <= start:
            return 0.0
        begin = start.astimezone(SHANGHAI).replace(tzinfo=None)
        finish = end.astimezone(SHANGHAI).replace(tzinfo=None)
        total = 0.0
        day = begin.date()
        while day <= finish.date():
            if self.is_workday(day):
                day_start = datetime.combine(day, time())
                overlap = min(finish, day_start + _ONE_DAY) - max(begin, day_start)
                total += overlap.total_seconds() / _SECONDS_PER_DAY
            day += _ONE_DAY
        return total

    def _year(self, year: int) -> tuple[frozenset[date], frozenset[date]]:
        """Days off and weekend workdays of a year; neighbours are read too: arrangements cross New Year."""
        cached = self._years.get(year)
        if cached is not None:
            return cached
        with self._lock:
            calendar = holidays.country_holidays("CN", years=range(year - 1, year + 2))
            days_off = frozenset(day for day in calendar if day.year == year)
            workdays = frozenset(day for day in calendar.weekend_workdays if day.year == year)
            self._years[year] = (days_off, workdays)
            return days_off, workdays
