"""Running the consistency rules inside the workflow: findings kept per application and rule, and announced.

When an application record arrives or changes, and when a customer record changes (for each open case of
that customer), the enabled rules run against what the hub knows. Each finding is kept in
consistency_findings, one row per application and rule, and published as case.consistency_finding in the
same transaction; a rule that no longer finds anything sets cleared_at and publishes
case.consistency_cleared; a disagreement that comes back is raised again. Personal values (site address,
coordinates) are stored masked in details, their plain form sealed beside them, and travel masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bus.outbox import EventDraft, stage_event
from canonical_model.application import ConnectionApplication
from canonical_model.consistency import ConsistencyFinding, FindingState, FindingValue
from canonical_model.customer import Customer
from canonical_model.pii import mask_value
from canonical_model.registry import schema_uri
from store.database import utcnow
from store.grid import grid_equipment, grid_state
from store.schema import cases, consistency_findings, customers
from workflow.consistency import (
    AppliedFacts,
    ConsistencyConfig,
    CustomerFacts,
    TransformerFacts,
)
from workflow.events import CASE_FINDING_CLEARED, CASE_FINDING_RAISED, HUB_SOURCE, ROUTING_KEYS

FINDING_SCHEMA = "consistency_finding.v1"
TRANSFORMER_KIND = "transformer"


class StoreKnowledge:
    """What the hub database knows: the grid projection's transformers and the open cases.

    The transformers of each district are read once per grid revision: a check runs for every application
    event, and scanning the projection's documents each time would cost far more than the check.
    """

    def __init__(self, conn: Connection, cache: dict[str, Any] | None = None) -> None:
        self._conn = conn
        self._cache = cache if cache is not None else {}

    def _districts(self) -> dict[str, list[TransformerFacts]]:
        state = grid_state(self._conn)
        if self._cache.get("state") != state or "districts" not in self._cache:
            rows = self._conn.execute(
                sa.select(grid_equipment.c.equipment_id, grid_equipment.c.document)
                .where(grid_equipment.c.kind == TRANSFORMER_KIND, grid_equipment.c.deleted_at.is_(None))
                .order_by(grid_equipment.c.equipment_id)
            )
            districts: dict[str, list[TransformerFacts]] = {}
            count = 0
            for row in rows:
                count += 1
                district = row.document.get("transformer_district_id")
                if district:
                    districts.setdefault(district, []).append(
                        TransformerFacts.of_document(row.equipment_id, row.document)
                    )
            self._cache.update(state=state, districts=districts, count=count)
        districts_now: dict[str, list[TransformerFacts]] = self._cache["districts"]
        return districts_now

    def holds_transformers(self) -> bool:
        """Whether the grid projection holds any live distribution transformer."""
        self._districts()
        return bool(self._cache["count"])

    def transformer_of_district(self, district_id: str) -> TransformerFacts | None:
        """The district's transformer, one in service first when PMS links several."""
        linked = self._districts().get(district_id, [])
        return next((item for item in linked if item.status == "in_service"), linked[0] if linked else None)

    def open_applications(
        self, *, customer_no: str | None, business_type: str, org_no: str | None
    ) -> Sequence[ConnectionApplication]:
        """Open cases of the business type of this customer or of this supply unit."""
        scope = [cases.c.customer_no == customer_no] if customer_no else []
        if org_no:
            scope.append(cases.c.responsible == org_no)
        if not scope:
            return []
        rows = self._conn.execute(
            sa.select(cases.c.application).where(
                cases.c.status == "open", cases.c.business_type == business_type, sa.or_(*scope)
            )
        ).scalars()
        return [ConnectionApplication.model_validate(document) for document in rows]


def customer_facts(conn: Connection, customer_no: str) -> CustomerFacts | None:
    """The stored marketing customer record's facts, or None while the hub has none."""
    document = conn.execute(
        sa.select(customers.c.document).where(customers.c.customer_no == customer_no)
    ).scalar()
    return CustomerFacts.of_customer(Customer.model_validate(document)) if document is not None else None


def masked_values(values: Sequence[FindingValue]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(the values with personal ones masked, the plain personal values by position)."""
    shown: list[dict[str, Any]] = []
    personal: dict[str, Any] = {}
    for index, item in enumerate(values):
        document = item.model_dump(mode="json")
        if item.personal and item.value is not None:
            personal[str(index)] = item.value
            document["value"] = mask_value(str(item.value))
        shown.append(document)
    return shown, personal


def unmasked_values(
    details: Sequence[dict[str, Any]], personal: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Stored details with their personal values put back."""
    plain = personal or {}
    return [
        {**item, "value": plain[str(index)]} if str(index) in plain else dict(item)
        for index, item in enumerate(details)
    ]


@dataclass
class ConsistencyChecker:
    """Runs the configured rules for cases and keeps their findings; one lives with the case tracker."""

    config: ConsistencyConfig
    exchange: str

    def __post_init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def knowledge(self, conn: Connection) -> StoreKnowledge:
        """What the hub knows, read through conn."""
        return StoreKnowledge(conn, self._cache)

    def check_application(
        self, conn: Connection, application: ConnectionApplication, *, correlation_id: str
    ) -> list[ConsistencyFinding]:
        """Check one application as it now stands; keep and announce what changed. Returns the findings."""
        customer = customer_facts(conn, application.customer_no)
        applied = AppliedFacts.of_application(application)
        findings = self.config.check(applied, customer, self.knowledge(conn))
        self._reconcile(conn, application, findings, correlation_id)
        return findings

    def check_customer(self, conn: Connection, customer_no: str, *, correlation_id: str) -> None:
        """Check every open case of a customer whose record changed."""
        documents = conn.execute(
            sa.select(cases.c.application)
            .where(cases.c.customer_no == customer_no, cases.c.status == "open")
            .order_by(cases.c.application_no)
        ).scalars()
        for document in list(documents):
            application = ConnectionApplication.model_validate(document)
            self.check_application(conn, application, correlation_id=correlation_id)

    def _reconcile(
        self,
        conn: Connection,
        application: ConnectionApplication,
        findings: list[ConsistencyFinding],
        correlation_id: str,
    ) -> None:
        table = consistency_findings
        number = application.application_no
        stored = {
            row.rule: row for row in conn.execute(sa.select(table).where(table.c.application_no == number))
        }
        now = utcnow()
        for finding in findings:
            details, personal = masked_values(finding.values)
            values = {
                "category": finding.category,
                "systems": list(finding.systems),
                "details": details,
                "message": finding.message,
                "personal": personal or None,
            }
            row = stored.get(finding.rule)
            if row is None:
                conn.execute(
                    table.insert().values(application_no=number, rule=finding.rule, found_at=now, **values)
                )
                found_at = now
            elif row.cleared_at is not None:
                conn.execute(
                    table.update().where(table.c.id == row.id).values(found_at=now, cleared_at=None, **values)
                )
                found_at = now
            elif row.details != details or row.message != finding.message:
                conn.execute(table.update().where(table.c.id == row.id).values(**values))
                found_at = row.found_at
            else:
                continue
            announced = finding.model_copy(update={"found_at": found_at})
            self._publish(conn, application, announced, details, CASE_FINDING_RAISED, correlation_id)
        found = {finding.rule for finding in findings}
        for rule in self.config.enabled:
            row = stored.get(rule.name)
            if rule.name in found or row is None or row.cleared_at is not None:
                continue
            conn.execute(table.update().where(table.c.id == row.id).values(cleared_at=now))
            cleared = ConsistencyFinding(
                application_no=number,
                rule=rule.name,
                kind=rule.kind,
                category=row.category,
                state=FindingState.CLEARED,
                systems=tuple(row.systems),
                values=tuple(FindingValue.model_validate(item) for item in row.details),
                message=row.message,
                found_at=row.found_at,
                cleared_at=now,
            )
            self._publish(conn, application, cleared, row.details, CASE_FINDING_CLEARED, correlation_id)

    def _publish(
        self,
        conn: Connection,
        application: ConnectionApplication,
        finding: ConsistencyFinding,
        details: list[dict[str, Any]],
        event_type: str,
        correlation_id: str,
    ) -> None:
        data = finding.model_dump(mode="json")
        data["values"] = details
        draft = EventDraft(
            event_type=event_type,
            source=HUB_SOURCE,
            subject=application.application_no,
            dataschema=schema_uri(FINDING_SCHEMA),
            data=data,
            exchange=self.exchange,
            routing_key=f"{ROUTING_KEYS[event_type]}.{application.customer_class.value}",
            time=_time(finding),
        )
        stage_event(conn, draft, correlation_id=correlation_id)


def _time(finding: ConsistencyFinding) -> datetime | None:
    return finding.cleared_at or finding.found_at


def findings_of(conn: Connection, application_no: str, *, unmasked: bool) -> list[dict[str, Any]]:
    """The findings of a case for the API, oldest first; personal values masked unless unmasked."""
    table = consistency_findings
    rows = conn.execute(
        sa.select(table)
        .where(table.c.application_no == application_no)
        .order_by(table.c.found_at, table.c.rule)
    )
    return [
        {
            "rule": row.rule,
            "category": row.category,
            "systems": list(row.systems),
            "values": unmasked_values(row.details, row.personal) if unmasked else list(row.details),
            "message": row.message,
            "found_at": row.found_at.isoformat(),
            "cleared_at": row.cleared_at.isoformat() if row.cleared_at else None,
        }
        for row in rows
    ]
