"""An equipment's measured history as the forecaster reads it: monthly peaks from daily peaks.

A month counts when enough of its days have a complete profile; a month with fewer is left out rather
than filled in, because its highest day is likely among the missing ones and would understate the peak.
The forecaster needs an even series, so it uses the longest run of counted months that ends with the
latest one; a gap ends the history there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date


def month_of(day: date) -> date:
    """The first day of the day's month: how months are named here."""
    return day.replace(day=1)


def add_months(month: date, count: int) -> date:
    """The month `count` months after (or before, when negative) a month's first day."""
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def months_between(start: date, end: date) -> int:
    """How many months end's month lies after start's."""
    return (end.year - start.year) * 12 + end.month - start.month


@dataclass(frozen=True)
class MonthlyHistory:
    """Consecutive monthly peaks, oldest first, and what was left out."""

    first_month: date | None
    peaks: tuple[float, ...]
    months_counted: int
    months_short: int

    @property
    def last_month(self) -> date | None:
        """The latest month of the run, None when the run is empty."""
        if self.first_month is None:
            return None
        return add_months(self.first_month, len(self.peaks) - 1)


def monthly_peaks(days: Iterable[tuple[date, float]], *, before: date, min_days: int) -> MonthlyHistory:
    """The run of monthly peaks that ends with the latest counted month before `before`'s month.

    days: (day, peak) of the complete days; a month counts with at least min_days of them. The month of
    `before` is still being measured, so it never counts.
    """
    current = month_of(before)
    peaks: dict[date, float] = {}
    counts: dict[date, int] = {}
    for day, peak in days:
        month = month_of(day)
        if month >= current:
            continue
        counts[month] = counts.get(month, 0) + 1
        peaks[month] = max(peak, peaks.get(month, peak))
    counted = sorted(month for month, count in counts.items() if count >= min_days)
    short = len(counts) - len(counted)
    if not counted:
        return MonthlyHistory(None, (), 0, short)
    run = [counted[-1]]
    for month in reversed(counted[:-1]):
        if months_between(month, run[-1]) != 1:
            break
        run.append(month)
    run.reverse()
    return MonthlyHistory(run[0], tuple(peaks[month] for month in run), len(counted), short)
