"""The analytics tables' facts of one case, computed when the case is stored, so figures never recount them.

Counting working days is the costly part of the process figures: a calendar walk per case and per visit.
The case store computes each case's durations, commitment and target facts (a row of `case_figures`) and
each left visit's working days past its deadline (stage_visits.excess_days) once, as the case moves; the
figures of GET /v1/analytics/process, the dashboard and the /metrics gauges are then sums, counts and
percentiles over those rows (workflow/process.py, workflow/analytics.py). A case whose facts counted
unpublished calendar days is provisional, and the monitor's calendar refresh rebuilds and restores it.

What each fact means is defined in workflow/process.py's docstring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from canonical_model.case import TimelineKind
from workflow.config import Flow
from workflow.workdays import SHANGHAI, WorkingCalendar, local_date

SCHEME_REPLY_STAGE = "scheme_reply"
_SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class VisitFacts:
    """What the facts read of one stage visit."""

    stage: str
    entered_at: datetime
    left_at: datetime | None
    exit_kind: str | None
    observed: bool


@dataclass(frozen=True)
class CaseFacts:
    """A case as the process figures count it (one row of case_figures)."""

    application_no: str
    customer_class: str
    unit: str | None
    opened_at: datetime
    closed_at: datetime | None
    energised_at: datetime | None
    measured: bool
    working_days: float | None
    calendar_days: float | None
    within_commitment: bool | None
    power_working_day: int | None
    survey_to_scheme_days: float | None
    scheme_drafting_days: float | None

    @property
    def energised_month(self) -> str | None:
        """Month of energisation in Asia/Shanghai, as YYYY-MM."""
        return None if self.energised_at is None else self.energised_at.astimezone(SHANGHAI).strftime("%Y-%m")

    def row(self) -> dict[str, Any]:
        """The case_figures row."""
        return {
            "application_no": self.application_no,
            "customer_class": self.customer_class,
            "unit": self.unit,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "energised_at": self.energised_at,
            "energised_month": self.energised_month,
            "measured": self.measured,
            "working_days": self.working_days,
            "calendar_days": self.calendar_days,
            "within_commitment": self.within_commitment,
            "power_working_day": self.power_working_day,
            "survey_to_scheme_days": self.survey_to_scheme_days,
            "scheme_drafting_days": self.scheme_drafting_days,
        }


def case_facts(
    *,
    application_no: str,
    customer_class: str,
    unit: str | None,
    flow: Flow,
    opened_at: datetime,
    closed_at: datetime | None,
    energised_at: datetime | None,
    end_to_end_deadline: date | None,
    visits: Sequence[VisitFacts],
    calendar: WorkingCalendar,
) -> CaseFacts:
    """The facts of a case; energised_at is when it entered its flow's terminal stage, None if it did not.

    closed_at is when it was closed (energised, withdrawn or cancelled), None while open.
    """
    # The terminal visit is the last one; first seen there, its entry is not the moment of power.
    measured = energised_at is not None and bool(visits) and visits[-1].observed
    working = calendar_days = None
    within_commitment = None
    power_day = None
    if measured and energised_at is not None:
        working = calendar.working_time(opened_at, energised_at)
        # A source that reports power before submission gives 0, as working_time does, not a negative.
        calendar_days = max((energised_at - opened_at).total_seconds(), 0.0) / _SECONDS_PER_DAY
        day = local_date(energised_at)
        within_commitment = None if end_to_end_deadline is None else day <= end_to_end_deadline
        power_day = power_working_day(calendar, local_date(opened_at), day)
    survey_to_scheme = drafting = None
    if energised_at is not None:
        survey_to_scheme = _survey_to_scheme(flow, visits, calendar)
        drafting = _drafting(visits, calendar)
    return CaseFacts(
        application_no=application_no,
        customer_class=customer_class,
        unit=unit,
        opened_at=opened_at,
        closed_at=closed_at,
        energised_at=energised_at,
        measured=measured,
        working_days=working,
        calendar_days=calendar_days,
        within_commitment=within_commitment,
        power_working_day=power_day,
        survey_to_scheme_days=survey_to_scheme,
        scheme_drafting_days=drafting,
    )


def power_working_day(calendar: WorkingCalendar, submitted: date, energised: date) -> int:
    """Which working day after the day of submission power came on: 0 on or before that day.

    A day off counts as the working day that follows it. Power is within a target of n working days when
    this is at most n: on or before the n-th working day after submission, the day the target falls due.
    Stored instead of the verdict so that any target is one comparison.
    """
    if energised <= submitted:
        return 0
    count = calendar.working_days_after(submitted, energised)
    return count if calendar.is_workday(energised) else count + 1


def excess_days(calendar: WorkingCalendar, due: date | None, left_at: datetime | None) -> float | None:
    """Working days from the end of a visit's due day to leaving; 0 when left in time, None while not left."""
    if left_at is None or due is None:
        return None
    end_of_due = datetime.combine(due + timedelta(days=1), time(), tzinfo=SHANGHAI)
    return calendar.working_time(end_of_due, left_at)


def _survey_to_scheme(flow: Flow, visits: Sequence[VisitFacts], calendar: WorkingCalendar) -> float | None:
    survey = next((step.stage for step in flow.steps if step.survey), None)
    if survey is None:
        return None
    first = next((visit for visit in visits if visit.stage == survey), None)
    left = [
        visit.left_at
        for visit in visits
        if visit.stage == SCHEME_REPLY_STAGE
        and visit.exit_kind == TimelineKind.FORWARD.value
        and visit.left_at is not None
    ]
    if first is None or not first.observed or not left:
        return None
    return calendar.working_time(first.entered_at, left[-1])


def _drafting(visits: Sequence[VisitFacts], calendar: WorkingCalendar) -> float | None:
    scheme = [visit for visit in visits if visit.stage == SCHEME_REPLY_STAGE]
    # Measured from the kept times, not read from the kept durations: MariaDB keeps those in single
    # precision, and a case continued from stored visits must sum what its rebuild sums.
    durations = [
        calendar.working_time(visit.entered_at, visit.left_at)
        for visit in scheme
        if visit.observed and visit.left_at is not None
    ]
    if not scheme or len(durations) < len(scheme):
        return None
    return float(sum(durations))
