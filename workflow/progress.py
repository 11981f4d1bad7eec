"""Customers' own progress lookup (进度查询): public, by application number and a verification code.

The code is the last 4 digits of a mobile number registered with the application's customer (any of its
contacts, whose phones are sealed at rest in the customer record); it is compared in constant time. A
wrong code gets exactly the answer an unknown application number gets, so the lookup tells nobody which
numbers exist. The answer holds the stages with their dates and responsible units and, of personal data,
only the customer's name masked as the supply-scheme reply masks it (张*).

Lookups are rate-limited per client address and per application number (YEKUO_PROGRESS__*, see
ProgressSettings). progress_of is the lookup itself, for any caller that has checked the limits (the
dashboard's form, a chat assistant); ProgressLookup adds the limits. api/progress.py serves it as
POST /v1/progress.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.engine import Connection, Engine

from canonical_model.pii import mask_name
from ground.limits import RateLimiter, TooManyError
from ground.settings import ProgressSettings
from store.database import utcnow
from workflow.queries import case_customer_no, get_case, get_customer, stage_visits_of
from workflow.workdays import WorkingCalendar, local_date

CODE_DIGITS = 4
CODE_PATTERN = rf"^[0-9]{{{CODE_DIGITS}}}$"
MAX_APPLICATION_NO = 64
NOT_FOUND = "no application with this number and verification code"
# Compared against when there is no phone to compare with, so that case takes as long as a wrong code.
_NO_PHONE = "\x00" * CODE_DIGITS


@dataclass(frozen=True)
class ProgressStep:
    """One visit of a stage: when it began and ended, and the unit responsible for it."""

    stage: str
    stage_name: str
    entered_at: datetime
    left_at: datetime | None
    unit: str | None
    # False: the hub first saw the application already in this stage; entered_at is that moment.
    observed: bool


@dataclass(frozen=True)
class Progress:
    """What a customer is shown of an application: stages, dates, units, and the name masked."""

    application_no: str
    customer_name: str | None
    business_type: str | None
    status: str
    outcome: str | None
    stage: str | None
    stage_name: str | None
    stage_deadline: date | None
    responsible: str | None
    opened_at: datetime | None
    closed_at: datetime | None
    steps: tuple[ProgressStep, ...]
    # The current stage against its limit, while the case is open (None otherwise). Days used count the
    # working days after the day the stage was entered, up to today; used and left add up to the limit.
    stage_limit_days: int | None = None
    stage_working_days_used: int | None = None
    stage_working_days_left: int | None = None
    stage_deadline_provisional: bool = False
    at_risk: bool = False
    overdue: bool = False
    # The whole application against its end-to-end commitment: the customer's own works extend the
    # deadline and are not counted as used; no deadline while they are under way (status paused).
    end_to_end_commitment_days: int | None = None
    end_to_end_deadline: date | None = None
    end_to_end_working_days_used: int | None = None
    end_to_end_working_days_left: int | None = None
    end_to_end_status: str | None = None
    end_to_end_provisional: bool = False


class RateLimitedError(TooManyError):
    """Too many lookups from this address or of this application number; retry_after_s says how long."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("progress lookups", retry_after_s)


def well_formed_code(code: str) -> bool:
    """Whether the code is 4 ASCII digits, the only form a verification code takes."""
    return re.fullmatch(CODE_PATTERN, code) is not None


def _code_matches(phones: list[str], code: str) -> bool:
    """Whether the code is the last 4 digits of any of the phones, each compared in constant time."""
    tails = [digits[-CODE_DIGITS:] for digits in (re.sub(r"\D", "", phone) for phone in phones)]
    tails = [tail for tail in tails if len(tail) == CODE_DIGITS] or [_NO_PHONE]
    matched = False
    for tail in tails:
        matched |= hmac.compare_digest(tail.encode("ascii"), code.encode("ascii", "replace"))
    return matched


def progress_of(
    conn: Connection,
    application_no: str,
    code: str,
    *,
    stage_names: Mapping[str, str] | None = None,
    now: datetime | None = None,
    calendar: WorkingCalendar | None = None,
) -> Progress | None:
    """The progress of the application if the code is right; None alike for an unknown number and a wrong
    code. It checks no rate limit: a caller facing the public must go through ProgressLookup."""
    names = stage_names or {}
    moment = now or utcnow()
    working = calendar or WorkingCalendar()
    customer_no = case_customer_no(conn, application_no)
    # An unknown number reads a customer too (none has an empty number): both answers make the same queries.
    customer = get_customer(conn, customer_no if customer_no is not None else "")
    phones = [str(contact.get("phone") or "") for contact in (customer or {}).get("contacts", ()) if contact]
    matched = _code_matches(phones, code) and well_formed_code(code)
    case = get_case(conn, application_no, calendar=working, now=moment) if matched else None
    if case is None:
        return None
    visits = stage_visits_of(conn, application_no, calendar=working, now=moment)
    name = (customer or {}).get("name")
    stage = case["stage"]
    open_case = case["status"] == "open"
    limit: int | None = case["stage_limit_days"] if open_case else None
    today = local_date(moment)
    commitment_left: int | None = case["end_to_end_working_days_left"]
    return Progress(
        application_no=case["application_no"],
        customer_name=mask_name(name) if isinstance(name, str) and name else None,
        business_type=case["business_type"],
        status=case["status"],
        outcome=case["outcome"],
        stage=stage,
        stage_name=names.get(stage, stage) if stage else None,
        stage_deadline=case["deadline"] if case["status"] == "open" else None,
        responsible=case["responsible"],
        opened_at=case["opened_at"],
        closed_at=case["closed_at"],
        steps=tuple(
            ProgressStep(
                stage=visit["stage"],
                stage_name=names.get(visit["stage"], visit["stage"]),
                entered_at=visit["entered_at"],
                left_at=visit["left_at"],
                unit=visit["unit"],
                observed=bool(visit["observed"]),
            )
            for visit in visits
        ),
        stage_limit_days=limit,
        stage_working_days_used=(
            working.working_days_after(local_date(case["stage_entered_at"]), today)
            if limit is not None
            else None
        ),
        stage_working_days_left=case["working_days_left"] if limit is not None else None,
        stage_deadline_provisional=bool(open_case and case["deadline_provisional"]),
        at_risk=case["at_risk"],
        overdue=case["overdue"],
        end_to_end_commitment_days=case["end_to_end_commitment_days"],
        end_to_end_deadline=case["end_to_end_deadline"],
        end_to_end_working_days_used=(
            case["end_to_end_commitment_days"] - commitment_left if commitment_left is not None else None
        ),
        end_to_end_working_days_left=commitment_left,
        end_to_end_status=case["end_to_end_status"],
        end_to_end_provisional=bool(case["end_to_end_provisional"]),
    )


class ProgressLookup:
    """progress_of behind the rate limits of the settings, shared by every way in (API and dashboard)."""

    def __init__(
        self,
        engine: Engine,
        settings: ProgressSettings,
        *,
        stage_names: Callable[[], Mapping[str, str]] = dict,
        calendar: WorkingCalendar | None = None,
    ) -> None:
        self._engine = engine
        self._stage_names = stage_names
        # One calendar for every lookup: it caches each year's holidays once, not once per lookup.
        self._calendar = calendar or WorkingCalendar()
        self.per_client = RateLimiter(settings.per_client, settings.window_s)
        self.per_application = RateLimiter(settings.per_application, settings.window_s)

    def look_up(self, client: str, application_no: str, code: str) -> Progress | None:
        """The progress, or None for an unknown number or a wrong code; RateLimitedError past a limit.

        A lookup refused for its address is not counted against the application number, so one noisy
        address does not also lock the number's customer out.
        """
        wait = self.per_client.hit(client) or self.per_application.hit(application_no)
        if wait is not None:
            raise RateLimitedError(wait)
        with self._engine.connect() as conn:
            return progress_of(
                conn, application_no, code, stage_names=self._stage_names(), calendar=self._calendar
            )
