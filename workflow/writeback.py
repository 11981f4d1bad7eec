"""Write-back into the marketing system: which hub events become which SOAP write, as a rule table.

The marketing_writeback consumer keeps each event a rule takes in marketing_writebacks (in the same
transaction as its inbox entry), and the marketing adapter's writer sends them with retries. A rule turns
an event into the operation's arguments, written in the marketing system's terms (its codes and its way of
writing a time, the MarketingTerms the wiring gives the handler), or into nothing when the event must not be
written back. The request id
of every write is the event id, so a write repeated after a lost answer takes effect once.

Stage changes: a case entering a stage because of PMS, dispatch or another system's report is written
back with UpdateApplicationStage. A stage change that came from the marketing system itself is not: that
would echo it back to where it came from.
Feasibility results: every assessment of an application is recorded with RecordFeasibilityResult (a preview
without an application is not). Another result the hub produces takes one more rule for its event type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from canonical_model.case import StageTransition, TimelineKind
from canonical_model.events import CASE_STAGE_CHANGED, FEASIBILITY_ASSESSED, channel_of
from canonical_model.feasibility import FeasibilityAssessment
from ground.errors import InvalidRecordError
from pipeline.decoded import DecodedEvent
from store.submissions import add_writeback

# Sources whose stage changes the marketing system knows already: its own, and none the hub decides.
NOT_WRITTEN_BACK = frozenset({"marketing", "hub"})
WRITTEN_KINDS = frozenset({TimelineKind.FORWARD, TimelineKind.REWORK, TimelineKind.ANOMALY})


class MarketingTerms(Protocol):
    """How the marketing system writes what a write-back carries (the marketing adapter's outbound codes)."""

    def code(self, table: str, value: object, *, field: str) -> str:
        """The legacy code for a canonical value; InvalidRecordError naming the field when there is none."""
        ...

    def time(self, moment: datetime) -> str:
        """An aware time as the marketing system writes it."""
        ...


ArgumentBuilder = Callable[[DecodedEvent, MarketingTerms], dict[str, Any] | None]


@dataclass(frozen=True)
class WritebackRule:
    """An event type written back: its routing-key pattern, the SOAP operation and how the event becomes
    the operation's arguments."""

    topic: str
    operation: str
    arguments: ArgumentBuilder


def stage_change_arguments(decoded: DecodedEvent, codes: MarketingTerms) -> dict[str, Any] | None:
    """UpdateApplicationStage arguments for a stage the case entered, or None when it came from marketing."""
    event = decoded.event
    entry = decoded.payload_as(StageTransition)
    if entry.source_system in NOT_WRITTEN_BACK or entry.kind not in WRITTEN_KINDS or entry.stage_to is None:
        return None
    return {
        "requestId": event.id,
        "appNo": entry.application_no,
        "statusCode": codes.code("marketing/status_code", entry.stage_to, field="stage_to"),
        "changedAt": codes.time(entry.at),
        "remark": entry.note or f"reported by {entry.source_system}",
        "operator": entry.responsible,
    }


def feasibility_arguments(decoded: DecodedEvent, codes: MarketingTerms) -> dict[str, Any] | None:
    """RecordFeasibilityResult arguments for an assessment of an application, or None for a preview.

    A recommended voltage the marketing system has no VOLT_CODE for is left out of supplyVoltCode and
    named in the remark instead, so the verdict still gets through.
    """
    event = decoded.event
    assessment = decoded.payload_as(FeasibilityAssessment)
    if assessment.application_no is None:
        return None
    voltage = assessment.recommended_voltage_kv
    volt_code: str | None = None
    notes = [
        f"{assessment.verdict.value}",
        f"reserved {assessment.reserved_kva:g} kVA",
        *_judgement(assessment),
    ]
    if voltage is not None:
        try:
            volt_code = codes.code("marketing/volt_code", voltage, field="recommended_voltage_kv")
        except InvalidRecordError:
            notes.append(f"recommended {voltage:g} kV (no VOLT_CODE)")
    return {
        "requestId": event.id,
        "appNo": assessment.application_no,
        "verdict": codes.code("marketing/feasibility_verdict", assessment.verdict.value, field="verdict"),
        "supplyVoltCode": volt_code,
        "assessedAt": codes.time(assessment.assessed_at),
        "remark": "; ".join(notes),
    }


def _judgement(assessment: FeasibilityAssessment) -> list[str]:
    """The applicant's own result, then the grid's existing deficiencies, kept apart in the remark."""
    notes = []
    if assessment.increment_kva is not None:
        notes.append(f"request adds {assessment.increment_kva:g} kVA")
    for fix in assessment.reinforcement:
        short = f" short {fix.shortfall_kva:g} kVA" if fix.shortfall_kva is not None else ""
        notes.append(f"caused by the request: {fix.reason} {fix.equipment_id}{short}")
    for found in assessment.existing_grid:
        rate = f" at {found.load_rate_before:.1%}" if found.load_rate_before is not None else ""
        limit = f" > {found.max_load_rate:.1%}" if found.max_load_rate is not None and rate else ""
        short = f" short {found.shortfall_before_kva:g} kVA" if found.shortfall_before_kva is not None else ""
        blocks = ", blocks connection until reinforced" if found.blocks_connection else ""
        notes.append(
            f"existing grid (planning): {found.rule} {found.equipment_id}{rate}{limit}{short}{blocks}"
        )
    return notes


WRITEBACK_RULES: dict[str, WritebackRule] = {
    CASE_STAGE_CHANGED: WritebackRule(
        f"{channel_of(CASE_STAGE_CHANGED).prefix}.#", "UpdateApplicationStage", stage_change_arguments
    ),
    FEASIBILITY_ASSESSED: WritebackRule(
        f"{channel_of(FEASIBILITY_ASSESSED).prefix}.#", "RecordFeasibilityResult", feasibility_arguments
    ),
}


def writeback_topics(rules: Mapping[str, WritebackRule] = WRITEBACK_RULES) -> tuple[str, ...]:
    """The routing-key patterns of the events the rules take, for the consumer's queue bindings."""
    return tuple(rule.topic for rule in rules.values())


class WritebackHandler:
    """The marketing_writeback consumer's handler: queues the write-backs the rules call for."""

    def __init__(
        self,
        codes: Callable[[], MarketingTerms],
        rules: Mapping[str, WritebackRule] = WRITEBACK_RULES,
    ) -> None:
        self._rules = dict(rules)
        self._codes = codes

    def __call__(self, conn: Connection, decoded: DecodedEvent) -> None:
        event = decoded.event
        rule = self._rules.get(event.type)
        if rule is None:
            raise InvalidRecordError(f"marketing write-back has no rule for {event.type} (event {event.id})")
        arguments = rule.arguments(decoded, self._codes())
        if arguments is None:
            return
        add_writeback(
            conn,
            event_id=event.id,
            event_type=event.type,
            operation=rule.operation,
            application_no=str(arguments["appNo"]),
            arguments=arguments,
        )
