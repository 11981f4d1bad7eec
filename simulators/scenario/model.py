"""The scenario file: a seeded world, its scale, a fault schedule and the expectations a run must meet."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ground.errors import ConfigError
from simulators.dispatch.faults import Fault as DispatchFault
from simulators.marketing.faults import Fault as MarketingFault
from simulators.marketing.process import PROCESS_FILE, load_processes
from simulators.world import WorldScale


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Count(_Strict):
    """A count that must lie in [min, max]; a bare number in the file means exactly that number."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _exact(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"min": value, "max": value}
        return value

    @model_validator(mode="after")
    def _range(self) -> Count:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both (or a bare number for an exact count)")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self

    def holds(self, actual: int) -> bool:
        """Whether actual lies in the range."""
        return (self.min is None or actual >= self.min) and (self.max is None or actual <= self.max)

    def describe(self) -> str:
        """The range in words, as the report shows it."""
        if self.min is not None and self.min == self.max:
            return f"exactly {self.min}"
        if self.max is None:
            return f"at least {self.min}"
        if self.min is None:
            return f"at most {self.max}"
        return f"between {self.min} and {self.max}"


class Backlog(_Strict):
    """Applications handled long ago and still open: the first ones of the day, moved back days_ago days."""

    applications: int = Field(ge=0)
    days_ago: int = Field(ge=1)


class Scale(_Strict):
    """How big the world is and how much happens in the day."""

    customers: int = Field(default=40, ge=1)
    applications_per_day: int = Field(default=20, ge=0)
    backlog: Backlog | None = None
    substations: int = Field(default=3, ge=1)
    feeders: int = Field(default=12, ge=1)
    transformers: int = Field(default=150, ge=1)
    load_days: int = Field(default=3, ge=0, description="days of load files written before the day starts")
    disagreement_rate: float = Field(
        default=0.05, ge=0, le=1, description="share of applications seeded with an information error"
    )

    def world(self) -> WorldScale:
        """The simulators' scale: the backlog counts among the seeded applications."""
        backlog = self.backlog.applications if self.backlog else 0
        return WorldScale(
            customers=self.customers,
            applications=self.applications_per_day + backlog,
            substations=self.substations,
            feeders=self.feeders,
            transformers=self.transformers,
            disagreement_rate=self.disagreement_rate,
        )


class History(_Strict):
    """Applications accepted over the `days` before the scenario day, replayed before the day starts.

    Each one's life is drawn from a process of the process file (simulators/marketing/process.yaml, or
    process_file: a file of the same form, relative to the working directory), and every status change that
    falls before the day is replayed through the marketing simulator at its own legacy time.
    """

    days: int = Field(ge=1)
    applications: int = Field(ge=1)
    process: str = Field(default="manual", min_length=1)
    process_file: Path | None = None
    act_on_findings: bool = Field(
        default=False,
        description="staff correct a record as soon as the hub's consistency checks flag it",
    )

    @model_validator(mode="after")
    def _known_process(self) -> History:
        try:
            known = load_processes(self.process_file or PROCESS_FILE)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        if self.process not in known:
            raise ValueError(f"no process '{self.process}'; known: {', '.join(sorted(known)) or 'none'}")
        return self


class _Timed(_Strict):
    """When a fault fires: at_s seconds into the day, or once the day has settled."""

    at_s: float | None = Field(default=None, ge=0)
    when: Literal["settled"] | None = None

    @model_validator(mode="after")
    def _one_time(self) -> _Timed:
        if self.at_s is not None and self.when is not None:
            raise ValueError("give either at_s or when, not both")
        return self

    @property
    def after_settled(self) -> bool:
        """Whether the fault waits until the day's work has settled."""
        return self.when == "settled"


class MarketingFaultSpec(_Timed):
    """A marketing-system trigger, by call count (calls: N, N-M, N-) and/or a time window (at_s, for_s)."""

    system: Literal["marketing"]
    trigger: MarketingFault
    op: str | None = None
    calls: str | None = Field(default=None, pattern=r"^\d+(-\d*)?$")
    app: str | None = None
    delay_s: float | None = Field(default=None, ge=0)
    for_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _no_settled(self) -> MarketingFaultSpec:
        if self.after_settled:
            raise ValueError("marketing faults run by calls or by at_s/for_s, not when: settled")
        return self

    def spec(self) -> str:
        """The simulator's own fault spec (`yekuo sim marketing --fault`)."""
        parts = [self.trigger.value]
        for key, value in (
            ("op", self.op),
            ("calls", self.calls),
            ("app", self.app),
            ("delay", self.delay_s),
            ("after", self.at_s),
            ("for", self.for_s),
        ):
            if value is not None:
                parts.append(f"{key}={value}")
        return ":".join(parts)


# Not a fault: the dispatch feed's good files of a further day (today's date), e.g. after a grid change.
NEXT_DAY = "next_day"


class DispatchFaultSpec(_Timed):
    """A dispatch-feed trigger: `count` faulty files (or good days) dropped at at_s or once settled."""

    system: Literal["dispatch"]
    trigger: str
    count: int = Field(default=1, ge=1)

    @field_validator("trigger")
    @classmethod
    def _known(cls, value: str) -> str:
        known = [fault.value for fault in DispatchFault]
        if value != NEXT_DAY and value not in known:
            raise ValueError(f"unknown dispatch trigger {value!r}; known: {', '.join(known)}, or {NEXT_DAY}")
        return value

    @property
    def fault(self) -> DispatchFault | None:
        """The fault trigger, or None for a good next day of files."""
        return None if self.trigger == NEXT_DAY else DispatchFault(self.trigger)


class PmsFaultSpec(_Timed):
    """A PMS trigger: a bulk re-rating of `transformers` in-service transformers (or all) to rated_kva."""

    system: Literal["pms"]
    trigger: Literal["bulk_rerating"]
    transformers: int | Literal["all"] = "all"
    rated_kva: float = Field(gt=0)


FaultSpec = Annotated[MarketingFaultSpec | DispatchFaultSpec | PmsFaultSpec, Field(discriminator="system")]


class ParkedExpectation(_Strict):
    """How many parked messages of a kind, from a system, whose reason contains some text."""

    kind: Literal["invalid", "dead"] = "invalid"
    system: str | None = None
    reason_code: str | None = Field(default=None, description="malformed, mapping, schema, ...")
    reason_contains: str | None = None
    count: Count


class VerdictExpectation(_Strict):
    """The feasibility verdict one application must have at the end."""

    application: str
    verdict: Literal[
        "feasible",
        "feasible_with_conditions",
        "needs_reinforcement",
        "not_feasible",
        "insufficient_data",
        "no_capacity_check",
    ]


class Band(_Strict):
    """A figure that must lie in [min, max] (days or shares)."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _range(self) -> Band:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self

    def holds(self, actual: float | None) -> bool:
        """Whether actual lies in the band; a figure the hub could not measure never does."""
        if actual is None:
            return False
        return (self.min is None or actual >= self.min) and (self.max is None or actual <= self.max)

    def describe(self) -> str:
        """The band in words, as the report shows it."""
        if self.max is None:
            return f"at least {self.min:g}"
        if self.min is None:
            return f"at most {self.max:g}"
        return f"between {self.min:g} and {self.max:g}"


# Figures of workflow/process.py a scenario can hold the hub to, over the cases energised in its window.
ProcessFigure = Literal[
    "calendar_days_mean",
    "calendar_days_p50",
    "working_days_mean",
    "working_days_p50",
    "within_commitment_share",
    "within_target_share",
    "any_rework_share",
    "information_error_rework_share",
    "documents_missing_rework_share",
    "survey_to_scheme_mean",
    "scheme_drafting_mean",
    "findings",
    "cases_with_findings",
]


class ProcessExpectation(_Strict):
    """The hub's process figures (GET /v1/analytics/process) over the cases energised in a trailing window."""

    energised_within_days: int = Field(
        gt=0, description="the cases energised in this many days up to the end of the scenario day"
    )
    figures: dict[ProcessFigure, Band] = Field(min_length=1)


class Expectations(_Strict):
    """What the hub's store must hold once the run has settled; every entry is optional."""

    cases: Count | None = None
    customers: Count | None = None
    grid_equipment: Count | None = None
    load_profiles: Count | None = None
    overdue_cases: Count | None = None
    assessed: Count | None = Field(default=None, description="applications with a feasibility assessment")
    verdict_counts: dict[str, Count] = Field(default_factory=dict)
    verdicts: list[VerdictExpectation] = Field(default_factory=list)
    verdicts_changed: Count | None = Field(
        default=None, description="assessments whose verdict differs after the faults fired once settled"
    )
    parked: list[ParkedExpectation] = Field(default_factory=list)
    source_failures: dict[str, Count] = Field(
        default_factory=dict,
        description="transient failures by adapter (marketing: failed calls) or hub loop (poll:pms)",
    )
    files_done: Count | None = None
    files_error: Count | None = None
    reworked_cases: Count | None = Field(default=None, description="cases returned to an earlier stage")
    outcomes: dict[Literal["open", "energised", "withdrawn", "cancelled"], Count] = Field(
        default_factory=dict, description="cases by outcome; open: not closed yet"
    )
    process: ProcessExpectation | None = None


class Scenario(_Strict):
    """One scenario file."""

    name: str = Field(min_length=1)
    description: str = ""
    seed: int
    day: date = Field(default=date(2026, 11, 26), description="the simulated day; the world starts 08:30")
    day_seconds: float = Field(
        default=4.0, gt=0, description="wall seconds over which the day's applications arrive"
    )
    timeout_s: float = Field(default=60.0, gt=0, description="give up settling after this many seconds")
    scale: Scale = Scale()
    history: History | None = None
    faults: list[FaultSpec] = Field(default_factory=list)
    expect: Expectations = Expectations()

    @model_validator(mode="after")
    def _history_without_backlog(self) -> Scenario:
        # Both place applications before the day; a backlog row would be listed before the history's changes.
        if self.history is not None and self.scale.backlog is not None:
            raise ValueError("give a history or a scale.backlog, not both")
        return self

    def world_scale(self) -> WorldScale:
        """The simulators' scale: the history's applications count among the seeded ones."""
        scale = self.scale.world()
        if self.history is None:
            return scale
        # A history spans months: one customer with two open applications would be a duplicate, not a world.
        return replace(
            scale, applications=scale.applications + self.history.applications, distinct_customers=True
        )
