"""Running assessments against the hub database: reservations under a row lock, results kept and published.

assess_application runs inside the caller's transaction. It first reads what no other assessment changes
(the grid, the measured loads, the forecast alerts), which is the slow part. Only then does it lock the
capacity_locks rows of every connection point and substation it will read reservations of (SELECT ... FOR
UPDATE on PostgreSQL and MariaDB, in id order), read the reservations, evaluate, replace the application's
own reservations and stage the result event. A second assessment competing for the same equipment waits
for the first to commit and then sees its reservations, so both cannot be told "feasible" for the same
headroom, and the wait lasts only as long as the first's evaluation and writes.

reassess runs several assessments in one transaction: it locks their applications and customers
(store.locks) in one call, prepares every one, then takes the union of their capacity locks at once, so two
re-assessments cannot deadlock. An assessment is kept with a fingerprint of everything it read (the
application, the customer's facts, the rules, the equipment, its load readings and forecast alerts, what
others reserved, the day); a re-assessment that reads the same changes nothing and publishes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection

from canonical_model.application import BusinessType, ConnectionApplication
from canonical_model.common import GeoPoint
from canonical_model.envelope import CloudEvent
from canonical_model.events import FEASIBILITY_ASSESSED, channel_of, listed
from canonical_model.feasibility import FeasibilityAssessment, RuleCheck, RuleResult
from canonical_model.planning import CapacityForecastAlert
from feasibility.basis import LV_MAX_KV
from feasibility.config import FREES_CAPACITY, FeasibilityConfig, Rules
from feasibility.engine import (
    FeasibilityRequest,
    GridArea,
    LoadReading,
    Plan,
    evaluate,
    plan,
    reach,
    reservation_targets,
)
from feasibility.grid_cache import GridCache
from feasibility.inputs import bbox_around, read_loads, read_reserved
from pipeline.outbox import stage_event
from pipeline.records import EventDraft
from store.database import utcnow
from store.feasibility import (
    capacity_locks,
    capacity_reservations,
    feasibility_assessments,
    feasibility_customers,
    feasibility_inputs,
)
from store.forecast import stored_alerts
from store.locks import lock_keys
from store.schema import customers

log = logging.getLogger(__name__)

FEASIBILITY_SOURCE = "/hub/feasibility"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class CustomerFacts:
    """What a capacity change needs of the customer: its contract capacity and transformer district."""

    contract_capacity_kva: float | None
    district_id: str | None


def customer_facts(conn: Connection, customer_no: str) -> CustomerFacts:
    """The customer's contract capacity and TG_ID: as this consumer last read them from a customer record,
    else from the hub's customers table (personal fields unread)."""
    kept = conn.execute(
        sa.select(feasibility_customers.c.contract_capacity_kva, feasibility_customers.c.district_id).where(
            feasibility_customers.c.customer_no == customer_no
        )
    ).first()
    if kept is not None:
        return CustomerFacts(kept.contract_capacity_kva, kept.district_id)
    document = conn.execute(
        sa.select(sa.type_coerce(customers.c.document, sa.JSON)).where(customers.c.customer_no == customer_no)
    ).scalar()
    if not document:
        return CustomerFacts(None, None)
    capacity = document.get("contract_capacity_kva")
    return CustomerFacts(
        float(capacity) if capacity is not None else None, document.get("transformer_district_id")
    )


def request_of(
    application: ConnectionApplication, customer: CustomerFacts | None = None
) -> FeasibilityRequest:
    """The engine's request for an application, with the customer's facts for a capacity change."""
    return FeasibilityRequest(
        requested_capacity_kva=application.requested_capacity_kva,
        customer_class=application.customer_class,
        importance_grade=application.importance_grade,
        site=application.site_location,
        urban_rural=application.urban_rural,
        application_no=application.application_no,
        industry_code=application.industry_code,
        load_type=application.load_type,
        requested_voltage_kv=application.requested_voltage_kv,
        business_type=application.business_type,
        existing_capacity_kva=customer.contract_capacity_kva if customer else None,
        existing_district_id=customer.district_id if customer else None,
    )


def case_key(application_no: str) -> str:
    """The keyed lock (store.locks) under which an application's assessment and reservations change."""
    return f"feasibility.case:{application_no}"


def customer_key(customer_no: str) -> str:
    """The keyed lock under which a customer's kept facts change."""
    return f"feasibility.customer:{customer_no}"


@dataclass(frozen=True)
class _Prepared:
    """What an assessment read before its capacity locks: none of it is changed by other assessments."""

    request: FeasibilityRequest
    rules: Rules
    now: datetime
    area: GridArea
    planned: Plan
    lock_ids: list[str]
    loads: dict[str, LoadReading]
    inputs: list[str]
    alerts: list[CapacityForecastAlert]


@dataclass(frozen=True)
class _Counted:
    """What an assessment read under its capacity locks, and whether its kept result read the same."""

    reserved: dict[str, float]
    promised_at: datetime | None
    fingerprint: str
    unchanged: bool


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
        self._rule_digests: dict[int, str] = {}

    def _prepare(self, conn: Connection, request: FeasibilityRequest, rules: Rules) -> _Prepared:
        """Read what an assessment needs that other assessments do not change; no lock is taken."""
        return self._prepare_all(conn, [(request, rules)])[0]

    def _prepare_all(
        self, conn: Connection, asked: Sequence[tuple[FeasibilityRequest, Rules]]
    ) -> list[_Prepared]:
        """_prepare for several assessments at one "now": the grid and the forecast alerts read once."""
        now = self.clock()
        today = now.astimezone(SHANGHAI).date()
        grid: list[GridArea] = []
        planned_all = []
        for request, rules in asked:
            level = reach(request, rules)[0]
            located = request.site is not None or request.business_type is BusinessType.CAPACITY_INCREASE
            if located and level and not grid:
                grid.append(self._grid.area(conn))
            area = grid[0] if located and level else GridArea(())
            planned = plan(request, rules, area)
            lock_ids = sorted(set(planned.lock_ids(area)))
            loads = read_loads(conn, planned.load_ids(area), rules, today)
            inputs = sorted(set(lock_ids) | planned.load_ids(area))
            planned_all.append((request, rules, area, planned, lock_ids, loads, inputs))
        wanted = sorted({item for *_, inputs in planned_all for item in inputs})
        alerts = stored_alerts(conn, wanted) if wanted else []
        return [
            _Prepared(
                request,
                rules,
                now,
                area,
                planned,
                lock_ids,
                loads,
                inputs,
                [alert for alert in alerts if alert.equipment_id in inputs],
            )
            for request, rules, area, planned, lock_ids, loads, inputs in planned_all
        ]

    def _reserved(self, conn: Connection, prepared: _Prepared) -> dict[str, float]:
        """What others reserved on the equipment the assessment reads."""
        return read_reserved(
            conn, prepared.lock_ids, exclude=prepared.request.application_no, now=prepared.now
        )

    def _release(self, conn: Connection, prepared: Sequence[_Prepared]) -> None:
        """Release what lapsed on the equipment of the assessments, or what energised load now shows in its
        peaks, before they count what others reserved (under their capacity locks)."""
        if not prepared:
            return
        _release_lapsed(
            conn, sorted({item for ready in prepared for item in ready.lock_ids}), prepared[0].now
        )
        by_rules: dict[int, tuple[Rules, dict[str, LoadReading]]] = {}
        for ready in prepared:
            by_rules.setdefault(id(ready.rules), (ready.rules, {}))[1].update(ready.loads)
        for rules, loads in by_rules.values():
            _release_shown(conn, loads, rules)

    def _kept(self, conn: Connection, application_nos: Sequence[str]) -> dict[str, Any]:
        """The first promise, fingerprint and document kept of each application assessed before."""
        table = feasibility_assessments
        rows = conn.execute(
            sa.select(
                table.c.application_no, table.c.promised_at, table.c.inputs_fingerprint, table.c.document
            ).where(table.c.application_no.in_(sorted(set(application_nos))))
        ).all()
        return {row.application_no: row for row in rows}

    def _evaluate(self, prepared: _Prepared, reserved: dict[str, float]) -> FeasibilityAssessment:
        return evaluate(
            prepared.planned,
            prepared.area,
            prepared.loads,
            reserved,
            assessed_at=prepared.now,
            forecast_alerts=prepared.alerts,
        )

    def preview(
        self, conn: Connection, request: FeasibilityRequest, *, province: str | None = None
    ) -> FeasibilityAssessment:
        """A what-if check: counts what others reserved; reserves, keeps and publishes nothing."""
        prepared = self._prepare(conn, request, self.config.rules_for(province=province))
        return self._evaluate(prepared, self._reserved(conn, prepared))

    def assess_application(
        self, conn: Connection, application: ConnectionApplication, *, correlation_id: str
    ) -> Outcome:
        """Assess an application inside the caller's transaction: reserve, keep and publish the result."""
        (prepared,) = self._prepare_applications(conn, [application])
        _lock(conn, prepared.lock_ids)
        self._release(conn, [prepared])
        kept = self._kept(conn, [application.application_no]).get(application.application_no)
        counted = self._count(conn, application, prepared, kept)
        return self._reserve(conn, application, prepared, counted, correlation_id=correlation_id)

    def _prepare_applications(
        self, conn: Connection, applications: Sequence[ConnectionApplication]
    ) -> list[_Prepared]:
        asked = []
        for application in applications:
            rules = self.config.rules_for(application.org_no)
            effect = rules.capacity_effect(application.business_type)
            changes = application.business_type is BusinessType.CAPACITY_INCREASE or effect == FREES_CAPACITY
            customer = customer_facts(conn, application.customer_no) if changes else None
            asked.append((request_of(application, customer), rules))
        return self._prepare_all(conn, asked)

    def _count(
        self, conn: Connection, application: ConnectionApplication, prepared: _Prepared, kept: Any | None
    ) -> _Counted:
        """Read what others reserved (capacity locks held, lapsed ones released) and compare the inputs with
        those of the kept assessment (_kept).

        A kept result whose reservation lapsed by now is never unchanged: the re-check records the lapse.
        """
        reserved = self._reserved(conn, prepared)
        promised = kept.promised_at if kept is not None else None
        fingerprint = self._fingerprint(application, prepared, reserved, promised)
        unchanged = False
        # A reduction also cuts the customer's other reservations, which its own inputs do not show.
        frees = prepared.rules.capacity_effect(application.business_type) == FREES_CAPACITY
        if kept is not None and kept.inputs_fingerprint == fingerprint and not frees:
            until = kept.document.get("reserved_until") if isinstance(kept.document, dict) else None
            unchanged = until is None or datetime.fromisoformat(until) > prepared.now
        return _Counted(reserved, promised, fingerprint, unchanged)

    def _fingerprint(
        self,
        application: ConnectionApplication,
        prepared: _Prepared,
        reserved: Mapping[str, float],
        promised_at: datetime | None,
    ) -> str:
        """A digest of everything the evaluation and the reservation read (see the module)."""
        area = prepared.area
        equipment = [
            (
                area.transformers.get(item) or area.feeders.get(item) or area.substations.get(item),
                tuple(area.main_transformers.get(item, ())),
            )
            for item in prepared.inputs
        ]
        parts = (
            application.model_dump_json(exclude_none=True),
            prepared.request,
            self._rules_digest(prepared.rules),
            prepared.planned.candidates,
            prepared.planned.dedicated,
            equipment,
            sorted(prepared.loads.items()),
            sorted(reserved.items()),
            [alert.model_dump_json() for alert in prepared.alerts],
            # Load data ages by the day: the same readings may be stale tomorrow.
            prepared.now.astimezone(SHANGHAI).date(),
            promised_at,
        )
        return hashlib.blake2b(repr(parts).encode(), digest_size=32).hexdigest()

    def _rules_digest(self, rules: Rules) -> str:
        # Rule sets live as long as the service's configuration, so their ids stay theirs.
        digest = self._rule_digests.get(id(rules))
        if digest is None:
            digest = hashlib.blake2b(repr(rules).encode(), digest_size=16).hexdigest()
            self._rule_digests[id(rules)] = digest
        return digest

    def _reserve(
        self,
        conn: Connection,
        application: ConnectionApplication,
        prepared: _Prepared,
        counted: _Counted,
        *,
        correlation_id: str,
    ) -> Outcome:
        """Evaluate a prepared assessment, replace its reservations, keep and publish it (locks are held)."""
        rules = prepared.rules
        effect = rules.capacity_effect(application.business_type)
        customer_capacity = prepared.request.existing_capacity_kva
        assessment = self._evaluate(prepared, counted.reserved)
        inputs = prepared.inputs
        application_no = application.application_no
        conn.execute(
            capacity_reservations.delete().where(capacity_reservations.c.application_no == application_no)
        )
        now = assessment.assessed_at
        kva = application.requested_capacity_kva
        if application.business_type is BusinessType.CAPACITY_INCREASE:
            # Only the increase is promised: the existing capacity is already in the measured peaks.
            kva = max(kva - (customer_capacity or 0.0), 0.0)
        # The scheme's validity counts from the first promise: a re-assessment does not renew it.
        promised = counted.promised_at
        targets = reservation_targets(assessment)
        since = promised or now
        until = _reserved_until(assessment, application, rules, since)
        lapsed: RuleCheck | None = None
        if targets and until <= now:
            lapsed = RuleCheck(
                rule="reservation_lapsed",
                inputs={"promised_at": since.isoformat()},
                threshold={"lapsed_at": until.isoformat()},
                result=RuleResult.INFO,
                detail=f"the supply scheme promised on {since:%Y-%m-%d} lapsed on {until:%Y-%m-%d}: "
                "nothing is reserved again until a new application",
            )
            targets = []
        rows = []
        for source in targets:
            rows.append(
                {
                    "application_no": application_no,
                    "equipment_id": source.equipment_id,
                    "feeder_id": source.feeder_id,
                    "substation_id": source.substation_id
                    if source.substation_id != source.equipment_id
                    else None,
                    "kva": kva,
                    "reserved_at": now,
                    "expires_at": until,
                }
            )
        if rows:
            conn.execute(capacity_reservations.insert(), rows)
        reserved = kva * len(rows)
        update: dict[str, Any] = {"reserved_kva": reserved, "reserved_until": until if rows else None}
        extra = [lapsed] if lapsed is not None else []
        if effect == FREES_CAPACITY:
            reduced = _reduce_customer_reservations(conn, application)
            if reduced is not None:
                extra.append(reduced)
        if extra:
            update["trace"] = (*assessment.trace, *extra)
        assessment = assessment.model_copy(update=update)
        event = self._publish(conn, assessment, application_no, correlation_id)
        promised_at = promised or (now if rows else None)
        fingerprint = counted.fingerprint
        if promised_at != promised:
            # A first promise is read by the next check: kept with it, that check reads the same.
            fingerprint = self._fingerprint(application, prepared, counted.reserved, promised_at)
        self._keep(conn, application, assessment, event, inputs, promised_at, fingerprint)
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
                dataschema=listed(FEASIBILITY_ASSESSED).dataschema,
                data=assessment.model_dump(mode="json", exclude_none=True),
                exchange=self.exchange,
                routing_key=channel_of(FEASIBILITY_ASSESSED).key(verdict=assessment.verdict.value),
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
        promised_at: datetime | None,
        fingerprint: str,
    ) -> None:
        application_no = application.application_no
        site = application.site_location
        values: dict[str, Any] = {
            "province": assessment.province,
            "verdict": assessment.verdict.value,
            "recommended_voltage_kv": assessment.recommended_voltage_kv,
            "document": assessment.model_dump(mode="json", exclude_none=True),
            "application": application.model_dump(mode="json", exclude_none=True),
            "customer_no": application.customer_no,
            "site_lon": site.lon if site else None,
            "site_lat": site.lat if site else None,
            "is_open": True,
            "assessed_at": assessment.assessed_at,
            "event_id": event.id,
            "promised_at": promised_at,
            "inputs_fingerprint": fingerprint,
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

    def energised(self, conn: Connection, application_no: str) -> int:
        """Keep an energised application's reservations until its load shows in the measured peaks, or for
        the configured days: record the load basis now and the latest day it is kept. Returns rows marked."""
        table = capacity_reservations
        stored = conn.execute(
            sa.select(feasibility_assessments.c.application).where(
                feasibility_assessments.c.application_no == application_no
            )
        ).scalar()
        org_no = stored.get("org_no") if isinstance(stored, dict) else None
        rules = self.config.rules_for(org_no)
        now = self.clock()
        rows = (
            conn.execute(
                sa.select(table.c.equipment_id).where(
                    table.c.application_no == application_no, table.c.energised_at.is_(None)
                )
            )
            .scalars()
            .all()
        )
        if not rows:
            return 0
        loads = read_loads(conn, rows, rules, now.astimezone(SHANGHAI).date())
        for equipment_id in rows:
            reading = loads.get(equipment_id)
            basis = reading.peak_kw if reading is not None and reading.problem is None else None
            conn.execute(
                table.update()
                .where(table.c.application_no == application_no, table.c.equipment_id == equipment_id)
                .values(
                    energised_at=now,
                    basis_kw_at_energisation=basis,
                    expires_at=now + timedelta(days=rules.energised_max_days),
                )
            )
        # Energised: no longer re-assessed, so a grid change does not replace what is kept.
        conn.execute(
            feasibility_assessments.update()
            .where(feasibility_assessments.c.application_no == application_no)
            .values(is_open=False)
        )
        return len(rows)

    def release(self, conn: Connection, application_no: str) -> float:
        """Release an application's reservations (withdrawn or cancelled); return the kVA released."""
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

    def keep_customer(self, conn: Connection, customer_no: str, facts: CustomerFacts, sequence: int) -> bool:
        """Keep a customer's facts from its record; False when a newer record was kept already."""
        table = feasibility_customers
        stored = conn.execute(sa.select(table.c.sequence).where(table.c.customer_no == customer_no)).scalar()
        values = {
            "contract_capacity_kva": facts.contract_capacity_kva,
            "district_id": facts.district_id,
            "sequence": sequence,
        }
        if stored is None:
            conn.execute(table.insert().values(customer_no=customer_no, **values))
        elif sequence > stored:
            conn.execute(table.update().where(table.c.customer_no == customer_no).values(**values))
        else:
            return False
        return True

    def of_customer(self, conn: Connection, customer_no: str) -> list[str]:
        """Open applications of a customer: a capacity change is judged against its contract capacity."""
        table = feasibility_assessments
        return sorted(
            conn.execute(
                sa.select(table.c.application_no).where(table.c.customer_no == customer_no, table.c.is_open)
            ).scalars()
        )

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

    def reassess(
        self, conn: Connection, application_nos: Iterable[str], *, correlation_id: str | Mapping[str, str]
    ) -> int:
        """Check open applications again from the application kept with their last assessment; return how
        many were checked. Only those whose inputs changed are assessed anew and published, with the
        correlation id given, or each its own from a mapping by application number.

        Their applications are locked first, then every capacity lock they need at once (see the module).
        """
        numbers = sorted(set(application_nos))
        lock_keys(conn, self.keys_of(conn, numbers))
        applications = [
            ConnectionApplication.model_validate(stored)
            for stored in conn.execute(
                sa.select(feasibility_assessments.c.application)
                .where(
                    feasibility_assessments.c.application_no.in_(numbers),
                    feasibility_assessments.c.is_open,
                )
                .order_by(feasibility_assessments.c.application_no)
            ).scalars()
        ]
        prepared = list(zip(applications, self._prepare_applications(conn, applications), strict=True))
        _lock(conn, sorted({item for _, ready in prepared for item in ready.lock_ids}))
        self._release(conn, [ready for _, ready in prepared])
        kept = self._kept(conn, [application.application_no for application in applications])
        for application, ready in prepared:
            counted = self._count(conn, application, ready, kept.get(application.application_no))
            if counted.unchanged:
                continue
            number = application.application_no
            correlation = correlation_id if isinstance(correlation_id, str) else correlation_id[number]
            self._reserve(conn, application, ready, counted, correlation_id=correlation)
        return len(prepared)

    def keys_of(self, conn: Connection, application_nos: list[str]) -> list[str]:
        """The keyed locks of re-assessing applications: each one's and its customer's."""
        if not application_nos:
            return []
        table = feasibility_assessments
        rows = conn.execute(
            sa.select(table.c.application_no, table.c.customer_no).where(
                table.c.application_no.in_(application_nos)
            )
        ).all()
        customer_nos = {row.customer_no for row in rows if row.customer_no}
        return [*map(case_key, application_nos), *map(customer_key, sorted(customer_nos))]

    def stored(self, conn: Connection, application_no: str) -> dict[str, Any] | None:
        """The kept assessment of an application as a JSON document, or None."""
        value = conn.execute(
            sa.select(feasibility_assessments.c.document).where(
                feasibility_assessments.c.application_no == application_no
            )
        ).scalar()
        return dict(value) if value is not None else None


def _reserved_until(
    assessment: FeasibilityAssessment, application: ConnectionApplication, rules: Rules, since: datetime
) -> datetime:
    """When a reservation lapses: the supply scheme's validity by level (FACTS.md 2b), or the last day of a
    temporary supply if that comes first."""
    voltage = assessment.recommended_voltage_kv
    level = "lv" if voltage is not None and voltage < LV_MAX_KV else "hv"
    until = since + timedelta(days=rules.scheme_validity_days[level])
    end = application.temporary_until
    if application.business_type is BusinessType.TEMPORARY_SUPPLY and end is not None:
        # The supply ends with the last day, local time.
        last = datetime.combine(end + timedelta(days=1), time.min, tzinfo=SHANGHAI)
        until = min(until, last)
    return until


def _release_lapsed(conn: Connection, equipment_ids: list[str], now: datetime) -> None:
    if not equipment_ids:
        return
    table = capacity_reservations
    conn.execute(
        table.delete().where(
            table.c.expires_at <= now,
            sa.or_(
                table.c.equipment_id.in_(equipment_ids),
                table.c.feeder_id.in_(equipment_ids),
                table.c.substation_id.in_(equipment_ids),
            ),
        )
    )


def _release_shown(conn: Connection, loads: Mapping[str, LoadReading], rules: Rules) -> None:
    """Release energised reservations whose load shows: the equipment's load basis rose since energisation
    by at least the configured share of the reserved kVA (in kW with the configured power factor)."""
    ids = [key for key, reading in loads.items() if reading.peak_kw is not None and reading.problem is None]
    if not ids:
        return
    table = capacity_reservations
    held = conn.execute(
        sa.select(
            table.c.application_no, table.c.equipment_id, table.c.kva, table.c.basis_kw_at_energisation
        ).where(table.c.equipment_id.in_(ids), table.c.energised_at.is_not(None))
    ).all()
    for row in held:
        peak = loads[row.equipment_id].peak_kw
        if row.basis_kw_at_energisation is None or peak is None:
            continue
        risen = peak - row.basis_kw_at_energisation
        if risen >= rules.energised_load_share * row.kva * rules.power_factor:
            conn.execute(
                table.delete().where(
                    table.c.application_no == row.application_no, table.c.equipment_id == row.equipment_id
                )
            )


def _reduce_customer_reservations(conn: Connection, application: ConnectionApplication) -> RuleCheck | None:
    """A reduction or suspension caps what the customer's other open applications hold at the capacity it
    keeps: it cannot use more than that. Returns the trace entry, or None when nothing was held."""
    table = capacity_reservations
    kept = application.requested_capacity_kva
    others = [
        application_no
        for application_no, document in conn.execute(
            sa.select(feasibility_assessments.c.application_no, feasibility_assessments.c.application).where(
                feasibility_assessments.c.is_open,
                feasibility_assessments.c.application_no != application.application_no,
            )
        )
        if isinstance(document, dict) and document.get("customer_no") == application.customer_no
    ]
    if not others:
        return None
    held = conn.execute(
        sa.select(table.c.application_no, table.c.equipment_id, table.c.kva).where(
            table.c.application_no.in_(others), table.c.kva > kept
        )
    ).all()
    for row in held:
        conn.execute(
            table.update()
            .where(table.c.application_no == row.application_no, table.c.equipment_id == row.equipment_id)
            .values(kva=kept)
        )
    return RuleCheck(
        rule="reservation_reduced",
        inputs={"customer_no": application.customer_no, "open_applications": sorted(others)},
        threshold={"kept_kva": kept},
        result=RuleResult.INFO,
        detail=f"{len(held)} reservation(s) of the customer's other open applications above the {kept:g} kVA "
        "it keeps were cut to it",
    )


def _lock(conn: Connection, equipment_ids: list[str]) -> None:
    """Take the capacity lock rows of the equipment (sorted ids), creating missing ones first, in id order."""
    if not equipment_ids:
        return
    now = utcnow()
    rows = [{"equipment_id": item, "locked_at": now} for item in equipment_ids]
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(postgresql.insert(capacity_locks).on_conflict_do_nothing(), rows)
    elif dialect == "sqlite":
        conn.execute(sqlite.insert(capacity_locks).on_conflict_do_nothing(), rows)
    else:
        # Not a read then an insert: two assessments would both miss a new row, and one insert would fail.
        upsert = mysql.insert(capacity_locks)
        conn.execute(upsert.on_duplicate_key_update(equipment_id=upsert.inserted.equipment_id), rows)
    conn.execute(
        sa.select(capacity_locks.c.equipment_id)
        .where(capacity_locks.c.equipment_id.in_(equipment_ids))
        .order_by(capacity_locks.c.equipment_id)
        .with_for_update()
    ).all()
