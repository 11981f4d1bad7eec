"""Running the consistency rules inside the workflow: findings kept per application and rule, and announced.

When an application record arrives or changes, and when a customer record changes (for each open case of
that customer), the enabled rules run against what the hub knows. Each finding is kept in
consistency_findings, one row per application and rule, and published as case.consistency_finding in the
same transaction; a rule that no longer finds anything sets cleared_at and publishes
case.consistency_cleared; a disagreement that comes back is raised again. A finding whose rule the case's
online submission accepted (accept_findings) is marked accepted. Personal values (site address,
coordinates) are stored masked in details, their plain form sealed beside them, and travel masked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical_model.application import ConnectionApplication
from canonical_model.common import GeoPoint
from canonical_model.consistency import ConsistencyFinding, FindingState, FindingValue
from canonical_model.customer import Customer
from canonical_model.events import CASE_FINDING_CLEARED, CASE_FINDING_RAISED, channel_of, listed
from canonical_model.pii import mask_value
from feasibility.inputs import bbox_around
from pipeline.outbox import stage_event
from pipeline.records import EventDraft
from store.database import utcnow
from store.grid import cells_covering, grid_equipment, grid_state
from store.schema import cases, consistency_findings, customers
from store.submissions import submissions
from workflow.consistency import (
    AppliedFacts,
    ConsistencyConfig,
    CustomerFacts,
    OpenCase,
    TransformerFacts,
    address_key,
)
from workflow.events import HUB_SOURCE

TRANSFORMER_KIND = "transformer"
# Kinds whose findings a change of PMS data can resolve.
GRID_KINDS = frozenset({"equipment_unknown", "capacity_voltage_mismatch", "site_outside_supply_radius"})


class DistrictIndex:
    """The live PMS distribution transformers by marketing district, kept current by grid revision.

    A check runs for every application event. The whole projection is read once per projection generation;
    after that only the rows written since the revision last seen are read (grid_equipment.revision), so a
    busy PMS sync does not make every check scan the grid again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._generation: str | None = None
        self._revision = 0
        self._by_id: dict[str, TransformerFacts] = {}
        self._district_of: dict[str, str] = {}
        # The district a transformer left at its last change, whose cases that change concerns too.
        self._moved_from: dict[str, str] = {}
        self._districts: dict[str, dict[str, TransformerFacts]] = {}

    def refresh(self, conn: Connection) -> None:
        """Take in what the projection changed since the last refresh."""
        state = grid_state(conn)
        with self._lock:
            if state is None:
                self._reset()  # no grid yet
                return
            generation, revision = state
            query = sa.select(
                grid_equipment.c.equipment_id, grid_equipment.c.document, grid_equipment.c.deleted_at
            ).where(grid_equipment.c.kind == TRANSFORMER_KIND)
            if generation != self._generation:
                self._reset()
            elif revision > self._revision:
                query = query.where(grid_equipment.c.revision > self._revision)
            else:
                return
            for row in conn.execute(query):
                self._take(row.equipment_id, row.document, row.deleted_at is None)
            self._generation, self._revision = generation, revision

    def _take(self, equipment_id: str, document: dict[str, Any], live: bool) -> None:
        self._by_id.pop(equipment_id, None)
        left = self._district_of.pop(equipment_id, None)
        if left is not None:
            self._districts[left].pop(equipment_id, None)
        district = document.get("transformer_district_id") if live else None
        if left is not None and left != district:
            self._moved_from[equipment_id] = left
        else:
            self._moved_from.pop(equipment_id, None)
        if not live:
            return
        self._by_id[equipment_id] = facts = TransformerFacts.of_document(equipment_id, document)
        if district:
            self._district_of[equipment_id] = district
            self._districts.setdefault(district, {})[equipment_id] = facts

    def district_of(self, equipment_id: str) -> str | None:
        """The district a transformer was linked to when last read."""
        with self._lock:
            return self._district_of.get(equipment_id)

    def districts_of_change(self, equipment_id: str) -> set[str]:
        """The district a transformer is linked to and, if its last change moved it, the one it left."""
        with self._lock:
            linked = (self._district_of.get(equipment_id), self._moved_from.get(equipment_id))
        return {district for district in linked if district}

    @property
    def live_count(self) -> int:
        """How many live transformers the projection holds."""
        return len(self._by_id)

    def of_district(self, district_id: str) -> TransformerFacts | None:
        """The district's transformer, one in service first when PMS links several."""
        with self._lock:
            linked = [facts for _, facts in sorted(self._districts.get(district_id, {}).items())]
        return next((item for item in linked if item.status == "in_service"), linked[0] if linked else None)


# The box is drawn on a slightly larger earth than the duplicate check measures on; a metre more keeps a site
# at exactly the check's distance inside it.
_BOX_SLACK_M = 1.0

# Every application and customer event runs these reads. Built once with bound parameters, each keeps its
# cache key and compiled form; a statement built per call costs more in Python than its round trip.
_OPEN = (cases.c.status == "open", cases.c.business_type == sa.bindparam("business_type"))
_IN_CELLS = cases.c.site_cell.in_(sa.bindparam("cells", expanding=True))
_CANDIDATES_BY = {
    "customer": cases.c.customer_no == sa.bindparam("customer_no"),
    "box": sa.and_(
        _IN_CELLS,
        cases.c.site_lat.between(sa.bindparam("min_lat"), sa.bindparam("max_lat")),
        cases.c.site_lon.between(sa.bindparam("min_lon"), sa.bindparam("max_lon")),
    ),
    "unplaced": sa.and_(_IN_CELLS, cases.c.site_lat.is_(None)),
    "address": cases.c.address_key == sa.bindparam("address_key"),
}
_CANDIDATES = {
    way: sa.select(cases.c.application_no, cases.c.application).where(condition, *_OPEN)
    for way, condition in _CANDIDATES_BY.items()
}
_CUSTOMER_DOCUMENT = sa.select(customers.c.document).where(
    customers.c.customer_no == sa.bindparam("customer_no")
)
_ACCEPTING_REQUESTS = sa.select(submissions.c.request).where(
    submissions.c.application_no == sa.bindparam("application_no")
)
_OPEN_OF_CUSTOMER = cases.c.customer_no == sa.bindparam("customer_no"), cases.c.status == "open"
_OPEN_NUMBERS_OF_CUSTOMER = sa.select(cases.c.application_no).where(*_OPEN_OF_CUSTOMER)
_OPEN_APPLICATIONS_OF_CUSTOMER = (
    sa.select(cases.c.application_no, cases.c.application)
    .where(*_OPEN_OF_CUSTOMER)
    .order_by(cases.c.application_no)
)
_FINDINGS_OF = sa.select(consistency_findings).where(
    consistency_findings.c.application_no == sa.bindparam("application_no")
)
_OPEN_APPLICATION = sa.select(cases.c.application).where(
    cases.c.application_no == sa.bindparam("application_no"), cases.c.status == "open"
)


class StoreKnowledge:
    """What the hub database knows: the grid projection's transformers and the open cases."""

    def __init__(self, conn: Connection, districts: DistrictIndex | None = None) -> None:
        self._conn = conn
        self._districts = districts or DistrictIndex()
        self._districts.refresh(conn)

    def holds_transformers(self) -> bool:
        """Whether the grid projection holds any live distribution transformer."""
        return self._districts.live_count > 0

    def transformer_of_district(self, district_id: str) -> TransformerFacts | None:
        """The district's transformer, one in service first when PMS links several."""
        return self._districts.of_district(district_id)

    def open_applications(
        self,
        *,
        customer_no: str | None,
        business_type: str,
        site: GeoPoint | None,
        within_m: float,
        address: str | None,
    ) -> Sequence[OpenCase]:
        """Open cases of the business type: of this customer, in a box around the site, or at the address.

        The box is read through the cells it covers and the latitude band within them (ix_cases_site), so the
        check reads the applications near the site rather than every one of its square kilometre. A row with
        a cell but no coordinates (written before revision 0007, or by an older instance beside this one) is
        read whole, as it was then: the distance is measured on the application either way.
        """
        params: dict[str, Any] = {"business_type": business_type}
        ways = []
        if customer_no:
            ways.append("customer")
            params["customer_no"] = customer_no
        if site is not None:
            min_lon, min_lat, max_lon, max_lat = bbox_around(site, within_m + _BOX_SLACK_M)
            cells = cells_covering(min_lon, min_lat, max_lon, max_lat)
            if cells:
                ways += ["box", "unplaced"]
                params.update(
                    cells=list(cells), min_lat=min_lat, max_lat=max_lat, min_lon=min_lon, max_lon=max_lon
                )
        key = address_key(address)
        if key is not None:
            ways.append("address")
            params["address_key"] = key
        if not ways:
            return []
        # One select per way of being a duplicate, each an index search: under an OR, SQLite's planner
        # (without statistics) reads every open case through the status index instead.
        # A case found more than one way comes once (a union would have to compare the JSON documents).
        found = sa.union_all(*(_CANDIDATES[way] for way in ways))
        documents = dict(self._conn.execute(found, params).tuples().all())
        return [OpenCase.of_document(document) for document in documents.values()]


def customer_facts(conn: Connection, customer_no: str) -> CustomerFacts | None:
    """The stored marketing customer record's facts, or None while the hub has none."""
    document = conn.execute(_CUSTOMER_DOCUMENT, {"customer_no": customer_no}).scalar()
    return CustomerFacts.of_customer(Customer.model_validate(document)) if document is not None else None


def accepted_rules(conn: Connection, application_no: str) -> frozenset[str]:
    """The rules whose findings the online submission of an application accepted (accept_findings)."""
    requests = conn.execute(_ACCEPTING_REQUESTS, {"application_no": application_no}).scalars()
    return frozenset(rule for request in requests for rule in request.get("accept_findings") or ())


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
        self._districts = DistrictIndex()

    def knowledge(self, conn: Connection) -> StoreKnowledge:
        """What the hub knows, read through conn."""
        return StoreKnowledge(conn, self._districts)

    def check_application(
        self, conn: Connection, application: ConnectionApplication, *, correlation_id: str
    ) -> list[ConsistencyFinding]:
        """Check one application as it now stands; keep and announce what changed. Returns the findings."""
        return self._check(
            conn,
            application,
            customer_facts(conn, application.customer_no),
            self.knowledge(conn),
            correlation_id=correlation_id,
        )

    def _check(
        self,
        conn: Connection,
        application: ConnectionApplication,
        customer: CustomerFacts | None,
        knowledge: StoreKnowledge,
        *,
        correlation_id: str,
    ) -> list[ConsistencyFinding]:
        applied = AppliedFacts.of(application, system="marketing", application_no=application.application_no)
        findings = self.config.check(applied, customer, knowledge)
        self._reconcile(conn, application, findings, correlation_id)
        return findings

    def check_customer(
        self,
        conn: Connection,
        customer_no: str,
        *,
        correlation_id: str,
        may_change: Callable[[str, str], bool],
    ) -> None:
        """Check the open cases of a customer whose record changed.

        may_change(application_no, customer_no) tells whether the caller may change a case's findings
        (holds its locks); a case it may not, one that joined the customer meanwhile, is checked at its own
        next event.
        """
        rows = conn.execute(_OPEN_APPLICATIONS_OF_CUSTOMER, {"customer_no": customer_no}).all()
        changeable = [row for row in rows if may_change(row.application_no, customer_no)]
        if not changeable:
            return
        # Every case of the customer is checked against the one record and the one state of the grid.
        customer = customer_facts(conn, customer_no)
        knowledge = self.knowledge(conn)
        for row in changeable:
            application = ConnectionApplication.model_validate(row.application)
            self._check(conn, application, customer, knowledge, correlation_id=correlation_id)

    def open_cases_of_customer(self, conn: Connection, customer_no: str) -> list[str]:
        """The application numbers of a customer's open cases, whose findings its record change re-checks."""
        return list(conn.execute(_OPEN_NUMBERS_OF_CUSTOMER, {"customer_no": customer_no}).scalars())

    def check_grid_change(
        self,
        conn: Connection,
        transformer_id: str,
        *,
        correlation_id: str,
        may_change: Callable[[str, str], bool],
    ) -> None:
        """Re-check the open cases whose standing grid findings name a changed transformer's district.

        So a finding clears once PMS is corrected. A PMS change that makes a clean case disagree shows
        at the case's next application or customer change: finding those cases would mean searching every
        customer by district on every grid change. may_change(application_no, customer_no) tells whether
        the caller may change a case's findings (holds its locks); a finding raised after the caller
        took them is re-checked at its case's next event.
        """
        for number, customer_no in sorted(self.cases_concerned(conn, transformer_id).items()):
            if not may_change(number, customer_no):
                continue
            document = conn.execute(_OPEN_APPLICATION, {"application_no": number}).scalar()
            if document is not None:
                application = ConnectionApplication.model_validate(document)
                self.check_application(conn, application, correlation_id=correlation_id)

    def cases_concerned(self, conn: Connection, transformer_id: str) -> dict[str, str]:
        """Customer numbers of the open cases a transformer change may clear a finding of, by application.

        Those with a standing grid finding that names the district the transformer is linked to, or the
        one it left: a PMS sync changes many transformers, and each concerns a few districts' cases.
        """
        self._districts.refresh(conn)
        districts = self._districts.districts_of_change(transformer_id)
        rules = [rule.name for rule in self.config.enabled if rule.kind in GRID_KINDS]
        if not districts or not rules:
            return {}
        table = consistency_findings
        rows = conn.execute(
            sa.select(cases.c.application_no, cases.c.customer_no, table.c.details)
            .join(table, table.c.application_no == cases.c.application_no)
            .where(table.c.cleared_at.is_(None), table.c.rule.in_(rules), cases.c.status == "open")
        )
        return {
            row.application_no: row.customer_no
            for row in rows
            if any(
                item.get("field") == "transformer_district_id" and item.get("value") in districts
                for item in row.details
            )
        }

    def _reconcile(
        self,
        conn: Connection,
        application: ConnectionApplication,
        findings: list[ConsistencyFinding],
        correlation_id: str,
    ) -> None:
        table = consistency_findings
        number = application.application_no
        stored = {row.rule: row for row in conn.execute(_FINDINGS_OF, {"application_no": number})}
        now = utcnow()
        accepted = accepted_rules(conn, number) if findings else frozenset()
        for finding in findings:
            finding = finding.model_copy(update={"accepted": finding.rule in accepted})
            details, personal = masked_values(finding.values)
            values = {
                "category": finding.category,
                "systems": list(finding.systems),
                "details": details,
                "message": finding.message,
                "personal": personal or None,
                "accepted": finding.accepted,
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
            elif row.details != details or row.message != finding.message or row.accepted != finding.accepted:
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
                accepted=row.accepted,
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
            dataschema=listed(event_type).dataschema,
            data=data,
            exchange=self.exchange,
            routing_key=channel_of(event_type).key(customer_class=application.customer_class.value),
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
            "accepted": row.accepted,
            "found_at": row.found_at.isoformat(),
            "cleared_at": row.cleared_at.isoformat() if row.cleared_at else None,
        }
        for row in rows
    ]
