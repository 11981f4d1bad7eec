"""The feasibility consumer: assesses applications when they arrive or change, and when their grid changes.

Bindings: application.# (assess; release reservations once withdrawn or cancelled; keep them after
energisation until the new load shows in the measured peaks), customer.# and projection.# (re-check the
customer's open applications, or those that used the equipment or lie within reach of it) and
feasibility.# (its own results, bound so that every result it publishes has a queue; they need no action
here).

A grid, load or customer change does not re-assess at once: in its own transaction it marks the applications
it affects as due (store.feasibility.mark_due), one row per application however many changes name it. The
consumer's process then re-checks the due applications in bounded batches (FeasibilityHandler.drain, run by
the consumer loop after every fetched batch and while the queue is idle), each once with what is stored by
then, and an application whose inputs did not change is neither assessed again nor published. A burst of
notices about one transformer therefore costs one re-check of each application near it, not one per notice.

Grid and load changes arrive as the projections' own notices (cn.yekuo.projection.updated.v1), published
after the grid or loads consumer stored the change, not as the source events: those reach every consumer in
no fixed order, and a re-assessment that ran first would read the grid without the change.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import cache

from sqlalchemy.engine import Connection, Engine

from canonical_model.application import ConnectionApplication
from canonical_model.case import StageReport
from canonical_model.customer import Customer
from canonical_model.events import (
    APPLICATION_CHANGED,
    CUSTOMER_CHANGED,
    FEASIBILITY_ASSESSED,
    PROJECTION_UPDATED,
    STAGE_REPORTED,
)
from canonical_model.projection import ProjectionUpdate
from feasibility.config import load_feasibility_config
from feasibility.service import CustomerFacts, FeasibilityService, case_key, customer_key
from ground.settings import Settings
from pipeline.decoded import DecodedEvent
from store.feasibility import claim_due, clear_due, mark_due, peek_due, postpone_due
from store.locks import LockTimeoutError, try_lock_keys
from store.transaction_work import current_work

log = logging.getLogger(__name__)

TOPICS = ("application.#", "customer.#", "projection.#", "feasibility.#")
# The events that assess, and so take capacity locks while they work: each commits on its own.
ASSESSING_TYPES = frozenset({APPLICATION_CHANGED})
# Due applications re-checked in one transaction: its keys (an application's and its customer's) stay well
# within the consumer's bound, and the transaction stays short.
RECHECK_BATCH = 50
# How long an application whose re-check failed alone waits before it is tried again: a failure that lasts
# (a kept application that no longer reads) is retried now and then, not on every step of the consumer loop.
RETRY_AFTER = timedelta(seconds=30)
# What a consumer batch's transaction marked due so far (its TransactionWork memo).
_MARKED = "feasibility.marked_due"


class FeasibilityHandler:
    """Applies one event: an InboxConsumer handler over a FeasibilityService."""

    def __init__(self, service: FeasibilityService) -> None:
        self.service = service

    def __call__(self, conn: Connection, decoded: DecodedEvent) -> None:
        event = decoded.event
        if event.type == APPLICATION_CHANGED:
            self._application(conn, decoded)
        elif event.type == STAGE_REPORTED:
            report = decoded.payload_as(StageReport)
            rules = self.service.config.rules_for()
            if report.stage in rules.release_stages:
                self.service.release(conn, report.application_no)
            elif report.stage in rules.energised_stages:
                self.service.energised(conn, report.application_no)
        elif event.type == CUSTOMER_CHANGED:
            # A capacity change is judged against the customer's contract capacity. The record may come
            # after the application and the workflow may store it after this runs, so the event's own
            # facts are used.
            customer = decoded.payload_as(Customer)
            facts = CustomerFacts(customer.contract_capacity_kva, customer.transformer_district_id)
            if self.service.keep_customer(conn, customer.customer_no, facts, event.sequence):
                self._due(conn, self.service.of_customer(conn, customer.customer_no), event.correlationid)
        elif event.type == PROJECTION_UPDATED:
            update = decoded.payload_as(ProjectionUpdate)
            affected = self.service.affected(conn, update.equipment_id, update.location)
            self._due(conn, affected, event.correlationid)
        elif event.type != FEASIBILITY_ASSESSED:
            # Telemetry values and other application events do not change an assessment's inputs.
            log.debug("feasibility ignores %s (event %s)", event.type, event.id)

    def keys(self, conn: Connection, decoded: DecodedEvent) -> list[str]:
        """What an event changes, for the consumer's keyed locks, all read before anything is written.

        An application's assessment reads its customer's facts and may cut the reservations of the
        customer's other applications, so whatever changes an application's reservations holds its
        customer's key too: an application event and a stage report (its customer as assessed). A
        customer record changes the customer's facts only; it and a projection change mark applications
        due (under no key of theirs: the re-check takes them). The first key comes from the payload alone,
        so a duplicate waits for its twin on it.
        """
        event = decoded.event
        if event.type == APPLICATION_CHANGED:
            application = decoded.payload_as(ConnectionApplication)
            return [case_key(application.application_no), customer_key(application.customer_no)]
        if event.type == STAGE_REPORTED:
            return self.service.keys_of(conn, [decoded.payload_as(StageReport).application_no])
        if event.type == CUSTOMER_CHANGED:
            return [customer_key(decoded.payload_as(Customer).customer_no)]
        return []

    def drain(self, engine: Engine, *, limit: int = RECHECK_BATCH) -> int:
        """Re-check up to limit due applications in one transaction; return how many it cleared (0: none).

        The applications due longest and claimed by no other process are read first, on their own. Their
        keys are then taken before their rows are claimed (FOR UPDATE SKIP LOCKED), and never waited for:
        a change marking one of them due may hold its customer's key while it waits for the row, and another
        drainer may hold them for its batch, so an application whose keys are held is left due for a later
        drain. Rows another process claimed meanwhile are left to it as well; the
        claimed ones are re-checked, each once, and deleted in the same transaction, so a re-check that
        fails or dies leaves them due. When the batch fails, each is tried alone, and one that fails alone
        stays due but is not tried again for RETRY_AFTER, so that it neither holds back the others nor has
        the consumer loop retry it without pause. Only cleared applications count: a caller that drains
        while the count is above 0 stops once only failing or claimed ones are left.
        """
        with engine.begin() as conn:
            candidates = peek_due(conn, limit, now=self.service.clock())
        if not candidates:
            return 0
        try:
            return self._recheck(engine, candidates)
        except LockTimeoutError:
            raise
        except Exception as exc:
            if len(candidates) == 1:
                self._postpone(engine, candidates[0], exc)
                return 0
            log.warning(
                "re-checking %d due applications failed (%r); trying each alone", len(candidates), exc
            )
            log.debug("the batch's failure", exc_info=True)
        cleared = 0
        for number in candidates:
            try:
                cleared += self._recheck(engine, [number])
            except LockTimeoutError:
                raise
            except Exception as exc:
                self._postpone(engine, number, exc)
        return cleared

    def _postpone(self, engine: Engine, number: str, exc: Exception) -> None:
        # The stack goes to debug only: a failure that lasts is logged again at every retry.
        retry_at = self.service.clock() + RETRY_AFTER
        log.warning(
            "re-checking application %s failed (%r); it stays due, tried again from %s",
            number,
            exc,
            retry_at.isoformat(),
        )
        log.debug("application %s's failure", number, exc_info=exc)
        with engine.begin() as conn:
            postpone_due(conn, number, since=retry_at)

    def _recheck(self, engine: Engine, candidates: list[str]) -> int:
        with engine.begin() as conn:
            # Another drainer that read the same rows holds their keys for its whole batch: they are left to
            # it rather than waited for.
            free = [
                number for number in candidates if try_lock_keys(conn, self.service.keys_of(conn, [number]))
            ]
            claimed = claim_due(conn, free)
            if claimed:
                self.service.reassess(conn, claimed, correlation_id=claimed)
                clear_due(conn, claimed)
        return len(claimed)

    def _due(self, conn: Connection, application_nos: list[str], correlation_id: str) -> None:
        """Mark the applications due. In a consumer's batch the marks are gathered, each application's with
        the first change that named it, and written at the batch's end in one statement in key order: two
        batches writing overlapping sets notice by notice would lock their rows in different orders and
        deadlock. Outside a batch they are written at once."""
        work = current_work(conn)
        if work is None:
            mark_due(conn, dict.fromkeys(application_nos, correlation_id), since=self.service.clock())
            return
        marks: dict[str, str] | None = work.memo.get(_MARKED)
        if marks is None:
            gathered: dict[str, str] = {}
            marks = work.memo[_MARKED] = gathered
            work.before_end(lambda end: mark_due(end, gathered, since=self.service.clock()))
        for number in application_nos:
            marks.setdefault(number, correlation_id)

    def _application(self, conn: Connection, decoded: DecodedEvent) -> None:
        event = decoded.event
        application = decoded.payload_as(ConnectionApplication)
        rules = self.service.config.rules_for(application.org_no)
        if application.stage in rules.release_stages or application.legacy_status in rules.withdrawn_statuses:
            self.service.release(conn, application.application_no)
            return
        if application.stage in rules.energised_stages:
            # Energised: the reservation stays until the new load shows in the measured peaks.
            self.service.energised(conn, application.application_no)
            return
        self.service.assess_application(conn, application, correlation_id=event.correlationid)


@cache
def default_handler() -> FeasibilityHandler:
    """The handler over the rules and exchange named by the environment (YEKUO_CONFIG_DIR ...)."""
    settings = Settings()
    config = load_feasibility_config(settings.config_dir)
    return FeasibilityHandler(FeasibilityService(config, exchange=settings.exchange))


def handle_feasibility_event(conn: Connection, decoded: DecodedEvent) -> None:
    """The feasibility consumer's handler: the default handler, loaded on first use."""
    default_handler()(conn, decoded)


def keys_of_feasibility_event(conn: Connection, decoded: DecodedEvent) -> list[str]:
    """The keys the feasibility consumer's handler changes for an event (FeasibilityHandler.keys)."""
    return default_handler().keys(conn, decoded)


def drain_feasibility_rechecks(engine: Engine) -> int:
    """One batch of the due re-checks by the default handler (FeasibilityHandler.drain)."""
    return default_handler().drain(engine)
