"""The feasibility consumer: assesses applications when they arrive or change, and when their grid changes.

Bindings: application.# (assess; release reservations once withdrawn or cancelled; keep them after
energisation until the new load shows in the measured peaks), projection.# (re-assess
the open applications that used the equipment or lie within reach of it) and feasibility.# (its own results,
bound so that every result it publishes has a queue; they need no action here).

Grid and load changes arrive as the projections' own notices (cn.yekuo.projection.updated.v1), published
after the grid or loads consumer stored the change, not as the source events: those reach every consumer in
no fixed order, and a re-assessment that ran first would read the grid without the change.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

import pydantic
from sqlalchemy.engine import Connection

from canonical_model.application import ConnectionApplication
from canonical_model.case import StageReport
from canonical_model.customer import Customer
from canonical_model.envelope import CloudEvent
from canonical_model.events import (
    APPLICATION_CHANGED,
    CUSTOMER_CHANGED,
    FEASIBILITY_ASSESSED,
    PROJECTION_UPDATED,
    STAGE_REPORTED,
)
from canonical_model.projection import ProjectionUpdate
from feasibility.config import load_feasibility_config
from feasibility.service import CustomerFacts, FeasibilityService
from ground.errors import SchemaViolationError
from ground.settings import Settings

log = logging.getLogger(__name__)

TOPICS = ("application.#", "customer.#", "projection.#", "feasibility.#")


def _validated(model: type[pydantic.BaseModel], event: CloudEvent) -> Any:
    try:
        return model.model_validate(event.data)
    except pydantic.ValidationError as exc:
        raise SchemaViolationError(
            f"event {event.id} ({event.type}) is not a valid {model.__name__}: {exc}"
        ) from exc


class FeasibilityHandler:
    """Applies one event: an InboxConsumer handler over a FeasibilityService."""

    def __init__(self, service: FeasibilityService) -> None:
        self.service = service

    def __call__(self, conn: Connection, event: CloudEvent) -> None:
        if event.type == APPLICATION_CHANGED:
            self._application(conn, event)
        elif event.type == STAGE_REPORTED:
            report: StageReport = _validated(StageReport, event)
            rules = self.service.config.rules_for()
            if report.stage in rules.release_stages:
                self.service.release(conn, report.application_no)
            elif report.stage in rules.energised_stages:
                self.service.energised(conn, report.application_no)
        elif event.type == CUSTOMER_CHANGED:
            # A capacity change is judged against the customer's contract capacity. The record may come
            # after the application and the workflow may store it after this runs, so the event's own
            # facts are used.
            customer: Customer = _validated(Customer, event)
            facts = CustomerFacts(customer.contract_capacity_kva, customer.transformer_district_id)
            if self.service.keep_customer(conn, customer.customer_no, facts, event.sequence):
                affected = self.service.of_customer(conn, customer.customer_no)
                self.service.reassess(conn, affected, correlation_id=event.correlationid)
        elif event.type == PROJECTION_UPDATED:
            update: ProjectionUpdate = _validated(ProjectionUpdate, event)
            affected = self.service.affected(conn, update.equipment_id, update.location)
            if affected:
                self.service.reassess(conn, affected, correlation_id=event.correlationid)
        elif event.type != FEASIBILITY_ASSESSED:
            # Telemetry values and other application events do not change an assessment's inputs.
            log.debug("feasibility ignores %s (event %s)", event.type, event.id)

    def _application(self, conn: Connection, event: CloudEvent) -> None:
        application: ConnectionApplication = _validated(ConnectionApplication, event)
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


def handle_feasibility_event(conn: Connection, event: CloudEvent) -> None:
    """The feasibility consumer's handler: the default handler, loaded on first use."""
    default_handler()(conn, event)
