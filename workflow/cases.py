"""Case tracking: every application becomes a case, built from its stored events as they arrive.

The handler keeps each application or stage event in case_events and applies it to the case. An event
that comes in order (workflow.fold.FoldPoint.follows) continues the fold from the point the case row
keeps: the handler adds its timeline entries and visits, updates the visit it left, the case row and the
analytics facts (case_figures, workflow/facts.py), so its cost does not grow with the case's history.
An event that arrives late, one that finds the point folded under another workflow configuration or
calendar (fold_signature), and a replay (rebuild) fold the case from all its events instead (workflow.fold)
and replace its derived rows. Either way the stage entries the timeline gains are published as
case.stage_changed through the outbox, in the same transaction. So duplicates change nothing, and an event
that arrives late takes its place in the timeline as if it had come in order.

With consistency rules configured, an application's case is checked against the customer record, the
grid and the other open cases after each rebuild, and a customer's open cases when its record changes
(workflow/findings.py); a transformer's projection update re-checks the cases whose findings name its
districts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import fields, is_dataclass
from datetime import datetime
from enum import Enum
from functools import cache, partial
from importlib.metadata import version
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from canonical_model.application import ConnectionApplication
from canonical_model.case import CaseOutcome, StageReport, StageTransition
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
from store.schema import case_events, case_figures, cases, customers, kept_time, stage_visits, timeline
from workflow.config import WorkflowConfig, load_workflow_config
from workflow.consistency import ConsistencyConfig, address_key
from workflow.consistency_config import load_consistency_config
from workflow.events import HUB_SOURCE, CaseEvent
from workflow.facts import CaseFacts, VisitFacts, case_facts, excess_days
from workflow.findings import TRANSFORMER_KIND, ConsistencyChecker
from workflow.fold import (
    STAGE_ENTRY_KINDS,
    CaseState,
    FoldPoint,
    Visit,
    continue_fold,
    fold_case,
    fold_point,
)
from workflow.workdays import WorkingCalendar

DEFAULT_EXCHANGE = "yekuo.events"
# MySQL and MariaDB have no insert that skips only one constraint's conflicts: they read first.
_INSERT_NEW_EVENT = {
    "postgresql": postgresql.insert(case_events).on_conflict_do_nothing(index_elements=["event_id"]),
    "sqlite": sqlite.insert(case_events).on_conflict_do_nothing(index_elements=["event_id"]),
}
# Statements with bound parameters (not inline values) are compiled once and reused from the cache.
_UPDATE_CASE = cases.update().where(cases.c.application_no == sa.bindparam("key"))
_UPDATE_VISIT = stage_visits.update().where(
    stage_visits.c.application_no == sa.bindparam("key"), stage_visits.c.ordinal == sa.bindparam("at")
)
_UPDATE_FIGURES = case_figures.update().where(case_figures.c.application_no == sa.bindparam("key"))
_FOLD_OF = sa.select(
    cases.c.fold_state, cases.c.event_count, cases.c.customer_class, cases.c.application, cases.c.anomalies
).where(cases.c.application_no == sa.bindparam("key"))
_EVENTS_OF = sa.select(case_events).where(case_events.c.application_no == sa.bindparam("key"))
_PUBLISHED_ENTRIES = sa.select(
    timeline.c.source_event_id, timeline.c.kind, timeline.c.stage_from, timeline.c.stage_to, timeline.c.at
).where(timeline.c.application_no == sa.bindparam("key"))
# What a rebuild replaces: every derived row of the case.
_DERIVED_ROWS = tuple(
    table.delete().where(table.c.application_no == sa.bindparam("key"))
    for table in (timeline, stage_visits, case_figures)
)
_CUSTOMER_SEQUENCE = sa.select(customers.c.last_sequence).where(
    customers.c.customer_no == sa.bindparam("key")
)
_UPDATE_CUSTOMER = customers.update().where(customers.c.customer_no == sa.bindparam("key"))
_RECLASS_VISITS = (
    stage_visits.update()
    .where(stage_visits.c.application_no == sa.bindparam("key"))
    .values(customer_class=sa.bindparam("class_"))
)
_EARLIER_VISITS = (
    sa.select(
        stage_visits.c.stage,
        stage_visits.c.entered_at,
        stage_visits.c.left_at,
        stage_visits.c.exit_kind,
        stage_visits.c.observed,
    )
    .where(
        stage_visits.c.application_no == sa.bindparam("key"), stage_visits.c.ordinal < sa.bindparam("before")
    )
    .order_by(stage_visits.c.ordinal)
)


def calendar_signature(calendar: WorkingCalendar) -> str:
    """Which calendar data a computation used, so provisional results are redone when that changes.

    It names the installed holidays package version too: an update can correct a published year's days.
    """
    years = sorted(calendar.published_years)
    published = f"{years[0]}-{years[-1]}/{len(years)}" if years else "none"
    return f"{published}@{_holidays_version()}/dec{calendar.late_december_from}"


@cache
def _holidays_version() -> str:
    # Read from the package metadata on disk; the imported package cannot change under a running process.
    return version("holidays")


def fold_signature(config: WorkflowConfig, calendar: WorkingCalendar) -> str:
    """What a case's fold depends on besides its events: the workflow configuration and the calendar.

    A case's fold point keeps it (workflow.fold.FoldPoint), so a case folded under another one is rebuilt
    at its next event. Every process computes the same signature from the same files.
    """
    document = json.dumps(_plain(config), separators=(",", ":"))
    return f"{hashlib.sha256(document.encode()).hexdigest()[:16]}/{calendar_signature(calendar)}"


def _plain(value: object) -> object:
    """A configuration value as JSON values, sets sorted: their order differs between processes."""
    if is_dataclass(value) and not isinstance(value, type):
        return {item.name: _plain(getattr(value, item.name)) for item in fields(value)}
    if isinstance(value, Mapping):
        return [[_plain(key), _plain(item)] for key, item in value.items()]
    if isinstance(value, set | frozenset):
        return sorted((_plain(item) for item in value), key=json.dumps)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    return value


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
        self.signature = fold_signature(config, self.calendar)
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
        """Keep an event of a case; False when it is kept already.

        A hub decision that another process made first for the same visit still raises IntegrityError
        (uq_case_events_decision): only a kept event id is taken as kept.
        """
        row = {
            "event_id": event.event_id,
            "application_no": event.application_no,
            "source": event.source,
            "sequence": event.sequence,
            "event_type": event.type,
            "time": event.time,
            "visit": event.visit,
            "data": dict(event.data),
            "received_at": utcnow(),
        }
        insert = _INSERT_NEW_EVENT.get(conn.dialect.name)
        if insert is not None:
            # One round trip instead of a read then an insert.
            return bool(conn.execute(insert, row).rowcount)
        exists = conn.execute(
            sa.select(case_events.c.event_id).where(case_events.c.event_id == event.event_id)
        ).first()
        if exists is not None:
            return False
        conn.execute(case_events.insert(), row)
        return True

    def events_of(self, conn: Connection, application_no: str) -> list[CaseEvent]:
        """Every kept event of a case."""
        rows = conn.execute(_EVENTS_OF, {"key": application_no}).all()
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
        self,
        conn: Connection,
        application_no: str,
        *,
        correlation_id: str,
        arrived: CaseEvent | None = None,
        stored: bool = True,
    ) -> CaseState | None:
        """Rebuild a case from its kept events, store it, and publish its new stage entries.

        arrived: the event just kept, whose payload is decoded already; the others are read back.
        stored: False when the case has no row yet, and so no derived rows to read or replace.
        """
        events = self.events_of(conn, application_no)
        if arrived is not None:
            events = [arrived if event.event_id == arrived.event_id else event for event in events]
        state = fold_case(events, self.config, self.calendar)
        if state is None:
            return None
        published = (
            {
                (row.source_event_id, row.kind, row.stage_from, row.stage_to, row.at)
                for row in conn.execute(_PUBLISHED_ENTRIES, {"key": application_no})
            }
            if stored
            else set()
        )
        self._store(
            conn, state, fold_point(state, events, self.config, self.calendar, self.signature), stored=stored
        )
        self._publish_entries(
            conn,
            state,
            [
                entry
                for entry in state.timeline
                if (
                    entry.source_event_id,
                    entry.kind.value,
                    entry.stage_from,
                    entry.stage_to,
                    kept_time(conn.dialect, entry.at),
                )
                not in published
            ],
            correlation_id,
        )
        return state

    def apply(self, conn: Connection, arrived: CaseEvent, *, correlation_id: str) -> CaseState | None:
        """Apply an event just kept to its case: from the case's fold point when it comes in order, else
        by a rebuild. Returns the case as after a rebuild, but holding only the visits from the one the
        event found the case in on, and only its new timeline entries, when continued.

        The caller holds the case's key (keys), so the point read here is the one the update replaces.
        """
        row = conn.execute(_FOLD_OF, {"key": arrived.application_no}).first()
        if row is not None and row.fold_state is not None:
            point = FoldPoint.of_document(row.fold_state)
            # A new version of the application replaces the stored one before anything reads it.
            payload = arrived.payload
            application = (
                payload
                if isinstance(payload, ConnectionApplication)
                else ConnectionApplication.model_validate(row.application)
            )
            continued = (
                continue_fold(point, application, arrived, self.config, self.calendar, self.signature)
                if point.events == row.event_count
                else None
            )
            if continued is not None:
                state, following = continued
                self._store_continued(conn, state, following, row.anomalies)
                if row.customer_class != state.application.customer_class.value:
                    # Every visit row carries the case's customer class, as the figures group by it.
                    conn.execute(
                        _RECLASS_VISITS,
                        {"key": state.application_no, "class_": state.application.customer_class.value},
                    )
                self._publish_entries(conn, state, state.timeline, correlation_id)
                return state
        return self.rebuild(
            conn,
            arrived.application_no,
            correlation_id=correlation_id,
            arrived=arrived,
            stored=row is not None,
        )

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

    def _publish_entries(
        self, conn: Connection, state: CaseState, entries: list[StageTransition], correlation_id: str
    ) -> None:
        for entry in entries:
            if entry.kind in STAGE_ENTRY_KINDS and entry.visit is not None:
                # Deferred: a consumer's batch stages all its stage changes in one round trip at its end.
                defer_event(
                    conn,
                    self._draft(state, CASE_STAGE_CHANGED, entry.model_dump(mode="json"), entry.at),
                    correlation_id=correlation_id,
                )

    def _application_changed(self, conn: Connection, decoded: DecodedEvent) -> None:
        event = decoded.event
        application = decoded.payload_as(ConnectionApplication)
        stored = CaseEvent.of(
            event,
            application.application_no,
            kept_time(conn.dialect, application.updated_at),
            payload=application,
        )
        if not self.record(conn, stored):
            return
        state = self.apply(conn, stored, correlation_id=event.correlationid)
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
        stored = CaseEvent.of(
            event, report.application_no, kept_time(conn.dialect, report.at), payload=report
        )
        if self.record(conn, stored):
            self.apply(conn, stored, correlation_id=event.correlationid)

    def _store(self, conn: Connection, state: CaseState, point: FoldPoint, *, stored: bool) -> None:
        """Replace every derived row of a case folded from all its events (stored: see rebuild)."""
        application_no = state.application_no
        values = self._case_values(state, point)
        values["anomalies"] = [anomaly.model_dump(mode="json") for anomaly in state.anomalies]
        values["anomaly_count"] = len(state.anomalies)
        updated = conn.execute(_UPDATE_CASE, {"key": application_no, **values}) if stored else None
        if updated is None or updated.rowcount == 0:
            conn.execute(cases.insert(), {"application_no": application_no, **values})
        if stored:
            for delete in _DERIVED_ROWS:
                conn.execute(delete, {"key": application_no})
        conn.execute(timeline.insert(), self._timeline_rows(conn.dialect, state))
        conn.execute(stage_visits.insert(), self._visit_rows(conn.dialect, state, state.visits))
        conn.execute(
            case_figures.insert(),
            self._facts(state, [_visit_facts(conn.dialect, v) for v in state.visits]).row(),
        )

    def _store_continued(
        self, conn: Connection, state: CaseState, point: FoldPoint, anomalies: list[dict[str, Any]]
    ) -> None:
        """Write what one more event changed of a case (continue_fold): the case row, the new timeline
        entries and visits, the visit it left, and the facts."""
        application_no = state.application_no
        values = self._case_values(state, point)
        if state.anomalies:
            anomalies = [*anomalies, *(anomaly.model_dump(mode="json") for anomaly in state.anomalies)]
            values["anomalies"] = anomalies
            values["anomaly_count"] = len(anomalies)
        conn.execute(_UPDATE_CASE, {"key": application_no, **values})
        if state.timeline:
            conn.execute(timeline.insert(), self._timeline_rows(conn.dialect, state))
        left, *entered = state.visits
        if entered:
            # Only leaving changes the visit the event found the case in: its limits follow the province.
            [row] = self._visit_rows(conn.dialect, state, [left])
            conn.execute(_UPDATE_VISIT, {"key": application_no, "at": row["ordinal"], **row})
            conn.execute(stage_visits.insert(), self._visit_rows(conn.dialect, state, entered, start=1))
        visits = [_visit_facts(conn.dialect, visit) for visit in state.visits]
        if state.outcome is CaseOutcome.ENERGISED and state.earlier.visits:
            # The facts of an energised case read all its visits; the earlier ones are stored.
            rows = conn.execute(_EARLIER_VISITS, {"key": application_no, "before": state.earlier.visits})
            visits = [
                VisitFacts(row.stage, row.entered_at, row.left_at, row.exit_kind, row.observed)
                for row in rows
            ] + visits
        conn.execute(_UPDATE_FIGURES, {"key": application_no, **self._facts(state, visits).row()})

    def _case_values(self, state: CaseState, point: FoldPoint) -> dict[str, Any]:
        visit = state.visit
        application = state.application
        end_to_end = state.end_to_end
        assert end_to_end is not None, "a folded case is always measured"
        site = application.site_location
        return {
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
            "event_count": point.events,
            "application": application.model_dump(mode="json", exclude_none=True),
            "site_cell": cell_of(site.lon, site.lat) if site is not None else None,
            "site_lat": site.lat if site is not None else None,
            "site_lon": site.lon if site is not None else None,
            "address_key": address_key(application.site_address),
            "fold_state": point.document(),
        }

    def _timeline_rows(self, dialect: sa.Dialect, state: CaseState) -> list[dict[str, Any]]:
        # Times are bound at the store's precision, so a rebuild finds the entries it published (rebuild).
        return [
            {
                "application_no": state.application_no,
                "position": entry.position,
                "at": kept_time(dialect, entry.at),
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
        ]

    def _visit_rows(
        self, dialect: sa.Dialect, state: CaseState, visits: list[Visit], start: int = 0
    ) -> list[dict[str, Any]]:
        """Rows of some of the visits state holds, visits[0] being its start-th.

        Their times are bound at the store's precision, as the facts read them (_visit_facts).
        """
        first = state.earlier.visits + start
        return [
            {
                "application_no": state.application_no,
                "ordinal": first + index,
                "visit": item.key,
                "stage": item.stage,
                "flow": item.flow,
                "customer_class": state.application.customer_class.value,
                "unit": item.unit,
                "entered_at": kept_time(dialect, item.entered_at),
                "left_at": kept_time(dialect, item.left_at) if item.left_at else None,
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
            for index, item in enumerate(visits)
        ]

    def _facts(self, state: CaseState, visits: list[VisitFacts]) -> CaseFacts:
        end_to_end = state.end_to_end
        assert end_to_end is not None, "a folded case is always measured"
        return case_facts(
            application_no=state.application_no,
            customer_class=state.application.customer_class.value,
            unit=state.application.org_no,
            flow=state.flow,
            opened_at=state.opened_at,
            closed_at=state.closed_at,
            energised_at=state.closed_at if state.outcome is CaseOutcome.ENERGISED else None,
            end_to_end_deadline=end_to_end.deadline.due if end_to_end.deadline else None,
            visits=visits,
            calendar=self.calendar,
        )


def _visit_facts(dialect: sa.Dialect, visit: Visit) -> VisitFacts:
    # At the store's precision: a continued case reads its earlier visits back from the store.
    return VisitFacts(
        stage=visit.stage,
        entered_at=kept_time(dialect, visit.entered_at),
        left_at=kept_time(dialect, visit.left_at) if visit.left_at else None,
        exit_kind=visit.exit_kind.value if visit.exit_kind else None,
        observed=visit.observed,
    )


def apply_customer_changed(conn: Connection, decoded: DecodedEvent) -> Customer:
    """Keep the latest customer document for the API, ignoring updates older than the one stored."""
    event = decoded.event
    customer = decoded.payload_as(Customer)
    document = customer.model_dump(mode="json", exclude_none=True)
    row = conn.execute(_CUSTOMER_SEQUENCE, {"key": customer.customer_no}).first()
    values = {"document": document, "last_sequence": event.sequence, "updated_at": utcnow()}
    if row is None:
        conn.execute(customers.insert(), {"customer_no": customer.customer_no, **values})
    elif event.sequence > row.last_sequence:
        conn.execute(_UPDATE_CUSTOMER, {"key": customer.customer_no, **values})
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
