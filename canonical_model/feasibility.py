"""FeasibilityAssessment (供电方案可行性): verdict, voltage, ranked schemes and the rule trace behind them.

Capacities are in kVA, distances in metres, load rates as fractions (0.65 = 65%). Every rule the engine
applied appears in the trace with the inputs it used, its threshold and its result, so an engineer can
redo the arithmetic by hand.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, Field

from canonical_model.common import CanonicalModel, GeoPoint


class Verdict(StrEnum):
    """The answer to "can we supply it" (可行性结论)."""

    FEASIBLE = "feasible"
    FEASIBLE_WITH_CONDITIONS = "feasible_with_conditions"
    NEEDS_REINFORCEMENT = "needs_reinforcement"
    NOT_FEASIBLE = "not_feasible"
    # Load or grid data a required check needs is missing or stale: no answer and no reservation.
    INSUFFICIENT_DATA = "insufficient_data"
    # The business type touches no capacity (更名, 过户, 改类, 移表): no grid check, no reservation.
    NO_CAPACITY_CHECK = "no_capacity_check"


class RuleResult(StrEnum):
    """Outcome of one rule; insufficient_data when its inputs are missing or stale (never guessed)."""

    # A rule result, which bandit takes for a password.
    PASS = "pass"  # nosec B105
    FAIL = "fail"
    INSUFFICIENT_DATA = "insufficient_data"
    INFO = "info"
    # The equipment was beyond the limit before the request: a planning matter, not the applicant's.
    EXISTING_DEFICIENCY = "existing_deficiency"
    # A limit the area class only recommends (N-1 in class C), or a planning guide such as the supply
    # radius, is exceeded: the scheme carries a condition, not a reinforcement.
    CONDITION = "condition"


class RuleCheck(CanonicalModel):
    """One rule as applied: what it looked at, the limit, and what came out."""

    rule: str = Field(min_length=1, description="rule id, e.g. feeder_n_minus_1")
    subject: str | None = Field(default=None, description="equipment or scheme the rule was applied to")
    inputs: dict[str, Any] = Field(default_factory=dict, description="input values used")
    threshold: dict[str, Any] = Field(default_factory=dict, description="configured limits used")
    result: RuleResult = Field(
        description="pass, fail, insufficient_data, info, existing_deficiency or condition"
    )
    detail: str = Field(description="the arithmetic in words")


class Condition(CanonicalModel):
    """Something that must be done or confirmed before the supply scheme holds (附加条件)."""

    code: str = Field(min_length=1, description="e.g. insufficient_data, confirm_bus_sections")
    detail: str = Field(description="what must be done or confirmed")
    equipment_id: str | None = Field(default=None, description="equipment concerned")


class Reinforcement(CanonicalModel):
    """Grid reinforcement a scheme needs (电网改造需求)."""

    equipment_id: str = Field(min_length=1, description="equipment to reinforce")
    kind: str = Field(description="distribution_transformer, feeder or substation")
    reason: str = Field(description="the rule that failed")
    shortfall_kva: float | None = Field(default=None, description="capacity missing, kVA")


class ExistingGridCondition(CanonicalModel):
    """A deficiency the grid had before the request (存量问题): for planning, not the applicant's."""

    equipment_id: str = Field(min_length=1, description="equipment concerned")
    kind: str = Field(description="distribution_transformer, feeder or substation")
    rule: str = Field(description="the rule it does not meet, e.g. feeder_n_minus_1")
    max_load_rate: float | None = Field(
        default=None, description="the limit; None where the rule cannot be applied (radial, one unit)"
    )
    load_rate_before: float | None = Field(default=None, description="load rate before the request")
    shortfall_before_kva: float | None = Field(
        default=None, description="capacity missing before the request, kVA"
    )
    increment_kva: float | None = Field(
        default=None, description="what the request adds to the equipment's load, kVA"
    )
    note: str = Field(description="the planning note (规划建议)")
    blocks_connection: bool = Field(
        default=False,
        description="the equipment is already past its rating: nothing can be connected to it until the "
        "reinforcement is built (the verdict is then not_feasible, 暂不具备供电条件, not the applicant's "
        "reinforcement)",
    )


class SupplySource(CanonicalModel):
    """One connection point of a scheme, with its numbers after the new load is connected."""

    equipment_id: str = Field(min_length=1, description="connection equipment (台区变压器, 馈线 or 变电站)")
    kind: str = Field(description="distribution_transformer, feeder or substation")
    name: str | None = Field(default=None, description="equipment name")
    substation_id: str | None = Field(default=None, description="source substation")
    feeder_id: str | None = Field(default=None, description="feeder, when connecting below one")
    distance_m: float = Field(ge=0, description="distance from the site, metres")
    capacity_kva: float | None = Field(default=None, description="rated capacity, kVA")
    peak_load_kva: float | None = Field(default=None, description="recent peak load, kVA")
    reserved_kva: float = Field(default=0, description="capacity reserved by other open applications, kVA")
    headroom_kva: float | None = Field(default=None, description="headroom before this application, kVA")
    headroom_after_kva: float | None = Field(default=None, description="headroom after it, kVA")
    load_rate_before: float | None = Field(default=None, description="load rate before connection")
    load_rate_after: float | None = Field(default=None, description="load rate after connection")
    area_class: str | None = Field(default=None, description="supply-area class, A+ ... E (供电区域)")
    bus_section: str | None = Field(default=None, description="bus section the feeder leaves from (母线段)")
    connection: str = Field(
        default="existing",
        pattern="^(existing|dedicated_line)$",
        description="existing: a tee-off or the point itself; dedicated_line: new circuits from spare "
        "substation bays (专线)",
    )
    circuits: int = Field(default=1, ge=1, description="circuits of a dedicated line (回路数)")
    n1_limit: float | None = Field(default=None, description="maximum load rate that keeps N-1")


class SupplyScheme(CanonicalModel):
    """A candidate supply scheme (供电方案): one source, or several for important customers."""

    rank: int = Field(ge=1, description="1 = recommended")
    score: float = Field(description="weighted score, 0..1, higher is better")
    verdict: Verdict = Field(description="what this scheme alone would mean")
    sources: tuple[SupplySource, ...] = Field(min_length=1, description="connection points")
    criteria: dict[str, float] = Field(default_factory=dict, description="criterion scores, 0..1")
    reinforcement: tuple[Reinforcement, ...] = Field(default=(), description="reinforcement it needs")
    conditions: tuple[Condition, ...] = Field(default=(), description="conditions it carries")
    existing_grid: tuple[ExistingGridCondition, ...] = Field(
        default=(), description="deficiencies of its equipment before the request, for planning"
    )


class FeasibilityAssessment(CanonicalModel):
    """The supply-feasibility answer for one application or what-if request (供电可行性分析)."""

    application_no: str | None = Field(default=None, description="application; None for a preview")
    province: str = Field(description="rule set applied")
    assessed_at: AwareDatetime = Field(description="when the assessment ran")
    requested_capacity_kva: float = Field(gt=0, description="requested capacity, kVA")
    site_location: GeoPoint | None = Field(default=None, description="site location")
    verdict: Verdict = Field(
        description="feasible, with conditions, needs reinforcement (caused by this request), not feasible, "
        "insufficient data, or no capacity check (a business type that touches no capacity)"
    )
    recommended_voltage_kv: float | None = Field(default=None, description="recommended supply voltage, kV")
    schemes: tuple[SupplyScheme, ...] = Field(default=(), description="candidate schemes, best first")
    reinforcement: tuple[Reinforcement, ...] = Field(
        default=(), description="of the recommended scheme, caused by this request"
    )
    conditions: tuple[Condition, ...] = Field(default=(), description="of the recommended scheme")
    increment_kva: float | None = Field(
        default=None, description="the load the request adds: requested kVA x demand factor"
    )
    demand_factor: float | None = Field(default=None, description="demand factor applied (需要系数)")
    existing_grid: tuple[ExistingGridCondition, ...] = Field(
        default=(),
        description="deficiencies the recommended scheme's equipment had before the request (存量问题), "
        "for grid planning; they are not the applicant's and alone never need reinforcement",
    )
    business_type: str | None = Field(default=None, description="business type of the application (业务类型)")
    existing_capacity_kva: float | None = Field(
        default=None,
        description="the customer's contract capacity before a capacity change, kVA (原合同容量)",
    )
    reserved_kva: float = Field(default=0, description="capacity reserved for this application, kVA")
    reserved_until: AwareDatetime | None = Field(
        default=None,
        description="when the reservation lapses: the supply scheme's validity, or a temporary supply's end",
    )
    trace: tuple[RuleCheck, ...] = Field(default=(), description="every rule applied, in order")
