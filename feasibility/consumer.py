"""The feasibility consumer: assesses applications when they arrive or change, and when their grid changes.

Bindings: application.# (assess, or release reservations once withdrawn or energised), grid.# and load.#
(re-assess the open applications that used the equipment or lie within reach of it) and feasibility.#
(its own results, bound so that every result it publishes has a queue; they need no action here).
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

import pydantic
from sqlalchemy.engine import Connection

from canonical_model.application import ConnectionApplication
from canonical_model.case import StageReport
from canonical_model.common import GeoPoint
from canonical_model.envelope import CloudEvent
from feasibility.config import load_feasibility_config
from feasibility.service import FEASIBILITY_ASSESSED, FeasibilityService
from yekuo.errors import SchemaViolationError
from yekuo.settings import Settings

log = logging.getLogger(__name__)

APPLICATION_CHANGED = "cn.yekuo.application.changed.v1"
STAGE_REPORTED = "cn.yekuo.application.stage_reported.v1"
PROFILE_RECORDED = "cn.yekuo.load.profile.recorded.v1"
GRID_PREFIX = "cn.yekuo.grid."
TOPICS = ("application.#", "grid.#", "load.#", "feasibility.#")


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
            if report.stage in self.service.config.rules_for().release_stages:
                self.service.release(conn, report.application_no)
        elif event.type.startswith(GRID_PREFIX):
            self._equipment_changed(conn, event, event.subject, _location(event.data))
        elif event.type == PROFILE_RECORDED:
            equipment_id = event.data.get("equipment_id") if isinstance(event.data, dict) else None
            if not isinstance(equipment_id, str) or not equipment_id:
                raise SchemaViolationError(f"load profile event {event.id} names no equipment_id")
            self._equipment_changed(conn, event, equipment_id, None)
        elif event.type != FEASIBILITY_ASSESSED:
            # Telemetry values and other application events do not change an assessment's inputs.
            log.debug("feasibility ignores %s (event %s)", event.type, event.id)

    def _application(self, conn: Connection, event: CloudEvent) -> None:
        application: ConnectionApplication = _validated(ConnectionApplication, event)
        rules = self.service.config.rules_for(application.org_no)
        if application.stage in rules.release_stages or application.legacy_status in rules.withdrawn_statuses:
            self.service.release(conn, application.application_no)
            return
        self.service.assess_application(conn, application, correlation_id=event.correlationid)

    def _equipment_changed(
        self, conn: Connection, event: CloudEvent, equipment_id: str, location: GeoPoint | None
    ) -> None:
        affected = self.service.affected(conn, equipment_id, location)
        if affected:
            self.service.reassess(conn, affected, correlation_id=event.correlationid)


def _location(data: Any) -> GeoPoint | None:
    location = data.get("location") if isinstance(data, dict) else None
    if not isinstance(location, dict):
        return None
    try:
        return GeoPoint.model_validate(location)
    except pydantic.ValidationError:
        return None


@cache
def default_handler() -> FeasibilityHandler:
    """The handler over the rules and exchange named by the environment (YEKUO_CONFIG_DIR ...)."""
    settings = Settings()
    config = load_feasibility_config(settings.config_dir)
    return FeasibilityHandler(FeasibilityService(config, exchange=settings.exchange))


def handle_feasibility_event(conn: Connection, event: CloudEvent) -> None:
    """The feasibility consumer's handler: the default handler, loaded on first use."""
    default_handler()(conn, event)
