"""Findings in the workflow: kept per application and rule, published, cleared when corrected, raised anew."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical_model.consistency import ConsistencyFinding
from canonical_model.envelope import CloudEvent
from canonical_model.events import CASE_FINDING_CLEARED, CASE_FINDING_RAISED, PROJECTION_UPDATED
from canonical_model.registry import schema_uri
from ground import clock
from ground.settings import PROJECT_ROOT
from pipeline.decoded import DecodedEvent
from store.schema import cases, consistency_findings, outbox
from store.submissions import add_submission, settle, submissions
from workflow.cases import CaseTracker, case_key, customer_key, transformer_key
from workflow.config import WorkflowConfig
from workflow.consistency_config import load_consistency_config
from workflow.findings import DistrictIndex, findings_of
from workflow.grid import handle_grid_event
from workflow.workdays import WorkingCalendar
from yekuo.consumers import CONSUMERS

from .events import customer_event
from .records import low_voltage, the_customer, transformer_event

FOUND = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


@pytest.fixture
def frozen() -> Iterator[clock.FixedClock]:
    with clock.frozen_at(FOUND) as fixed:
        yield fixed


@pytest.fixture
def checking(config: WorkflowConfig, calendar: WorkingCalendar) -> CaseTracker:
    return CaseTracker(config, calendar, consistency=load_consistency_config(PROJECT_ROOT))


def apply(engine: Engine, tracker: CaseTracker, *events: CloudEvent) -> None:
    with engine.begin() as conn:
        for event in events:
            if event.type.startswith("cn.yekuo.grid."):
                handle_grid_event(conn, DecodedEvent(event))
            else:
                tracker(conn, DecodedEvent(event))


def apply_grid(engine: Engine, *events: CloudEvent) -> None:
    with engine.begin() as conn:
        for event in events:
            handle_grid_event(conn, DecodedEvent(event))


def published(engine: Engine) -> list[tuple[str, str, dict[str, Any]]]:
    query = sa.select(outbox.c.event_type, outbox.c.routing_key, outbox.c.body).order_by(outbox.c.id)
    with engine.connect() as conn:
        rows = conn.execute(query.where(outbox.c.event_type.like("%consistency%"))).all()
    return [(kind, key, json.loads(body)["data"]) for kind, key, body in rows]


def stored(engine: Engine, application_no: str = "A1") -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return findings_of(conn, application_no, unmasked=False)


def test_a_clean_case_has_no_findings(sqlite_engine: Engine, checking: CaseTracker, frozen: object) -> None:
    apply(sqlite_engine, checking, transformer_event("TG0000001"), the_customer(), low_voltage("A1"))
    assert stored(sqlite_engine) == []
    assert published(sqlite_engine) == []


def test_a_finding_is_stored_and_published_then_cleared_when_the_record_is_corrected(
    sqlite_engine: Engine, checking: CaseTracker, frozen: clock.FixedClock
) -> None:
    apply(sqlite_engine, checking, transformer_event("TG0000001"), the_customer())
    apply(sqlite_engine, checking, low_voltage("A1", industry_code="C1711"))
    [finding] = stored(sqlite_engine)
    assert finding["rule"] == "industry_code_agrees"
    assert finding["category"] == "information_error"
    assert finding["systems"] == ["marketing"]
    assert [item["value"] for item in finding["values"]] == ["C1711", "H6210"]
    assert finding["found_at"] == FOUND.isoformat() and finding["cleared_at"] is None
    [(kind, key, data)] = published(sqlite_engine)
    assert kind == CASE_FINDING_RAISED
    assert key == "case.consistency_finding.lv_non_residential"
    event = ConsistencyFinding.model_validate(data)
    assert event.application_no == "A1" and event.rule == "industry_code_agrees"
    assert event.state == "raised" and event.found_at == FOUND

    # The same record again changes nothing and announces nothing.
    apply(sqlite_engine, checking, low_voltage("A1", sequence=2, industry_code="C1711"))
    assert len(published(sqlite_engine)) == 1

    later = frozen.advance(timedelta(hours=1))
    apply(sqlite_engine, checking, low_voltage("A1", sequence=3, industry_code="H6210"))
    [finding] = stored(sqlite_engine)
    assert finding["cleared_at"] == later.isoformat()
    kind, _, data = published(sqlite_engine)[-1]
    assert kind == CASE_FINDING_CLEARED
    assert data["state"] == "cleared"
    assert datetime.fromisoformat(data["cleared_at"]) == later

    # It comes back: raised again, with a new found_at.
    again = frozen.advance(timedelta(hours=1))
    apply(sqlite_engine, checking, low_voltage("A1", sequence=4, industry_code="C1711"))
    [finding] = stored(sqlite_engine)
    assert finding["found_at"] == again.isoformat() and finding["cleared_at"] is None
    assert [kind for kind, _, _ in published(sqlite_engine)] == [
        CASE_FINDING_RAISED,
        CASE_FINDING_CLEARED,
        CASE_FINDING_RAISED,
    ]


def test_a_customer_record_change_rechecks_its_open_cases(
    sqlite_engine: Engine, checking: CaseTracker, frozen: object
) -> None:
    apply(sqlite_engine, checking, transformer_event("TG0000001"), the_customer(), low_voltage("A1"))
    assert stored(sqlite_engine) == []
    apply(sqlite_engine, checking, the_customer(2, transformer_district_id="TG0000404"))
    [finding] = stored(sqlite_engine)
    assert finding["rule"] == "transformer_district_known"
    assert finding["systems"] == ["marketing", "pms"]
    apply(sqlite_engine, checking, the_customer(3))
    [finding] = stored(sqlite_engine)
    assert finding["cleared_at"] is not None


def test_personal_values_are_stored_masked_and_sealed_apart(
    sqlite_engine: Engine, checking: CaseTracker, frozen: object
) -> None:
    far = {"lon": 112.5, "lat": 33.01}
    apply(
        sqlite_engine,
        checking,
        transformer_event("TG0000001"),
        the_customer(),
        low_voltage("A1", site_location=far),
    )
    [finding] = stored(sqlite_engine)
    assert finding["rule"] == "site_within_supply_radius"
    site = next(item for item in finding["values"] if item["field"] == "site_location")
    assert site["personal"] is True and site["value"].startswith("****") and "112.5" not in site["value"]
    with sqlite_engine.connect() as conn:
        [unmasked] = findings_of(conn, "A1", unmasked=True)
        raw = conn.execute(sa.text("SELECT personal FROM consistency_findings")).scalar_one()
    plain = next(item for item in unmasked["values"] if item["field"] == "site_location")
    assert plain["value"] == "112.500000,33.010000"
    assert "112.5" not in raw  # sealed at rest
    [(_, _, data)] = published(sqlite_engine)
    assert "112.500000,33.010000" not in json.dumps(data)


def test_without_rules_nothing_is_checked(sqlite_engine: Engine, tracker: CaseTracker) -> None:
    apply(sqlite_engine, tracker, the_customer(), low_voltage("A1", industry_code="C1711"))
    with sqlite_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(consistency_findings)).scalar_one() == 0


def test_the_district_index_follows_the_grid_by_revision(sqlite_engine: Engine) -> None:
    index = DistrictIndex()
    with sqlite_engine.connect() as conn:
        index.refresh(conn)
    assert index.live_count == 0 and index.of_district("TG0000001") is None

    apply_grid(sqlite_engine, transformer_event("TG0000001"))
    with sqlite_engine.connect() as conn:
        index.refresh(conn)
    found = index.of_district("TG0000001")
    assert found is not None and found.equipment_id == "PB1" and found.status == "in_service"

    # Only the rows written since the last revision are read again: the change is seen, the rest kept.
    apply_grid(
        sqlite_engine,
        transformer_event("TG0000001", 2, status="out_of_service", updated_at="2026-11-27T10:00:00+08:00"),
    )
    with sqlite_engine.connect() as conn:
        index.refresh(conn)
    found = index.of_district("TG0000001")
    assert found is not None and found.status == "out_of_service"

    gone = CloudEvent(
        id="grid-gone",
        source="/pms/transformer_deleted",
        type="cn.yekuo.grid.transformer.deleted.v1",
        subject="PB1",
        time=FOUND,
        dataschema=schema_uri("equipment_deletion.v1"),
        correlationid="c",
        sequence=1,
        data={
            "equipment_id": "PB1",
            "kind": "transformer",
            "last_changed_at": "2026-11-27T10:00:00+08:00",
            "detected_at": "2026-11-28T10:00:00+08:00",
        },
    )
    apply_grid(sqlite_engine, gone)
    with sqlite_engine.connect() as conn:
        index.refresh(conn)
    assert index.of_district("TG0000001") is None and index.live_count == 0


def projection_update(transformer_id: str = "PB1") -> CloudEvent:
    return CloudEvent(
        id=f"projection-{transformer_id}-{uuid.uuid4()}",
        source="/hub/projection/grid",
        type=PROJECTION_UPDATED,
        subject=transformer_id,
        time=FOUND,
        dataschema=schema_uri("projection_update.v1"),
        correlationid="c",
        sequence=1,
        data={
            "projection": "grid",
            "equipment_id": transformer_id,
            "equipment_kind": "transformer",
            "source_event_id": "grid-x",
            "source_event_type": "cn.yekuo.grid.transformer.changed.v1",
        },
    )


def test_a_finding_clears_when_pms_is_corrected(
    sqlite_engine: Engine, checking: CaseTracker, frozen: object
) -> None:
    other = transformer_event("TG0000002", transformer_id="PB2")
    apply_grid(sqlite_engine, other)
    apply(sqlite_engine, checking, the_customer(), low_voltage("A1"))
    [finding] = stored(sqlite_engine)
    assert finding["rule"] == "transformer_district_known" and finding["cleared_at"] is None

    # PMS links its transformer to the district; the projection's notice reaches the workflow.
    apply_grid(sqlite_engine, transformer_event("TG0000001"))
    apply(sqlite_engine, checking, projection_update("PB2"))
    assert stored(sqlite_engine)[0]["cleared_at"] is None  # another transformer: nothing to re-check
    apply(sqlite_engine, checking, projection_update("PB1"))
    [finding] = stored(sqlite_engine)
    assert finding["cleared_at"] is not None
    assert [kind for kind, _, _ in published(sqlite_engine)] == [CASE_FINDING_RAISED, CASE_FINDING_CLEARED]


def test_the_workflow_consumer_hears_of_transformer_changes() -> None:
    [workflow] = [spec for spec in CONSUMERS if spec.name == "workflow"]
    assert "projection.grid.transformer" in workflow.topics


def test_a_finding_the_online_submission_accepted_is_marked_accepted_on_the_case(
    sqlite_engine: Engine, checking: CaseTracker, frozen: object
) -> None:
    request = {"industry_code": "C1711", "accept_findings": ["industry_code_agrees"]}
    with sqlite_engine.begin() as conn:
        add_submission(
            conn, tracking_id="t-1", idempotency_key=None, request_hash="h", request=request, arguments={}
        )
        settle(conn, submissions, submissions.c.tracking_id, "t-1", status="submitted", application_no="A1")
    apply(sqlite_engine, checking, the_customer(), low_voltage("A1", industry_code="C1711"))
    # Another application of the customer, not submitted online (it is also a duplicate of A1).
    apply(sqlite_engine, checking, low_voltage("A2", industry_code="C1711"))
    [accepted] = stored(sqlite_engine, "A1")
    others = {item["rule"]: item for item in stored(sqlite_engine, "A2")}
    assert accepted["rule"] == "industry_code_agrees" and accepted["accepted"] is True
    assert others["industry_code_agrees"]["accepted"] is False
    assert others["no_duplicate_application"]["accepted"] is False
    events = {
        (data["application_no"], data["rule"], data["accepted"]) for _, _, data in published(sqlite_engine)
    }
    assert ("A1", "industry_code_agrees", True) in events and ("A2", "industry_code_agrees", False) in events


def test_duplicates_are_found_by_customer_site_cell_and_address_across_supply_units(
    sqlite_engine: Engine, checking: CaseTracker, frozen: object
) -> None:
    elsewhere = {"lon": 112.6, "lat": 33.1}  # about 14 km away, in other cells
    apply(
        sqlite_engine,
        checking,
        # D1: another customer of another unit, 5 m from A1's site.
        low_voltage(
            "D1",
            customer_no="4130000002",
            org_no="41402",
            site_location={"lon": 112.50055, "lat": 33.0005},
            site_address="南阳市宛城区建设路1号",
        ),
        # D2: another customer far away, at A1's address written with full-width digits and spaces.
        low_voltage(
            "D2",
            customer_no="4130000003",
            org_no="41403",
            site_location=elsewhere,
            site_address="南阳市卧龙区 中州路１２号",
        ),
        # D3: another customer of the same unit far away at another address: no duplicate.
        low_voltage(
            "D3", customer_no="4130000004", site_location=elsewhere, site_address="南阳市卧龙区工业路8号"
        ),
    )
    apply(sqlite_engine, checking, low_voltage("A1"))
    (finding,) = [item for item in stored(sqlite_engine) if item["rule"] == "no_duplicate_application"]
    numbers = {value["value"] for value in finding["values"] if value["field"] == "application_no"}
    assert numbers == {"D1", "D2"}
    with sqlite_engine.connect() as conn:
        query = sa.select(cases.c.application_no, cases.c.address_key)
        keys = dict(conn.execute(query.where(cases.c.application_no.in_(["A1", "D2"]))).all())
    assert keys["A1"] == keys["D2"] is not None


def _site_at(origin: dict[str, float], metres: float, bearing_deg: float) -> dict[str, float]:
    """A point metres from origin on a bearing, on the sphere the duplicate check measures on."""
    radians_per_metre = 1 / 6_371_000.0
    north = metres * math.cos(math.radians(bearing_deg)) * radians_per_metre
    east = metres * math.sin(math.radians(bearing_deg)) * radians_per_metre
    return {
        "lon": origin["lon"] + math.degrees(east / math.cos(math.radians(origin["lat"]))),
        "lat": origin["lat"] + math.degrees(north),
    }


def test_the_duplicate_check_finds_every_site_within_its_distance_and_none_beyond(
    sqlite_engine: Engine, checking: CaseTracker, frozen: object
) -> None:
    origin = {"lon": 112.5005, "lat": 33.0005}  # A1's site
    neighbours = {
        f"{'N' if metres < 30 else 'F'}{bearing}": _site_at(origin, metres, bearing)
        for bearing in range(0, 360, 45)
        for metres in (29.5, 30.5)
    }
    apply(
        sqlite_engine,
        checking,
        *(
            low_voltage(
                number,
                customer_no=f"41300001{index:02d}",
                site_location=site,
                site_address=f"南阳市卧龙区工业路{index}号",
            )
            for index, (number, site) in enumerate(neighbours.items())
        ),
    )
    apply(sqlite_engine, checking, low_voltage("A1"))
    (finding,) = [item for item in stored(sqlite_engine, "A1") if item["rule"] == "no_duplicate_application"]
    numbers = {value["value"] for value in finding["values"] if value["field"] == "application_no"}
    assert numbers == {number for number in neighbours if number.startswith("N")}


def test_the_duplicate_check_and_a_customers_open_cases_are_index_searches_on_sqlite(
    sqlite_engine: Engine, checking: CaseTracker, frozen: object
) -> None:
    """Each read is a search of the index of its key, not of every open case through the status index."""
    plans: list[str] = []

    def explain(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM cases" in statement:
            plans.extend(row[3] for row in cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters))

    sa.event.listen(sqlite_engine, "before_cursor_execute", explain)
    try:
        apply(sqlite_engine, checking, the_customer(), low_voltage("A1"), the_customer(sequence=2))
    finally:
        sa.event.remove(sqlite_engine, "before_cursor_execute", explain)
    used = {name for plan in plans for name in plan.split() if name.startswith("ix_cases_")}
    assert {"ix_cases_customer_status", "ix_cases_site", "ix_cases_address_status"} <= used, plans
    assert not [plan for plan in plans if "ix_cases_status_deadline" in plan or "SCAN" in plan], plans


def test_a_case_kept_without_coordinates_is_still_found_by_its_site(
    sqlite_engine: Engine, checking: CaseTracker, frozen: object
) -> None:
    """An instance of an older release writes the site's cell but not its coordinates (revision 0007)."""
    apply(
        sqlite_engine,
        checking,
        low_voltage(
            "D1", customer_no="4130000002", site_location={"lon": 112.50055, "lat": 33.0005}, site_address="x"
        ),
    )
    with sqlite_engine.begin() as conn:
        conn.execute(cases.update().values(site_lat=None, site_lon=None))
    apply(sqlite_engine, checking, low_voltage("A1"))
    (finding,) = [item for item in stored(sqlite_engine, "A1") if item["rule"] == "no_duplicate_application"]
    assert [value["value"] for value in finding["values"] if value["field"] == "application_no"] == ["D1"]


def test_a_transformer_change_locks_only_the_cases_whose_findings_name_its_districts(
    sqlite_engine: Engine, checking: CaseTracker, frozen: object
) -> None:
    apply_grid(sqlite_engine, transformer_event("TG0000002", transformer_id="PB2"))
    other = customer_event(
        "4130000002",
        category="general_commercial",
        industry_code="H6210",
        transformer_district_id="TG0000003",
        contract_capacity_kva=50.0,
        supply_voltage_kv=0.38,
        urban_rural="urban",
    )
    apply(sqlite_engine, checking, the_customer(), low_voltage("A1"), other)
    elsewhere = {"site_location": {"lon": 113.6, "lat": 34.7}, "site_address": "郑州市金水区花园路8号"}
    apply(sqlite_engine, checking, low_voltage("A2", customer_no="4130000002", **elsewhere))
    assert {row["rule"] for row in stored(sqlite_engine, "A1") + stored(sqlite_engine, "A2")} == {
        "transformer_district_known"
    }

    # PB1 appears in A1's district: A2's finding names another district, and its case stays unlocked.
    apply_grid(sqlite_engine, transformer_event("TG0000001"))
    with sqlite_engine.connect() as conn:
        keys = checking.keys(conn, DecodedEvent(projection_update("PB1")))
    assert keys == [transformer_key("PB1"), case_key("A1"), customer_key("4130000001")]


def test_a_customer_change_locks_the_customer_s_open_cases(
    sqlite_engine: Engine, checking: CaseTracker, frozen: object
) -> None:
    apply(sqlite_engine, checking, transformer_event("TG0000001"), the_customer(), low_voltage("A1"))
    apply(sqlite_engine, checking, low_voltage("A2"), low_voltage("B1", customer_no="4130000009"))
    with sqlite_engine.connect() as conn:
        keys = checking.keys(conn, DecodedEvent(the_customer(2)))
    assert keys[0] == customer_key("4130000001")
    assert sorted(keys[1:]) == [case_key("A1"), case_key("A2")]


def test_the_district_index_remembers_the_district_a_transformer_left(sqlite_engine: Engine) -> None:
    index = DistrictIndex()
    apply_grid(sqlite_engine, transformer_event("TG0000001"))
    with sqlite_engine.connect() as conn:
        index.refresh(conn)
    assert index.districts_of_change("PB1") == {"TG0000001"}

    apply_grid(sqlite_engine, transformer_event("TG0000002", 2, updated_at="2026-11-27T10:00:00+08:00"))
    with sqlite_engine.connect() as conn:
        index.refresh(conn)
    assert index.districts_of_change("PB1") == {"TG0000001", "TG0000002"}

    # A later change that stays in the district concerns that district alone.
    apply_grid(
        sqlite_engine,
        transformer_event("TG0000002", 3, status="out_of_service", updated_at="2026-11-28T10:00:00+08:00"),
    )
    with sqlite_engine.connect() as conn:
        index.refresh(conn)
    assert index.districts_of_change("PB1") == {"TG0000002"}
