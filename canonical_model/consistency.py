"""ConsistencyFinding (一致性核查): the same fact told differently by two records, caught before anyone acts.

A finding names the configured rule that raised it, the rework cause it prevents and the values each system
holds. Values that identify a person or a home (a site address or coordinates) are marked personal: the hub
shows them masked unless the caller may read personal data, and its events carry them masked.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, Field

from canonical_model.common import CanonicalModel

RULE_PATTERN = r"^[a-z][a-z0-9_]*$"


class FindingState(StrEnum):
    """Whether the disagreement stands or a later record resolved it."""

    RAISED = "raised"
    CLEARED = "cleared"


class FindingValue(CanonicalModel):
    """One system's value of the disagreeing fact."""

    system: str = Field(min_length=1, description="system holding it: marketing, pms, hub or submission")
    record: str = Field(min_length=1, description="record kind, e.g. application, customer, transformer")
    field: str = Field(min_length=1, description="canonical field name, e.g. industry_code")
    value: str | float | bool | None = Field(description="the value the record holds; null when it has none")
    personal: bool = Field(default=False, description="personal data: masked unless the caller may read it")


class ConsistencyFinding(CanonicalModel):
    """A cross-system disagreement about an application, found by a configured rule (一致性核查结果)."""

    application_no: str | None = Field(
        default=None, min_length=1, description="application number (申请编号); null for a pre-review"
    )
    rule: str = Field(pattern=RULE_PATTERN, description="configured rule name (workflow/consistency.yaml)")
    kind: str = Field(pattern=RULE_PATTERN, description="built-in check kind the rule uses")
    category: str = Field(
        pattern=RULE_PATTERN, description="rework cause the finding prevents, normally information_error"
    )
    state: FindingState = Field(default=FindingState.RAISED, description="raised or cleared")
    systems: tuple[str, ...] = Field(min_length=1, description="the systems whose records disagree")
    values: tuple[FindingValue, ...] = Field(description="the disagreeing values, per system")
    message: str = Field(min_length=1, description="the rule's message with the values filled in")
    accepted: bool = Field(
        default=False, description="the online submission accepted this rule's findings (accept_findings)"
    )
    found_at: AwareDatetime | None = Field(default=None, description="when the hub found it")
    cleared_at: AwareDatetime | None = Field(
        default=None, description="when a later record no longer disagreed; null while it stands"
    )
