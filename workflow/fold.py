"""A case as a pure function of its events: ordering, stage transitions, visits, deadlines and timeline.

Events of one source are applied in their sequence order; the streams of different sources are merged by
the time each change happened (ties by source name). The hub's own decisions (assignments, alerts) do not
move stages; they are attached to the timeline by their own time. So a case depends only on the set of
its events, never on the order or the number of times they arrived.

Transitions follow the stage model: the next step of the flow is a forward move, any earlier step a rework
(with the cause the source gave, if any), and a closing stage (withdrawn, cancelled) closes the case from
any stage. Anything else a legacy system reports is an anomaly. The legacy system is the system of record
for where the work stands, so the case follows a skipped or re-opened stage and flags it; a stage that is
not part of the case's flow at all cannot be tracked, so the case stays where it is and the anomaly is
recorded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from canonical_model.application import ConnectionApplication, ReworkCause
from canonical_model.case import (
    AlertKind,
    AlertScope,
    CaseAlert,
    CaseAnomaly,
    CaseOutcome,
    CaseStatus,
    StageReport,
    StageTransition,
    SurveyAssignment,
    TimelineKind,
)
from canonical_model.events import APPLICATION_CHANGED, CASE_ASSIGNED, STAGE_REPORTED
from workflow.config import Flow, Province, WorkflowConfig
from workflow.events import CaseEvent, payload_of
from workflow.workdays import Deadline, WorkingCalendar, local_date

# Timeline kinds that put the case into a stage: each of them is published as case.stage_changed.
STAGE_ENTRY_KINDS = frozenset(
    {
        TimelineKind.OPENED,
        TimelineKind.FIRST_SEEN,
        TimelineKind.FORWARD,
        TimelineKind.REWORK,
        TimelineKind.ANOMALY,
        TimelineKind.CLOSED,
    }
)


@dataclass
class Visit:
    """One stay of a case in a stage, from entering it to leaving it."""

    stage: str
    key: str
    flow: str
    entered_at: datetime
    observed: bool
    unit: str | None
    left_at: datetime | None = None
    exit_kind: TimelineKind | None = None
    exit_cause: ReworkCause | None = None
    limit_days: int | None = None
    deadline: Deadline | None = None
    at_risk_from: date | None = None
    duration_days: float | None = None
    over_limit: bool | None = None
    provisional: bool = False


# The visit key of end-to-end alerts: one of each kind per case.
END_TO_END = "end_to_end"


@dataclass(frozen=True)
class EndToEnd:
    """The case against the utility's end-to-end commitment, counted from the day it was accepted.

    The customer's own works stop the clock: the days of finished works push the deadline back, and while
    the case is in them there is no deadline (paused).
    """

    commitment_days: int
    customer_works_days: int
    deadline: Deadline | None
    at_risk_from: date | None

    @property
    def paused(self) -> bool:
        """Whether the case is in the customer's works, with the clock stopped."""
        return self.deadline is None


@dataclass(frozen=True)
class Earlier:
    """What a case continued from its fold point keeps of the visits and entries before those it holds.

    A case folded from all its events holds every visit and entry, and nothing is earlier.
    """

    visits: int = 0
    entries: int = 0
    customer_works_days: int = 0
    provisional: bool = False


@dataclass
class CaseState:
    """Everything known about a case, derived from its events.

    A case continued from its fold point (continue_fold) holds only its visits from the current one on
    and its new timeline entries; earlier says how many came before them.
    """

    application: ConnectionApplication
    flow: Flow
    province: Province | None
    opened_at: datetime
    closing_stages: Mapping[str, CaseOutcome] = field(default_factory=dict)
    visits: list[Visit] = field(default_factory=list)
    timeline: list[StageTransition] = field(default_factory=list)
    anomalies: list[CaseAnomaly] = field(default_factory=list)
    assignments: list[SurveyAssignment] = field(default_factory=list)
    alerts: set[tuple[AlertKind, str]] = field(default_factory=set)
    rework_count: int = 0
    end_to_end: EndToEnd | None = None
    ordinals: dict[str, int] = field(default_factory=dict)
    earlier: Earlier = Earlier()

    @property
    def application_no(self) -> str:
        """The application the case tracks."""
        return self.application.application_no

    @property
    def visit(self) -> Visit:
        """The current stage visit."""
        return self.visits[-1]

    @property
    def stage(self) -> str:
        """The current stage."""
        return self.visit.stage

    @property
    def outcome(self) -> CaseOutcome | None:
        """Energised in the flow's terminal stage, withdrawn or cancelled in a closing stage, else None."""
        if self.stage == self.flow.terminal_stage:
            return CaseOutcome.ENERGISED
        return self.closing_stages.get(self.stage)

    @property
    def status(self) -> CaseStatus:
        """Closed once the flow's terminal stage or a closing stage is reached."""
        return CaseStatus.OPEN if self.outcome is None else CaseStatus.CLOSED

    @property
    def closed_at(self) -> datetime | None:
        """When the terminal or closing stage was entered, for a closed case."""
        return self.visit.entered_at if self.status is CaseStatus.CLOSED else None

    @property
    def assignment(self) -> SurveyAssignment | None:
        """The survey assignment of the current visit, if any."""
        return next((a for a in reversed(self.assignments) if a.visit == self.visit.key), None)

    @property
    def assignee(self) -> str | None:
        """Staff id holding the open survey task of the current visit."""
        assignment = self.assignment
        return assignment.staff_id if assignment is not None and self.status is CaseStatus.OPEN else None

    @property
    def survey_pending(self) -> bool:
        """In a survey stage that nobody has been assigned to yet."""
        step = self.flow.step(self.stage)
        return self.status is CaseStatus.OPEN and step is not None and step.survey and self.assignment is None

    @property
    def provisional(self) -> bool:
        """Whether any deadline or duration counted days of an unpublished calendar year."""
        end_to_end = self.end_to_end
        overall = (
            end_to_end is not None and end_to_end.deadline is not None and end_to_end.deadline.provisional
        )
        return overall or self.earlier.provisional or any(visit.provisional for visit in self.visits)


def order_events(events: Iterable[CaseEvent]) -> list[CaseEvent]:
    """Legacy events in applying order: by sequence within a source, merged across sources by change time."""
    streams: dict[str, deque[CaseEvent]] = {}
    for source in sorted({event.source for event in events}):
        ordered = sorted((e for e in events if e.source == source), key=lambda e: (e.sequence, e.event_id))
        streams[source] = deque(ordered)
    merged: list[CaseEvent] = []
    while streams:
        source = min(streams, key=lambda name: (streams[name][0].time, name))
        merged.append(streams[source].popleft())
        if not streams[source]:
            del streams[source]
    return merged


def fold_case(
    events: Sequence[CaseEvent], config: WorkflowConfig, calendar: WorkingCalendar
) -> CaseState | None:
    """The case built from its events, or None while no application event has arrived for it."""
    legacy = order_events([event for event in events if not event.from_hub])
    builder = _Builder(config, calendar)
    for event in legacy:
        builder.apply(event)
    state = builder.state
    if state is None:
        return None
    _measure(state, config, calendar)
    decisions = sorted((event for event in events if event.from_hub), key=lambda e: (e.time, e.event_id))
    _attach_decisions(state, decisions)
    return state


@dataclass(frozen=True)
class FoldPoint:
    """Where the fold of a case stands after its events: enough to apply the next one in order to it.

    visit is the current visit (never left). sources holds the last (sequence, event id) applied of each
    source, last the latest (time, source) of any applied event: an event that follows the last of its
    source and is no earlier than last is the one order_events puts after all the others, since its
    source's stream ends with it and no other stream holds anything later. decided_until is the time of
    the latest hub decision, which a new timeline entry must follow to keep the timeline's order.
    events is the case's count of kept events, which tells a point left behind by a rebuild that did not
    write one. signature names the workflow configuration and calendar the point was folded under
    (workflow.cases.fold_signature): the visits and entries behind the point keep the limits they computed,
    so under another configuration only a rebuild brings them up to date.
    """

    events: int
    signature: str
    flow: str
    province: str | None
    opened_at: datetime
    visit: Visit
    ordinals: Mapping[str, int]
    rework_count: int
    earlier: Earlier
    sources: Mapping[str, tuple[int, str]]
    last: tuple[datetime, str]
    decided_until: datetime | None
    assignment: SurveyAssignment | None

    def follows(self, event: CaseEvent) -> bool:
        """Whether a legacy event comes after every event folded so far (see the class)."""
        if event.from_hub:
            return False
        previous = self.sources.get(event.source)
        if previous is not None and (event.sequence, event.event_id) <= previous:
            return False
        return (event.time, event.source) >= self.last

    def document(self) -> dict[str, Any]:
        """The point as JSON, as the case row keeps it."""
        visit = self.visit
        return {
            "events": self.events,
            "signature": self.signature,
            "flow": self.flow,
            "province": self.province,
            "opened_at": _utc(self.opened_at),
            "visit": [
                visit.stage,
                visit.key,
                visit.flow,
                _utc(visit.entered_at),
                visit.observed,
                visit.unit,
            ],
            "ordinals": dict(self.ordinals),
            "rework_count": self.rework_count,
            "earlier": [
                self.earlier.visits,
                self.earlier.entries,
                self.earlier.customer_works_days,
                self.earlier.provisional,
            ],
            "sources": {source: list(key) for source, key in self.sources.items()},
            "last": [_utc(self.last[0]), self.last[1]],
            "decided_until": _utc(self.decided_until) if self.decided_until else None,
            "assignment": self.assignment.model_dump(mode="json") if self.assignment else None,
        }

    @classmethod
    def of_document(cls, document: Mapping[str, Any]) -> FoldPoint:
        """The point a case row keeps (document)."""
        stage, key, flow, entered_at, observed, unit = document["visit"]
        visits, entries, works_days, provisional = document["earlier"]
        last_time, last_source = document["last"]
        decided_until = document["decided_until"]
        assignment = document["assignment"]
        return cls(
            events=document["events"],
            # A point written before points were signed matches no configuration: its case is rebuilt.
            signature=document.get("signature", ""),
            flow=document["flow"],
            province=document["province"],
            opened_at=datetime.fromisoformat(document["opened_at"]),
            visit=Visit(stage, key, flow, datetime.fromisoformat(entered_at), observed, unit),
            ordinals=document["ordinals"],
            rework_count=document["rework_count"],
            earlier=Earlier(visits, entries, works_days, provisional),
            sources={
                source: (sequence, event_id) for source, (sequence, event_id) in document["sources"].items()
            },
            last=(datetime.fromisoformat(last_time), last_source),
            decided_until=datetime.fromisoformat(decided_until) if decided_until else None,
            assignment=SurveyAssignment.model_validate(assignment) if assignment else None,
        )


def _utc(moment: datetime) -> str:
    # In UTC, as the store gives times back: a rebuilt point reads its events' times from the store.
    return moment.astimezone(UTC).isoformat()


def fold_point(
    state: CaseState,
    events: Sequence[CaseEvent],
    config: WorkflowConfig,
    calendar: WorkingCalendar,
    signature: str,
) -> FoldPoint:
    """The fold point of a case folded from all its events under the configuration signature names."""
    sources: dict[str, tuple[int, str]] = {}
    last: tuple[datetime, str] | None = None
    decisions: set[str] = set()
    for event in events:
        if event.from_hub:
            decisions.add(event.event_id)
            continue
        sources[event.source] = max(
            sources.get(event.source, (event.sequence, event.event_id)), (event.sequence, event.event_id)
        )
        last = max(last or (event.time, event.source), (event.time, event.source))
    assert last is not None, "a folded case has an application event"
    decided = [entry.at for entry in state.timeline if entry.source_event_id in decisions]
    return _point(state, len(events), signature, sources, last, max(decided, default=None), config, calendar)


def continue_fold(
    point: FoldPoint,
    application: ConnectionApplication,
    event: CaseEvent,
    config: WorkflowConfig,
    calendar: WorkingCalendar,
    signature: str,
) -> tuple[CaseState, FoldPoint] | None:
    """The case after one more event, from its fold point and its latest application, and its next point.

    It holds the visits from the point's current one on and only the event's timeline entries. None when
    the case needs a rebuild instead: the point was folded under another configuration than the one
    signature names (config and calendar), the event is out of order, it moves the case to another
    province (whose limits apply to every visit), or an entry of it would sort before a hub decision.
    """
    flow = config.flow_named(point.flow)
    if flow is None or point.signature != signature or not point.follows(event):
        return None
    visit = point.visit
    state = CaseState(
        application=application,
        flow=flow,
        province=config.province_for(application.org_no),
        opened_at=point.opened_at,
        closing_stages=config.closing_stages,
        visits=[Visit(visit.stage, visit.key, visit.flow, visit.entered_at, visit.observed, visit.unit)],
        assignments=[point.assignment] if point.assignment else [],
        rework_count=point.rework_count,
        ordinals=dict(point.ordinals),
        earlier=point.earlier,
    )
    builder = _Builder(config, calendar)
    builder.state = state
    builder.apply(event)
    province = state.province.id if state.province else None
    if province != point.province:
        return None
    if point.decided_until is not None and any(entry.at <= point.decided_until for entry in state.timeline):
        return None
    _measure(state, config, calendar)
    sources = {**point.sources, event.source: (event.sequence, event.event_id)}
    following = _point(
        state,
        point.events + 1,
        signature,
        sources,
        (event.time, event.source),
        point.decided_until,
        config,
        calendar,
    )
    return state, following


def _point(
    state: CaseState,
    events: int,
    signature: str,
    sources: Mapping[str, tuple[int, str]],
    last: tuple[datetime, str],
    decided_until: datetime | None,
    config: WorkflowConfig,
    calendar: WorkingCalendar,
) -> FoldPoint:
    left = state.visits[:-1]
    earlier = state.earlier
    return FoldPoint(
        events=events,
        signature=signature,
        flow=state.flow.name,
        province=state.province.id if state.province else None,
        opened_at=state.opened_at,
        visit=state.visit,
        ordinals=dict(state.ordinals),
        rework_count=state.rework_count,
        earlier=Earlier(
            visits=earlier.visits + len(left),
            entries=earlier.entries + len(state.timeline),
            customer_works_days=earlier.customer_works_days
            + sum(_customer_works_days(visit, state, config, calendar) or 0 for visit in left),
            provisional=earlier.provisional or any(visit.provisional for visit in left),
        ),
        sources=sources,
        last=last,
        decided_until=decided_until,
        assignment=state.assignment,
    )


class _Builder:
    """Applies legacy events one by one."""

    def __init__(self, config: WorkflowConfig, calendar: WorkingCalendar) -> None:
        self.config = config
        self.calendar = calendar
        self.state: CaseState | None = None
        self.waiting: list[tuple[CaseEvent, StageReport]] = []

    def apply(self, event: CaseEvent) -> None:
        if event.type == APPLICATION_CHANGED:
            application = payload_of(event, ConnectionApplication)
            if self.state is None:
                self._open(application, event)
                for waiting, report in self.waiting:
                    self._report(waiting, report)
                self.waiting.clear()
            else:
                self._update(application, event)
        elif event.type == STAGE_REPORTED:
            report = payload_of(event, StageReport)
            if self.state is None:
                # A stage report can overtake the application itself; it applies once the case opens.
                self.waiting.append((event, report))
            else:
                self._report(event, report)

    def _open(self, application: ConnectionApplication, event: CaseEvent) -> None:
        flow = self.config.flow_for(application)
        state = CaseState(
            application=application,
            flow=flow,
            province=self.config.province_for(application.org_no),
            opened_at=application.submitted_at,
            closing_stages=self.config.closing_stages,
        )
        self.state = state
        reported = application.stage or flow.first_stage
        # A case first seen closed (withdrawn, cancelled) is taken as it is, like one first seen further on.
        if flow.position(reported) is None and reported not in state.closing_stages:
            self._enter(
                flow.first_stage,
                application.submitted_at,
                event,
                TimelineKind.OPENED,
                None,
                f"application accepted via {application.channel.value}",
                observed=True,
            )
            self._anomaly(
                event,
                application.updated_at,
                reported,
                f"stage '{reported}' is not part of flow {flow.name}; the case stays in {flow.first_stage}",
            )
        elif reported == flow.first_stage:
            self._enter(
                reported,
                application.submitted_at,
                event,
                TimelineKind.OPENED,
                None,
                f"application accepted via {application.channel.value}",
                observed=True,
            )
        else:
            self._enter(
                reported,
                event.time,
                event,
                TimelineKind.FIRST_SEEN,
                None,
                f"first seen in {reported}; earlier stages were not observed",
                observed=False,
            )

    def _update(self, application: ConnectionApplication, event: CaseEvent) -> None:
        state = self._opened()
        state.application = application
        state.province = self.config.province_for(application.org_no)
        flow = self.config.flow_for(application)
        if flow.name != state.flow.name:
            self._entry(
                event.time,
                TimelineKind.FLOW_CHANGED,
                state.stage,
                state.stage,
                None,
                event,
                application.org_no,
                f"flow {state.flow.name} -> {flow.name}",
            )
            state.flow = flow
        if application.stage is not None:
            self._move(
                application.stage, event.time, event, application.org_no, None, application.rework_cause
            )

    def _report(self, event: CaseEvent, report: StageReport) -> None:
        responsible = report.responsible or self._opened().application.org_no
        self._move(report.stage, report.at, event, responsible, report.note)

    def _move(
        self,
        target: str,
        at: datetime,
        event: CaseEvent,
        responsible: str | None,
        note: str | None,
        cause: ReworkCause | None = None,
    ) -> None:
        state = self._opened()
        current = state.stage
        if target == current:
            return
        flow = state.flow
        here, there = flow.position(current), flow.position(target)
        closing = state.closing_stages.get(target)
        if closing is not None:
            self._close(target, closing, at, event, responsible, note)
            return
        if there is None:
            self._anomaly(
                event,
                at,
                target,
                f"stage '{target}' is not part of flow {flow.name}; the case stays in {current}",
            )
            return
        if here is None or state.status is CaseStatus.CLOSED:
            kind = TimelineKind.ANOMALY
            reason = (
                f"the case was closed in {current}"
                if state.status is CaseStatus.CLOSED
                else (f"the case was in '{current}', which flow {flow.name} does not have")
            )
        elif there == here + 1:
            kind, reason = TimelineKind.FORWARD, None
        elif there < here:
            kind, reason = TimelineKind.REWORK, None
            state.rework_count += 1
        else:
            skipped = ", ".join(step.stage for step in flow.steps[here + 1 : there])
            kind, reason = TimelineKind.ANOMALY, f"skips {skipped}"
        if reason is not None:
            state.anomalies.append(
                CaseAnomaly(
                    at=at,
                    source_system=event.system,
                    source_event_id=event.event_id,
                    stage_from=current,
                    stage_to=target,
                    reason=reason,
                )
            )
        text = "; ".join(part for part in (reason, note) if part) or None
        rework_cause = cause if kind is TimelineKind.REWORK else None
        self._enter(target, at, event, kind, responsible, text, observed=True, cause=rework_cause)

    def _close(
        self,
        target: str,
        outcome: CaseOutcome,
        at: datetime,
        event: CaseEvent,
        responsible: str | None,
        note: str | None,
    ) -> None:
        """Enter a closing stage: from an open case a closure, from a closed one an anomaly it follows."""
        state = self._opened()
        kind, reason = TimelineKind.CLOSED, None
        if state.status is CaseStatus.CLOSED:
            kind, reason = TimelineKind.ANOMALY, f"the case was closed in {state.stage}"
            state.anomalies.append(
                CaseAnomaly(
                    at=at,
                    source_system=event.system,
                    source_event_id=event.event_id,
                    stage_from=state.stage,
                    stage_to=target,
                    reason=reason,
                )
            )
        text = "; ".join(part for part in (reason, f"outcome: {outcome.value}", note) if part)
        self._enter(target, at, event, kind, responsible, text, observed=True)

    def _enter(
        self,
        stage: str,
        at: datetime,
        event: CaseEvent,
        kind: TimelineKind,
        responsible: str | None,
        note: str | None,
        *,
        observed: bool,
        cause: ReworkCause | None = None,
    ) -> None:
        state = self._opened()
        previous = state.visits[-1] if state.visits else None
        if previous is not None:
            previous.left_at = at
            previous.exit_kind = kind
            previous.exit_cause = cause
        ordinal = state.ordinals[stage] = state.ordinals.get(stage, 0) + 1
        visit = Visit(
            stage=stage,
            key=f"{stage}#{ordinal}",
            flow=state.flow.name,
            entered_at=at,
            observed=observed,
            unit=state.application.org_no,
        )
        state.visits.append(visit)
        self._entry(
            at,
            kind,
            previous.stage if previous else None,
            stage,
            visit.key,
            event,
            responsible or state.application.org_no,
            note,
            cause,
        )

    def _anomaly(self, event: CaseEvent, at: datetime, target: str, reason: str) -> None:
        state = self._opened()
        current = state.visits[-1].stage if state.visits else None
        state.anomalies.append(
            CaseAnomaly(
                at=at,
                source_system=event.system,
                source_event_id=event.event_id,
                stage_from=current,
                stage_to=target,
                reason=reason,
            )
        )
        self._entry(at, TimelineKind.ANOMALY, current, target, None, event, state.application.org_no, reason)

    def _entry(
        self,
        at: datetime,
        kind: TimelineKind,
        stage_from: str | None,
        stage_to: str | None,
        visit: str | None,
        event: CaseEvent,
        responsible: str | None,
        note: str | None,
        cause: ReworkCause | None = None,
    ) -> None:
        state = self._opened()
        state.timeline.append(
            StageTransition(
                application_no=state.application_no,
                position=state.earlier.entries + len(state.timeline),
                at=at,
                kind=kind,
                stage_from=stage_from,
                stage_to=stage_to,
                visit=visit,
                source_system=event.system,
                source_event_id=event.event_id,
                responsible=responsible,
                note=note,
                cause=cause,
            )
        )

    def _opened(self) -> CaseState:
        assert self.state is not None, "stage changes apply only to an opened case"
        return self.state


def _measure(state: CaseState, config: WorkflowConfig, calendar: WorkingCalendar) -> None:
    """Limits, deadlines and durations of every visit, on the working-day calendar."""
    at_risk_days = config.at_risk_days(state.province)
    for visit in state.visits:
        flow = config.flow_named(visit.flow) or state.flow
        visit.limit_days = config.limit_days(flow, visit.stage, state.province)
        entered = local_date(visit.entered_at)
        if visit.limit_days is not None:
            visit.deadline = calendar.add_working_days(entered, visit.limit_days)
            visit.at_risk_from = calendar.subtract_working_days(visit.deadline.due, at_risk_days)
            visit.provisional = visit.deadline.provisional
        if visit.left_at is not None:
            left = local_date(visit.left_at)
            visit.duration_days = calendar.working_time(visit.entered_at, visit.left_at)
            visit.provisional = visit.provisional or calendar.spans_unpublished(entered, max(entered, left))
            if visit.deadline is not None:
                visit.over_limit = left > visit.deadline.due
    state.end_to_end = _end_to_end(state, config, calendar, at_risk_days)


def _end_to_end(
    state: CaseState, config: WorkflowConfig, calendar: WorkingCalendar, at_risk_days: int
) -> EndToEnd:
    """The end-to-end deadline: the commitment in working days after acceptance, plus the customer's works."""
    commitment = config.commitment_days(state.flow, state.province)
    works_days = state.earlier.customer_works_days
    for visit in state.visits:
        days = _customer_works_days(visit, state, config, calendar)
        if days is None:
            return EndToEnd(commitment, works_days, None, None)
        works_days += days
    deadline = calendar.add_working_days(local_date(state.opened_at), commitment + works_days)
    at_risk_from = calendar.subtract_working_days(deadline.due, at_risk_days)
    return EndToEnd(commitment, works_days, deadline, at_risk_from)


def _customer_works_days(
    visit: Visit, state: CaseState, config: WorkflowConfig, calendar: WorkingCalendar
) -> int | None:
    """Working days a visit of the customer's own works took; 0 for another stage, None while in it."""
    step = (config.flow_named(visit.flow) or state.flow).step(visit.stage)
    if step is None or not step.customer_works:
        return 0
    if visit.left_at is None:
        return None
    return calendar.working_days_after(local_date(visit.entered_at), local_date(visit.left_at))


def _attach_decisions(state: CaseState, decisions: Sequence[CaseEvent]) -> None:
    """Put the hub's assignments and alerts (the only events the hub keeps) into the timeline by time."""
    timeline = list(state.timeline)
    for event in decisions:
        entry: StageTransition
        if event.type == CASE_ASSIGNED:
            assignment = payload_of(event, SurveyAssignment)
            state.assignments.append(assignment)
            entry = StageTransition(
                application_no=state.application_no,
                position=0,
                at=assignment.assigned_at,
                kind=TimelineKind.ASSIGNED,
                stage_to=assignment.stage,
                visit=assignment.visit,
                source_system=event.system,
                source_event_id=event.event_id,
                responsible=f"{assignment.staff_name} ({assignment.staff_id}, {assignment.unit})",
                note=assignment.reason,
            )
        else:
            alert = payload_of(event, CaseAlert)
            state.alerts.add((alert.kind, alert.visit))
            entry = StageTransition(
                application_no=state.application_no,
                position=0,
                at=alert.detected_at,
                kind=TimelineKind(alert.kind.value),
                stage_to=alert.stage,
                visit=alert.visit,
                source_system=event.system,
                source_event_id=event.event_id,
                responsible=alert.responsible,
                note=(
                    f"{'end to end: ' if alert.scope is AlertScope.END_TO_END else ''}"
                    f"due {alert.deadline.isoformat()}"
                    f"{' (provisional)' if alert.deadline_provisional else ''}, "
                    f"{alert.working_days_left} working day(s) left of {alert.limit_days}"
                ),
            )
        index = len(timeline)
        while index > 0 and timeline[index - 1].at > entry.at:
            index -= 1
        timeline.insert(index, entry)
    state.timeline = [entry.model_copy(update={"position": index}) for index, entry in enumerate(timeline)]
