"""Event types the workflow consumes and publishes, and the stored form of an event a case is built from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from canonical_model.envelope import CloudEvent

APPLICATION_CHANGED = "cn.yekuo.application.changed.v1"
CUSTOMER_CHANGED = "cn.yekuo.customer.changed.v1"
# A legacy system other than marketing (PMS, dispatch) reporting a stage change of an application.
STAGE_REPORTED = "cn.yekuo.application.stage_reported.v1"

CASE_STAGE_CHANGED = "cn.yekuo.case.stage_changed.v1"
CASE_ASSIGNED = "cn.yekuo.case.assigned.v1"
CASE_AT_RISK = "cn.yekuo.case.at_risk.v1"
CASE_OVERDUE = "cn.yekuo.case.overdue.v1"
CASE_FINDING_RAISED = "cn.yekuo.case.consistency_finding.v1"
CASE_FINDING_CLEARED = "cn.yekuo.case.consistency_cleared.v1"

# The hub's own events: decisions kept with the case, and notifications for other consumers.
HUB_SOURCE = "/hub/workflow"
HUB_SYSTEM = "hub"
# Routing keys of the hub's case events: case.<what>.<customer class>.
ROUTING_KEYS = {
    CASE_STAGE_CHANGED: "case.stage_changed",
    CASE_ASSIGNED: "case.assigned",
    CASE_AT_RISK: "case.at_risk",
    CASE_OVERDUE: "case.overdue",
    CASE_FINDING_RAISED: "case.consistency_finding",
    CASE_FINDING_CLEARED: "case.consistency_cleared",
}


def system_of(source: str) -> str:
    """The system named by an event source, e.g. /marketing/application -> marketing."""
    return source.strip("/").split("/", 1)[0] or HUB_SYSTEM


@dataclass(frozen=True)
class CaseEvent:
    """An event a case is built from, as kept in case_events.

    time is when the change happened at its source: the record's change time for an application, the
    reported time for a stage report, the decision time for the hub's own events.
    """

    event_id: str
    application_no: str
    source: str
    sequence: int
    type: str
    time: datetime
    data: Mapping[str, Any]
    visit: str | None = None

    @property
    def system(self) -> str:
        """marketing, pms, dispatch or hub."""
        return system_of(self.source)

    @property
    def from_hub(self) -> bool:
        """Whether the hub itself decided this (an assignment or an alert)."""
        return self.source == HUB_SOURCE

    @classmethod
    def of(
        cls, event: CloudEvent, application_no: str, time: datetime, visit: str | None = None
    ) -> CaseEvent:
        """The stored form of a CloudEvent."""
        return cls(
            event.id, application_no, event.producer, event.sequence, event.type, time, event.data, visit
        )
