"""Periodic workflow duties: survey assignment, at-risk and overdue alerts, and provisional deadline refresh.

Alerts watch two deadlines of every open case: its current stage's limit, and its end-to-end commitment
(scope end_to_end, visit 'end_to_end'), each alerted at risk once and overdue once.

Each duty is a decision of the hub. It is kept as an event of the case (case_events, source /hub/workflow)
and published through the outbox in the same transaction, so a rebuilt case shows it and it is never made
twice: case_events allows one assignment and one alert of each kind per stage visit (and per case for
the end-to-end deadline).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from canonical_model.case import AlertKind, AlertScope, CaseAlert, CaseStatus
from canonical_model.events import CASE_ASSIGNED, CASE_AT_RISK, CASE_OVERDUE
from store.database import utcnow
from store.locks import lock_keys
from store.schema import cases
from workflow.assignment import choose_assignee, open_workload
from workflow.cases import CaseTracker, calendar_signature, case_key, default_tracker
from workflow.events import CaseEvent
from workflow.fold import END_TO_END, CaseState, fold_case
from workflow.workdays import local_date

log = logging.getLogger(__name__)

_ALERT_TYPES = {AlertKind.AT_RISK: CASE_AT_RISK, AlertKind.OVERDUE: CASE_OVERDUE}


@dataclass
class TickReport:
    """What one monitoring pass did."""

    refreshed: int = 0
    assigned: int = 0
    unassigned: list[str] = field(default_factory=list)
    at_risk: int = 0
    overdue: int = 0
    interrupted: bool = False


class CaseMonitor:
    """Runs the periodic duties over every open case; tick() is one pass in one transaction."""

    def __init__(self, engine: Engine, tracker: CaseTracker) -> None:
        self._engine = engine
        self.tracker = tracker

    def tick(
        self, now: datetime | None = None, *, stopping: Callable[[], bool] = lambda: False
    ) -> TickReport:
        """One pass at `now` (default: the current time).

        Each case is handled in a transaction of its own that first takes the case's keyed lock, as the
        consumer does, so a pass never holds up the consumer for longer than one case. A pass over
        many cases stops between two of them once stopping() is true (the report says it was interrupted),
        so a hub shutting down does not wait for the whole pass.
        """
        moment = now or utcnow()
        report = TickReport()
        correlation_id = str(uuid.uuid4())
        today = local_date(moment)
        signature = calendar_signature(self.tracker.calendar)
        with self._engine.connect() as conn:
            stale = list(
                conn.execute(
                    sa.select(cases.c.application_no).where(
                        cases.c.provisional.is_(True), cases.c.calendar != signature
                    )
                ).scalars()
            )
            pending = list(
                conn.execute(
                    sa.select(cases.c.application_no)
                    .where(cases.c.survey_pending.is_(True))
                    .order_by(cases.c.stage_entered_at, cases.c.application_no)
                ).scalars()
            )
            due = list(
                conn.execute(
                    sa.select(cases.c.application_no)
                    .where(
                        cases.c.status == CaseStatus.OPEN.value,
                        sa.or_(cases.c.at_risk_from <= today, cases.c.end_to_end_at_risk_from <= today),
                    )
                    .order_by(cases.c.deadline, cases.c.application_no)
                ).scalars()
            )
            workload = open_workload(conn)
        for application_no in _while_running(stale, stopping, report):
            with self._engine.begin() as conn:
                _lock_case(conn, application_no)
                self.tracker.rebuild(conn, application_no, correlation_id=correlation_id)
                report.refreshed += 1
        for application_no in _while_running(pending, stopping, report):
            with self._engine.begin() as conn:
                _lock_case(conn, application_no)
                self._assign(conn, application_no, moment, correlation_id, workload, report)
        if report.unassigned:
            log.warning(
                "no staff free for the survey of %d case(s), e.g. %s",
                len(report.unassigned),
                report.unassigned[0],
            )
        for application_no in _while_running(due, stopping, report):
            with self._engine.begin() as conn:
                _lock_case(conn, application_no)
                self._alert(conn, application_no, today, moment, correlation_id, report)
        return report

    def _assign(
        self,
        conn: Connection,
        application_no: str,
        now: datetime,
        correlation_id: str,
        workload: dict[str, int],
        report: TickReport,
    ) -> None:
        state = self._state(conn, application_no)
        if state is None or not state.survey_pending:
            return
        assignment = choose_assignee(state, self.tracker.config.staff, workload, now)
        if assignment is None:
            report.unassigned.append(application_no)
            return
        if self._decide(
            conn,
            state,
            CASE_ASSIGNED,
            assignment.model_dump(mode="json"),
            assignment.visit,
            now,
            correlation_id,
        ):
            workload[assignment.staff_id] = workload.get(assignment.staff_id, 0) + 1
            report.assigned += 1

    def _alert(
        self,
        conn: Connection,
        application_no: str,
        today: date,
        now: datetime,
        correlation_id: str,
        report: TickReport,
    ) -> None:
        state = self._state(conn, application_no)
        if state is None:
            return
        kind = self._alert_due(state, today)
        if kind is not None:
            self._raise(conn, state, self._alert_of(state, kind, today, now), now, correlation_id, report)
            # The next decision is published against the case as it now stands, this alert included.
            state = self._state(conn, application_no)
            if state is None:
                return
        overall = self._end_to_end_due(state, today)
        if overall is not None:
            alert = self._end_to_end_alert_of(state, overall, today, now)
            self._raise(conn, state, alert, now, correlation_id, report)

    def _raise(
        self,
        conn: Connection,
        state: CaseState,
        alert: CaseAlert,
        now: datetime,
        correlation_id: str,
        report: TickReport,
    ) -> None:
        kind = alert.kind
        if self._decide(
            conn,
            state,
            _ALERT_TYPES[kind],
            alert.model_dump(mode="json"),
            alert.visit,
            now,
            correlation_id,
        ):
            if kind is AlertKind.OVERDUE:
                report.overdue += 1
            else:
                report.at_risk += 1

    @staticmethod
    def _alert_due(state: CaseState, today: date) -> AlertKind | None:
        """The alert the current visit needs now and has not had: overdue once, at risk once before that."""
        visit = state.visit
        if state.status is not CaseStatus.OPEN or visit.deadline is None or visit.at_risk_from is None:
            return None
        raised = {kind for kind, key in state.alerts if key == visit.key}
        if today > visit.deadline.due:
            return None if AlertKind.OVERDUE in raised else AlertKind.OVERDUE
        if today >= visit.at_risk_from and not raised:
            return AlertKind.AT_RISK
        return None

    @staticmethod
    def _end_to_end_due(state: CaseState, today: date) -> AlertKind | None:
        """The end-to-end alert the case needs now and has not had; none while the customer's works run."""
        overall = state.end_to_end
        if state.status is not CaseStatus.OPEN or overall is None or overall.deadline is None:
            return None
        raised = {kind for kind, key in state.alerts if key == END_TO_END}
        if today > overall.deadline.due:
            return None if AlertKind.OVERDUE in raised else AlertKind.OVERDUE
        if overall.at_risk_from is not None and today >= overall.at_risk_from and not raised:
            return AlertKind.AT_RISK
        return None

    def _end_to_end_alert_of(
        self, state: CaseState, kind: AlertKind, today: date, now: datetime
    ) -> CaseAlert:
        overall = state.end_to_end
        assert overall is not None and overall.deadline is not None
        return CaseAlert(
            application_no=state.application_no,
            kind=kind,
            scope=AlertScope.END_TO_END,
            stage=state.stage,
            visit=END_TO_END,
            customer_class=state.application.customer_class,
            entered_at=state.opened_at,
            limit_days=overall.commitment_days,
            deadline=overall.deadline.due,
            deadline_provisional=overall.deadline.provisional,
            working_days_left=self.tracker.calendar.days_left(today, overall.deadline.due),
            responsible=state.application.org_no,
            assignee=state.assignee,
            detected_at=now,
        )

    def _alert_of(self, state: CaseState, kind: AlertKind, today: date, now: datetime) -> CaseAlert:
        visit = state.visit
        assert visit.deadline is not None and visit.limit_days is not None
        return CaseAlert(
            application_no=state.application_no,
            kind=kind,
            stage=visit.stage,
            visit=visit.key,
            customer_class=state.application.customer_class,
            entered_at=visit.entered_at,
            limit_days=visit.limit_days,
            deadline=visit.deadline.due,
            deadline_provisional=visit.deadline.provisional,
            working_days_left=self.tracker.calendar.days_left(today, visit.deadline.due),
            responsible=state.application.org_no,
            assignee=state.assignee,
            detected_at=now,
        )

    def _state(self, conn: Connection, application_no: str) -> CaseState | None:
        events = self.tracker.events_of(conn, application_no)
        return fold_case(events, self.tracker.config, self.tracker.calendar)

    def _decide(
        self,
        conn: Connection,
        state: CaseState,
        event_type: str,
        data: dict[str, object],
        visit: str,
        now: datetime,
        correlation_id: str,
    ) -> bool:
        """Publish a decision and keep it with the case; False when another process made it first."""
        savepoint = conn.begin_nested()
        try:
            event = self.tracker.publish(
                conn, state, event_type, dict(data), correlation_id=correlation_id, time=now
            )
            self.tracker.record(conn, CaseEvent.of(event, state.application_no, now, visit))
        except sa.exc.IntegrityError:
            savepoint.rollback()
            return False
        savepoint.commit()
        self.tracker.rebuild(conn, state.application_no, correlation_id=correlation_id)
        return True


class MonitorLoop:
    """A hub loop step: runs a monitoring pass every interval_s seconds, otherwise returns at once."""

    def __init__(
        self,
        monitor: CaseMonitor,
        interval_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.monitor = monitor
        self.interval_s = interval_s
        self._clock = clock
        self._stopping = stopping
        self._next = clock()
        self.last_report: TickReport | None = None

    @classmethod
    def for_engine(
        cls,
        engine: Engine,
        tracker: CaseTracker | None = None,
        *,
        stopping: Callable[[], bool] = lambda: False,
    ) -> MonitorLoop:
        """A loop over the default tracker (or the given one) with the configured interval."""
        chosen = tracker or default_tracker()
        return cls(CaseMonitor(engine, chosen), chosen.config.monitoring.interval_s, stopping=stopping)

    def step(self) -> bool:
        """Run a pass when one is due; always False, as nothing more is due right after a pass."""
        if self._clock() < self._next:
            return False
        self.last_report = self.monitor.tick(stopping=self._stopping)
        self._next = self._clock() + self.interval_s
        return False


def _while_running(items: list[str], stopping: Callable[[], bool], report: TickReport) -> Iterator[str]:
    """The items one by one, until stopping() is true: then the report is marked interrupted."""
    for item in items:
        if stopping():
            report.interrupted = True
            return
        yield item


def _lock_case(conn: Connection, application_no: str) -> None:
    """Take the case's keyed lock before anything else, as the workflow consumer does (store/locks.py)."""
    lock_keys(conn, [case_key(application_no)])
