"""Case tracking: every application becomes a case, rebuilt from its stored events whenever one arrives.

The handler keeps each application or stage event in case_events and rebuilds the case from all of them
(workflow.fold), replacing its derived rows: cases, timeline, stage_visits and the analytics facts
(case_figures, workflow/facts.py). Stage entries the rebuilt timeline has and the previous one did not are
published as case.stage_changed through the outbox, in the same transaction. So duplicates change
nothing, and an event that arrives late takes its place in the timeline as if it had come in order.

With consistency rules configured, an application's case is checked against the customer record, the
grid and the other open cases after each rebuild, and a customer's open cases when its record changes
(workflow/findings.py); a transformer's projection update re-checks the cases whose findings name its
districts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache, partial
from importlib.metadata import version
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical_model.application import ConnectionApplication
from canonical_model.case import CaseOutcome, StageReport
from canonical_model.customer import Customer
from canonical_model.envelope import CloudEvent
from canonical_model.events import (
    APPLICATION_CHANGED,
    CASE_STAGE_CHANGED,
    CUSTOMER_CHANGED,
    PROJECTION_UPDATED,
    STAGE_REPORTED,
    channel_of,
    listed,
)
from canonical_model.projection import ProjectionUpdate
from ground.errors import InvalidRecordError
from ground.settings import Settings
from pipeline.decoded import DecodedEvent
from pipeline.outbox import defer_event, stage_event
from pipeline.records import EventDraft
from store.database import utcnow
from store.grid import cell_of
from store.locks import holds_key
from store.schema import case_events, case_figures, cases, customers, stage_visits, timeline
from workflow.config import WorkflowConfig, load_workflow_config
from workflow.consistency import ConsistencyConfig, address_key
from workflow.consistency_config import load_consistency_config
from workflow.events import HUB_SOURCE, CaseEvent
from workflow.facts import VisitFacts, case_facts, excess_days
from workflow.findings import TRANSFORMER_KIND, ConsistencyChecker
from workflow.fold import STAGE_ENTRY_KINDS, CaseState, fold_case
from workflow.workdays import WorkingCalendar

DEFAULT_EXCHANGE = "yekuo.events"
_UPDATE_CASE = cases.update().where(cases.c.application_no == sa.bindparam("key"))


def calendar_signature(calendar: WorkingCalendar) -> str:
    """Which calendar data a computation used, so provisional results are redone when that changes.

    It names the installed holidays package version too: an update can correct a published year's days.
    """
    years = sorted(calendar.published_years)
    published = f"{years[0]}-{years[-1]}/{len(years)}" if years else "none"
    return f"{published}@{version('holidays')}/dec{calendar.late_december_from}"


class CaseTracker:
    """Applies canonical events to cases; an instance is an InboxConsumer handler."""

    def __init__(
        self,
        config: WorkflowConfig,
        calendar: WorkingCalendar | None = None,
        *,
        exchange: str = DEFAULT_EXCHANGE,
        consistency: ConsistencyConfig | None = None,
    ) -> None:
        self.config = config
        self.calendar = calendar or WorkingCalendar(late_december_from=config.late_december_from)
        self.exchange = exchange
        # Without rules nothing is checked: the stage tracking works alone.
        self.checker = ConsistencyChecker(consistency, exchange) if consistency is not None else None
        self._handlers: dict[str, Callable[[Connection, DecodedEvent], None]] = {
            APPLICATION_CHANGED: self._application_changed,
            STAGE_REPORTED: self._stage_reported,
            CUSTOMER_CHANGED: self._customer_changed,
            PROJECTION_UPDATED: self._projection_updated,
        }

    def __call__(self, conn: Connection, decoded: DecodedEvent) -> None:
        """Apply one canonical event; an unknown type is an error, not a silent drop."""
        event = decoded.event
        handler = self._handlers.get(event.type)
        if handler is None:
            raise InvalidRecordError(
                f"workflow has no handler for event type {event.type} (event {event.id})"
            )
        handler(conn, decoded)

    def keys(self, conn: Connection, decoded: DecodedEvent) -> list[str]:
        """What an event changes, for the consumer's keyed locks (pipeline.consumer.KeyedHandler).

        A case's rows (events, case, timeline, visits, facts, findings) change under its case key. Findings
        are checked against the customer record, so whatever writes them holds the customer's key as well:
        an application its case's and its customer's, a customer record its own and its open cases', and a
        transformer change its own and those of the cases whose grid findings name its districts. Each
        event's first key comes from its payload alone, so a duplicate waits for its twin on it.
        The handlers change only the cases whose keys the transaction holds (may_change): a case that
        joined the customer or the district after these reads is checked at its own next event.
        """
        event = decoded.event
        if event.type == APPLICATION_CHANGED:
            application = decoded.payload_as(ConnectionApplication)
            return [case_key(application.application_no), customer_key(application.customer_no)]
        if event.type == STAGE_REPORTED:
            return [case_key(decoded.payload_as(StageReport).application_no)]
        if event.type == CUSTOMER_CHANGED:
            customer_no = decoded.payload_as(Customer).customer_no
            opened = self.checker.open_cases_of_customer(conn, customer_no) if self.checker else []
            return [customer_key(customer_no), *map(case_key, opened)]
        if event.type != PROJECTION_UPDATED or self.checker is None:
            return []
        update = decoded.payload_as(ProjectionUpdate)
        if update.equipment_kind != TRANSFORMER_KIND:
            return []
        concerned = self.checker.cases_concerned(conn, update.equipment_id)
        return [
            transformer_key(update.equipment_id),
            *map(case_key, concerned),
            *map(customer_key, set(concerned.values())),
        ]

    def may_change(self, conn: Connection, application_no: str, customer_no: str) -> bool:
        """Whether conn's transaction holds the keys to change a case's findings (see keys)."""
        return holds_key(conn, case_key(application_no)) and holds_key(conn, customer_key(customer_no))

    def record(self, conn: Connection, event: CaseEvent) -> bool:
        """Keep an event of a case; False when it is kept already."""
        exists = conn.execute(
            sa.select(case_events.c.event_id).where(case_events.c.event_id == event.event_id)
        ).first()
        if exists is not None:
            return False
        conn.execute(
            case_events.insert(),
            {
                "event_id": event.event_id,
                "application_no": event.application_no,
                "source": event.source,
                "sequence": event.sequence,
                "event_type": event.type,
                "time": event.time,
                "visit": event.visit,
                "data": dict(event.data),
                "received_at": utcnow(),
            },
        )
        return True

    def events_of(self, conn: Connection, application_no: str) -> list[CaseEvent]:
        """Every kept event of a case."""
        rows = conn.execute(
            sa.select(case_events).where(case_events.c.application_no == application_no)
        ).all()
        return [
            CaseEvent(
                event_id=row.event_id,
                application_no=row.application_no,
                source=row.source,
                sequence=row.sequence,
                type=row.event_type,
                time=row.time,
                data=row.data,
                visit=row.visit,
            )
            for row in rows
        ]

    def rebuild(
        self, conn: Connection, application_no: str, *, correlation_id: str, arrived: CaseEvent | None = None
    ) -> CaseState | None:
        """Rebuild a case from its kept events, store it, and publish its new stage entries.

        arrived: the event just kept, whose payload is decoded already; the others are read back.
        """
        events = self.events_of(conn, application_no)
        if arrived is not None:
            events = [arrived if event.event_id == arrived.event_id else event for event in events]
        state = fold_case(events, self.config, self.calendar)
        if state is None:
            return None
        published = {
            (row.source_event_id, row.kind, row.stage_from, row.stage_to, row.at)
            for row in conn.execute(
                sa.select(
                    timeline.c.source_event_id,
                    timeline.c.kind,
                    timeline.c.stage_from,
                    timeline.c.stage_to,
                    timeline.c.at,
                ).where(timeline.c.application_no == application_no)
            )
        }
        self._store(conn, state, len(events))
        for entry in state.timeline:
            key = (entry.source_event_id, entry.kind.value, entry.stage_from, entry.stage_to, entry.at)
            if entry.kind in STAGE_ENTRY_KINDS and entry.visit is not None and key not in published:
                # Deferred: a consumer's batch stages all its stage changes in one round trip at its end.
                defer_event(
                    conn,
                    self._draft(
                        state,
                        CASE_STAGE_CHANGED,
                        entry.model_dump(mode="json"),
                        entry.at,
                    ),
                    correlation_id=correlation_id,
                )
        return state

    def publish(
        self,
        conn: Connection,
        state: CaseState,
        event_type: str,
        data: dict[str, Any],
        *,
        correlation_id: str,
        time: datetime | None = None,
    ) -> CloudEvent:
        """Stage one of the hub's case events in the outbox."""
        return stage_event(conn, self._draft(state, event_type, data, time), correlation_id=correlation_id)

    def _draft(
        self, state: CaseState, event_type: str, data: dict[str, Any], time: datetime | None
    ) -> EventDraft:
        return EventDraft(
            event_type=event_type,
            source=HUB_SOURCE,
            subject=state.application_no,
            dataschema=listed(event_type).dataschema,
            data=data,
            exchange=self.exchange,
            routing_key=channel_of(event_type).key(customer_class=state.application.customer_class.value),
            time=time,
        )

    def _application_changed(self, conn: Connection, decoded: DecodedEvent) -> None:
        event = decoded.event
        application = decoded.payload_as(ConnectionApplication)
        stored = CaseEvent.of(event, application.application_no, application.updated_at, payload=application)
        if not self.record(conn, stored):
            return
        state = self.rebuild(
            conn, application.application_no, correlation_id=event.correlationid, arrived=stored
        )
        if state is None or self.checker is None:
            return
        # The folded application is the latest record, whatever order the events arrived in. A late older
        # version naming another customer changes nothing the latest one's check did not see.
        if self.may_change(conn, state.application_no, state.application.customer_no):
            self.checker.check_application(conn, state.application, correlation_id=event.correlationid)

    def _customer_changed(self, conn: Connection, decoded: DecodedEvent) -> None:
        customer = apply_customer_changed(conn, decoded)
        if self.checker is not None:
            self.checker.check_customer(
                conn,
                customer.customer_no,
                correlation_id=decoded.event.correlationid,
                may_change=partial(self.may_change, conn),
            )

    def _projection_updated(self, conn: Connection, decoded: DecodedEvent) -> None:
        update = decoded.payload_as(ProjectionUpdate)
        if self.checker is not None and update.equipment_kind == TRANSFORMER_KIND:
            self.checker.check_grid_change(
                conn,
                update.equipment_id,
                correlation_id=decoded.event.correlationid,
                may_change=partial(self.may_change, conn),
            )

    def _stage_reported(self, conn: Connection, decoded: DecodedEvent) -> None:
        event = decoded.event
        report = decoded.payload_as(StageReport)
        stored = CaseEvent.of(event, report.application_no, report.at, payload=report)
        if self.record(conn, stored):
            self.rebuild(conn, report.application_no, correlation_id=event.correlationid, arrived=stored)

    def _store(self, conn: Connection, state: CaseState, event_count: int) -> None:
        application_no = state.application_no
        visit = state.visit
        application = state.application
        end_to_end = state.end_to_end
        assert end_to_end is not None, "a folded case is always measured"
        site = application.site_location
        values: dict[str, Any] = {
            "customer_no": application.customer_no,
            "customer_class": application.customer_class.value,
            "business_type": application.business_type.value,
            "importance_grade": application.importance_grade.value,
            "flow": state.flow.name,
            "province": state.province.id if state.province else None,
            "status": state.status.value,
            "stage": visit.stage,
            "stage_visit": visit.key,
            "stage_entered_at": visit.entered_at,
            "stage_limit_days": visit.limit_days,
            "deadline": visit.deadline.due if visit.deadline else None,
            "at_risk_from": visit.at_risk_from,
            "deadline_provisional": bool(visit.deadline and visit.deadline.provisional),
            "provisional": state.provisional,
            "calendar": calendar_signature(self.calendar),
            "end_to_end_commitment_days": end_to_end.commitment_days,
            "end_to_end_deadline": end_to_end.deadline.due if end_to_end.deadline else None,
            "end_to_end_at_risk_from": end_to_end.at_risk_from,
            "end_to_end_provisional": bool(end_to_end.deadline and end_to_end.deadline.provisional),
            "opened_at": state.opened_at,
            "closed_at": state.closed_at,
            "outcome": state.outcome.value if state.outcome else None,
            "updated_at": utcnow(),
            "responsible": application.org_no,
            "assignee": state.assignee,
            "survey_pending": state.survey_pending,
            "rework_count": state.rework_count,
            "anomaly_count": len(state.anomalies),
            "event_count": event_count,
            "application": application.model_dump(mode="json", exclude_none=True),
            "anomalies": [anomaly.model_dump(mode="json") for anomaly in state.anomalies],
            "site_cell": cell_of(site.lon, site.lat) if site is not None else None,
            "address_key": address_key(application.site_address),
        }
        # Statements with bound parameters (not inline values) are compiled once and reused from the cache.
        updated = conn.execute(_UPDATE_CASE, {"key": application_no, **values})
        if updated.rowcount == 0:
            conn.execute(cases.insert(), {"application_no": application_no, **values})
        conn.execute(timeline.delete().where(timeline.c.application_no == application_no))
        conn.execute(
            timeline.insert(),
            [
                {
                    "application_no": application_no,
                    "position": entry.position,
                    "at": entry.at,
                    "kind": entry.kind.value,
                    "stage_from": entry.stage_from,
                    "stage_to": entry.stage_to,
                    "visit": entry.visit,
                    "source_system": entry.source_system,
                    "source_event_id": entry.source_event_id,
                    "responsible": entry.responsible,
                    "note": entry.note,
                    "cause": entry.cause.value if entry.cause else None,
                }
                for entry in state.timeline
            ],
        )
        visits = [
            {
                "application_no": application_no,
                "ordinal": ordinal,
                "visit": item.key,
                "stage": item.stage,
                "flow": item.flow,
                "customer_class": application.customer_class.value,
                "unit": item.unit,
                "entered_at": item.entered_at,
                "left_at": item.left_at,
                "exit_kind": item.exit_kind.value if item.exit_kind else None,
                "exit_cause": item.exit_cause.value if item.exit_cause else None,
                "observed": item.observed,
                "limit_days": item.limit_days,
                "deadline": item.deadline.due if item.deadline else None,
                "duration_days": item.duration_days,
                "over_limit": item.over_limit,
                # Terminal stages have no limit and are never left: no work to measure against a deadline.
                "excess_days": excess_days(self.calendar, item.deadline.due, item.left_at)
                if item.observed and item.deadline is not None and item.limit_days is not None
                else None,
            }
            for ordinal, item in enumerate(state.visits)
        ]
        conn.execute(stage_visits.delete().where(stage_visits.c.application_no == application_no))
        conn.execute(stage_visits.insert(), visits)
        facts = case_facts(
            application_no=application_no,
            customer_class=values["customer_class"],
            unit=values["responsible"],
            flow=state.flow,
            opened_at=state.opened_at,
            closed_at=state.closed_at,
            energised_at=state.closed_at if state.outcome is CaseOutcome.ENERGISED else None,
            end_to_end_deadline=values["end_to_end_deadline"],
            visits=[
                VisitFacts(
                    stage=item.stage,
                    entered_at=item.entered_at,
                    left_at=item.left_at,
                    exit_kind=item.exit_kind.value if item.exit_kind else None,
                    observed=item.observed,
                    duration_days=item.duration_days,
                )
                for item in state.visits
            ],
            calendar=self.calendar,
        )
        conn.execute(case_figures.delete().where(case_figures.c.application_no == application_no))
        conn.execute(case_figures.insert(), facts.row())


def apply_customer_changed(conn: Connection, decoded: DecodedEvent) -> Customer:
    """Keep the latest customer document for the API, ignoring updates older than the one stored."""
    event = decoded.event
    customer = decoded.payload_as(Customer)
    document = customer.model_dump(mode="json", exclude_none=True)
    row = conn.execute(
        sa.select(customers.c.last_sequence).where(customers.c.customer_no == customer.customer_no)
    ).first()
    if row is None:
        conn.execute(
            customers.insert().values(
                customer_no=customer.customer_no,
                document=document,
                last_sequence=event.sequence,
                updated_at=utcnow(),
            )
        )
    elif event.sequence > row.last_sequence:
        conn.execute(
            customers.update()
            .where(customers.c.customer_no == customer.customer_no)
            .values(document=document, last_sequence=event.sequence, updated_at=utcnow())
        )
    return customer


def case_key(application_no: str) -> str:
    """The keyed lock of a case's rows."""
    return f"workflow.case:{application_no}"


def customer_key(customer_no: str) -> str:
    """The keyed lock of a customer's record and of the findings checked against it."""
    return f"workflow.customer:{customer_no}"


def transformer_key(equipment_id: str) -> str:
    """The keyed lock of a transformer's changes, as the workflow re-checks findings for them."""
    return f"workflow.transformer:{equipment_id}"


@cache
def default_tracker() -> CaseTracker:
    """The tracker over the configuration and exchange named by the environment (YEKUO_CONFIG_DIR ...)."""
    settings = Settings()
    return CaseTracker(
        load_workflow_config(settings.config_dir),
        exchange=settings.exchange,
        consistency=load_consistency_config(settings.config_dir),
    )


def handle_event(conn: Connection, decoded: DecodedEvent) -> None:
    """The workflow consumer's handler: the default tracker, loaded on first use."""
    default_tracker()(conn, decoded)


def keys_of_event(conn: Connection, decoded: DecodedEvent) -> list[str]:
    """The keys the workflow consumer's handler changes for an event (CaseTracker.keys)."""
    return default_tracker().keys(conn, decoded)
