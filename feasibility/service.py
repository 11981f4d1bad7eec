"""Running assessments against the hub database: reservations under a row lock, results kept and published.

assess_application runs inside the caller's transaction. It locks the capacity_locks rows of every
connection point and substation it will read reservations of (SELECT ... FOR UPDATE on PostgreSQL and
MariaDB, in id order), then reads reservations, evaluates, replaces the application's own reservations
and stages the result event. A second assessment competing for the same equipment waits for the first to
commit and then sees its reservations, so both cannot be told "feasible" for the same headroom.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from bus.outbox import EventDraft, stage_event
from canonical_model.application import ConnectionApplication
from canonical_model.common import GeoPoint
from canonical_model.envelope import CloudEvent
from canonical_model.feasibility import FeasibilityAssessment
from canonical_model.registry import schema_uri
from feasibility.config import FeasibilityConfig, Rules
from feasibility.engine import FeasibilityRequest, GridArea, evaluate, plan, reach, reservation_targets
from feasibility.grid_cache import GridCache
from feasibility.inputs import bbox_around, read_loads, read_reserved
from store.database import utcnow
from store.feasibility import (
    capacity_locks,
    capacity_reservations,
    feasibility_assessments,
    feasibility_inputs,
)

log = logging.getLogger(__name__)

FEASIBILITY_ASSESSED = "cn.yekuo.application.feasibility_assessed.v1"
FEASIBILITY_SOURCE = "/hub/feasibility"
ROUTING_PREFIX = "feasibility.assessed"
SCHEMA_NAME = "feasibility_assessment.v1"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def request_of(application: ConnectionApplication) -> FeasibilityRequest:
    """The engine's request for an application."""
    return FeasibilityRequest(
        requested_capacity_kva=application.requested_capacity_kva,
        customer_class=application.customer_class,
        importance_grade=application.importance_grade,
        site=application.site_location,
        urban_rural=application.urban_rural,
        application_no=application.application_no,
        industry_code=application.industry_code,
        requested_voltage_kv=application.requested_voltage_kv,
    )


@dataclass(frozen=True)
class Outcome:
    """An assessment and what it promised."""

    assessment: FeasibilityAssessment
    reserved_kva: float
    event: CloudEvent | None


class FeasibilityService:
    """Assessments over the hub database with the given rules; clock gives "now" (load-data age)."""

    def __init__(
        self,
        config: FeasibilityConfig,
        *,
        exchange: str = "yekuo.events",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.exchange = exchange
        self.clock = clock
        self._grid = GridCache()

    def _run(
        self, conn: Connection, request: FeasibilityRequest, rules: Rules, *, lock: bool
    ) -> tuple[FeasibilityAssessment, list[str]]:
        now = self.clock()
        site = request.site
        level = reach(request, rules)[0]
        area = self._grid.area(conn) if site is not None and level else GridArea(())
        planned = plan(request, rules, area)
        lock_ids = planned.lock_ids(area)
        if lock and lock_ids:
            _lock(conn, lock_ids)
        loads = read_loads(conn, planned.load_ids(area), rules, now.astimezone(SHANGHAI).date())
        reserved = read_reserved(conn, lock_ids, exclude=request.application_no)
        assessment = evaluate(planned, area, loads, reserved, assessed_at=now)
        return assessment, sorted(set(lock_ids) | planned.load_ids(area))

    def preview(
        self, conn: Connection, request: FeasibilityRequest, *, province: str | None = None
    ) -> FeasibilityAssessment:
        """A what-if check: counts what others reserved; reserves, keeps and publishes nothing."""
        assessment, _ = self._run(conn, request, self.config.rules_for(province=province), lock=False)
        return assessment

    def assess_application(
        self, conn: Connection, application: ConnectionApplication, *, correlation_id: str
    ) -> Outcome:
        """Assess an application inside the caller's transaction: reserve, keep and publish the result."""
        rules = self.config.rules_for(application.org_no)
        request = request_of(application)
        assessment, inputs = self._run(conn, request, rules, lock=True)
        application_no = application.application_no
        conn.execute(
            capacity_reservations.delete().where(capacity_reservations.c.application_no == application_no)
        )
        now = assessment.assessed_at
        rows = []
        for source in reservation_targets(assessment):
            rows.append(
                {
                    "application_no": application_no,
                    "equipment_id": source.equipment_id,
                    "feeder_id": source.feeder_id,
                    "substation_id": source.substation_id
                    if source.substation_id != source.equipment_id
                    else None,
                    "kva": application.requested_capacity_kva,
                    "reserved_at": now,
                }
            )
        if rows:
            conn.execute(capacity_reservations.insert(), rows)
        reserved = application.requested_capacity_kva * len(rows)
        assessment = assessment.model_copy(update={"reserved_kva": reserved})
        event = self._publish(conn, assessment, application_no, correlation_id)
        self._keep(conn, application, assessment, event, inputs)
        return Outcome(assessment, reserved, event)

    def _publish(
        self, conn: Connection, assessment: FeasibilityAssessment, application_no: str, correlation_id: str
    ) -> CloudEvent:
        return stage_event(
            conn,
            EventDraft(
                event_type=FEASIBILITY_ASSESSED,
                source=FEASIBILITY_SOURCE,
                subject=application_no,
                dataschema=schema_uri(SCHEMA_NAME),
                data=assessment.model_dump(mode="json", exclude_none=True),
                exchange=self.exchange,
                routing_key=f"{ROUTING_PREFIX}.{assessment.verdict.value}",
                time=assessment.assessed_at,
            ),
            correlation_id=correlation_id,
        )

    def _keep(
        self,
        conn: Connection,
        application: ConnectionApplication,
        assessment: FeasibilityAssessment,
        event: CloudEvent,
        inputs: Iterable[str],
    ) -> None:
        application_no = application.application_no
        site = application.site_location
        values: dict[str, Any] = {
            "province": assessment.province,
            "verdict": assessment.verdict.value,
            "recommended_voltage_kv": assessment.recommended_voltage_kv,
            "document": assessment.model_dump(mode="json", exclude_none=True),
            "application": application.model_dump(mode="json", exclude_none=True),
            "site_lon": site.lon if site else None,
            "site_lat": site.lat if site else None,
            "is_open": True,
            "assessed_at": assessment.assessed_at,
            "event_id": event.id,
        }
        table = feasibility_assessments
        updated = conn.execute(
            table.update().where(table.c.application_no == application_no).values(**values)
        )
        if updated.rowcount == 0:
            conn.execute(table.insert().values(application_no=application_no, **values))
        conn.execute(feasibility_inputs.delete().where(feasibility_inputs.c.application_no == application_no))
        rows = [{"application_no": application_no, "equipment_id": item} for item in sorted(set(inputs))]
        if rows:
            conn.execute(feasibility_inputs.insert(), rows)

    def release(self, conn: Connection, application_no: str) -> float:
        """Release an application's reservations (withdrawn or energised); return the kVA released."""
        table = capacity_reservations
        held = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(table.c.kva), 0.0)).where(
                table.c.application_no == application_no
            )
        ).scalar_one()
        conn.execute(table.delete().where(table.c.application_no == application_no))
        conn.execute(
            feasibility_assessments.update()
            .where(feasibility_assessments.c.application_no == application_no)
            .values(is_open=False)
        )
        return float(held)

    def affected(self, conn: Connection, equipment_id: str, location: GeoPoint | None) -> list[str]:
        """Open applications whose assessment used the equipment, or whose site lies within reach of it."""
        found = set(
            conn.execute(
                sa.select(feasibility_inputs.c.application_no)
                .join(
                    feasibility_assessments,
                    feasibility_assessments.c.application_no == feasibility_inputs.c.application_no,
                )
                .where(feasibility_inputs.c.equipment_id == equipment_id, feasibility_assessments.c.is_open)
            ).scalars()
        )
        if location is not None:
            table = feasibility_assessments
            reach = max(rules.max_radius_m() for rules in self.config.all_rules())
            min_lon, min_lat, max_lon, max_lat = bbox_around(location, reach)
            found.update(
                conn.execute(
                    sa.select(table.c.application_no).where(
                        table.c.is_open,
                        table.c.site_lon.between(min_lon, max_lon),
                        table.c.site_lat.between(min_lat, max_lat),
                    )
                ).scalars()
            )
        return sorted(found)

    def reassess(self, conn: Connection, application_nos: Iterable[str], *, correlation_id: str) -> int:
        """Assess open applications again from the application kept with their last assessment."""
        count = 0
        for application_no in application_nos:
            stored = conn.execute(
                sa.select(feasibility_assessments.c.application).where(
                    feasibility_assessments.c.application_no == application_no,
                    feasibility_assessments.c.is_open,
                )
            ).scalar()
            if stored is None:
                continue
            self.assess_application(
                conn, ConnectionApplication.model_validate(stored), correlation_id=correlation_id
            )
            count += 1
        return count

    def stored(self, conn: Connection, application_no: str) -> dict[str, Any] | None:
        """The kept assessment of an application as a JSON document, or None."""
        value = conn.execute(
            sa.select(feasibility_assessments.c.document).where(
                feasibility_assessments.c.application_no == application_no
            )
        ).scalar()
        return dict(value) if value is not None else None


def _lock(conn: Connection, equipment_ids: list[str]) -> None:
    """Take the capacity lock rows of the equipment, creating missing ones first, in id order."""
    now = utcnow()
    rows = [{"equipment_id": item, "locked_at": now} for item in equipment_ids]
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(postgresql.insert(capacity_locks).on_conflict_do_nothing(), rows)
    elif dialect == "sqlite":
        conn.execute(sqlite.insert(capacity_locks).on_conflict_do_nothing(), rows)
    else:
        existing = set(
            conn.execute(
                sa.select(capacity_locks.c.equipment_id).where(
                    capacity_locks.c.equipment_id.in_(equipment_ids)
                )
            ).scalars()
        )
        missing = [row for row in rows if row["equipment_id"] not in existing]
        if missing:
            conn.execute(capacity_locks.insert(), missing)
    conn.execute(
        sa.select(capacity_locks.c.equipment_id)
        .where(capacity_locks.c.equipment_id.in_(equipment_ids))
        .order_by(capacity_locks.c.equipment_id)
        .with_for_update()
    ).all()
