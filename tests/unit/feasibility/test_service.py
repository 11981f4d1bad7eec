"""Assessments over the hub database: what is kept, what is reserved, and what the request adds."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from canonical_model.application import BusinessType, CustomerClass, LoadType
from canonical_model.grid import SupplyAreaClass
from feasibility import service as feasibility_service
from feasibility.config import load_feasibility_config
from feasibility.consumer import FeasibilityHandler
from feasibility.service import FeasibilityService, case_key, customer_key
from pipeline.decoded import DecodedEvent
from store.feasibility import capacity_reservations, feasibility_assessments
from store.forecast import forecast_alerts
from store.schema import customers
from tests.unit.feasibility.builders import (
    NOW,
    ROOT,
    TODAY,
    application,
    feeder,
    feeder_alert,
    lv_upstream,
    main_transformer,
    reservations,
    store_grid,
    store_peak,
    substation,
    transformer,
)
from tests.unit.workflow.events import application_event, customer_event, stage_report_event
from tests.unit.workflow.test_findings import projection_update

CAPACITY_485A = math.sqrt(3) * 10 * 485  # 8400.45 kVA


def _grid(engine: Engine, *, feeder_rate: float, transformer_day: int = 0) -> FeasibilityService:
    with engine.begin() as conn:
        store_grid(
            conn,
            substation("S1", 0, 600, area=SupplyAreaClass.B),
            main_transformer("S1-T1", "S1", 50_000),
            main_transformer("S1-T2", "S1", 50_000),
            feeder("F1", "S1", 300, ties=1),
            transformer("T1", "F1", "S1", 50, rated_kva=400),
        )
        store_peak(conn, "T1", 150.0, TODAY - timedelta(days=transformer_day))
        store_peak(conn, "F1", feeder_rate * CAPACITY_485A * 0.9)
        store_peak(conn, "S1-T1", 9_000.0)
        store_peak(conn, "S1-T2", 9_000.0)
    return FeasibilityService(load_feasibility_config(ROOT), clock=lambda: NOW)


def test_an_existing_deficiency_is_kept_apart_and_the_request_still_reserves(sqlite_engine: Engine) -> None:
    service = _grid(sqlite_engine, feeder_rate=0.6)
    with sqlite_engine.begin() as conn:
        outcome = service.assess_application(conn, application("A1", 100), correlation_id="c")
    assessment = outcome.assessment
    # F1 at 60% against its one-tie N-1 limit of 50% (class B, from its substation) before A1 applied.
    assert assessment.verdict == "feasible_with_conditions"
    assert [(e.equipment_id, e.rule) for e in assessment.existing_grid] == [("F1", "feeder_n_minus_1")]
    assert assessment.reinforcement == ()
    with sqlite_engine.connect() as conn:
        kept = service.stored(conn, "A1")
        held = reservations(conn)
    assert kept is not None
    assert kept["existing_grid"][0]["shortfall_before_kva"] == round(0.1 * CAPACITY_485A, 3)
    assert kept["increment_kva"] == 100
    # It can be connected: its 100 kVA is promised on T1.
    assert held == [("A1", "T1", 100.0)]


def test_stale_load_data_gives_insufficient_data_and_reserves_nothing(sqlite_engine: Engine) -> None:
    service = _grid(sqlite_engine, feeder_rate=0.3, transformer_day=10)  # T1's last profile: 10 days old
    with sqlite_engine.begin() as conn:
        outcome = service.assess_application(conn, application("A2", 100), correlation_id="c")
    assert outcome.assessment.verdict == "insufficient_data"
    assert outcome.reserved_kva == 0
    assert outcome.event is not None and outcome.event.data["verdict"] == "insufficient_data"
    with sqlite_engine.connect() as conn:
        assert reservations(conn) == []


def test_the_applications_industry_sets_its_demand_factor(sqlite_engine: Engine) -> None:
    service = _grid(sqlite_engine, feeder_rate=0.3)
    factory = application("A3", 150).model_copy(update={"industry_code": "C3110"})
    with sqlite_engine.begin() as conn:
        outcome = service.assess_application(conn, factory, correlation_id="c")
    # C31 (ferrous smelting) 0.8: 150 x 0.8 = 120 kVA added; the full 150 kVA requested is what is held.
    assert (outcome.assessment.demand_factor, outcome.assessment.increment_kva) == (0.8, 120)
    with sqlite_engine.connect() as conn:
        assert reservations(conn) == [("A3", "T1", 150.0)]


def test_the_applications_load_type_sets_its_demand_factor_over_its_industry(sqlite_engine: Engine) -> None:
    service = _grid(sqlite_engine, feeder_rate=0.3)
    depot = application("A4", 150).model_copy(
        update={"industry_code": "C3110", "load_type": LoadType.EV_CHARGING}
    )
    with sqlite_engine.begin() as conn:
        outcome = service.assess_application(conn, depot, correlation_id="c")
    # A smelter's (C3110) car park of charging piles: ev_charging 0.5, not C31's 0.8: 150 x 0.5 = 75 kVA
    # added; the full 150 kVA is held.
    assert (outcome.assessment.demand_factor, outcome.assessment.increment_kva) == (0.5, 75)
    increment = next(check for check in outcome.assessment.trace if check.rule == "request_increment")
    assert increment.threshold["from"] == "load type ev_charging"
    with sqlite_engine.connect() as conn:
        assert reservations(conn) == [("A4", "T1", 150.0)]


def _expiry(conn: Connection, application_no: str) -> list[datetime]:
    table = capacity_reservations
    rows = conn.execute(sa.select(table.c.expires_at).where(table.c.application_no == application_no))
    return [row[0] for row in rows]


def _peaks_on(conn: Connection, day: date, transformer_kw: float = 150.0) -> None:
    store_peak(conn, "T1", transformer_kw, day)
    store_peak(conn, "F1", 0.3 * CAPACITY_485A * 0.9, day)
    store_peak(conn, "S1-T1", 9_000.0, day)
    store_peak(conn, "S1-T2", 9_000.0, day)


def test_a_reservation_lapses_with_the_supply_schemes_validity(sqlite_engine: Engine) -> None:
    service = _grid(sqlite_engine, feeder_rate=0.3)
    with sqlite_engine.begin() as conn:
        outcome = service.assess_application(conn, application("A1", 100), correlation_id="c")
    # 100 kVA x 0.9 = 90 kW <= 160 kW: low voltage, whose scheme holds 90 days (3 months).
    assert outcome.assessment.recommended_voltage_kv == 0.38
    assert outcome.assessment.reserved_until == NOW + timedelta(days=90)
    with sqlite_engine.connect() as conn:
        assert _expiry(conn, "A1") == [NOW + timedelta(days=90)]
    # 91 days on, with fresh load data, the next check on T1 no longer counts A1 and releases it.
    later = NOW + timedelta(days=91)
    with sqlite_engine.begin() as conn:
        _peaks_on(conn, TODAY + timedelta(days=91))
    moved = FeasibilityService(load_feasibility_config(ROOT), clock=lambda: later)
    with sqlite_engine.begin() as conn:
        second = moved.assess_application(conn, application("A2", 100), correlation_id="c")
    assert second.assessment.schemes[0].sources[0].reserved_kva == 0
    with sqlite_engine.connect() as conn:
        assert reservations(conn) == [("A2", "T1", 100.0)]


def test_a_re_assessment_does_not_renew_the_schemes_validity(sqlite_engine: Engine) -> None:
    service = _grid(sqlite_engine, feeder_rate=0.3)
    with sqlite_engine.begin() as conn:
        service.assess_application(conn, application("A1", 100), correlation_id="c")
    # Assessed again 30 days on (a grid change): still until NOW + 90 days, counted from the first promise.
    with sqlite_engine.begin() as conn:
        _peaks_on(conn, TODAY + timedelta(days=30))
    month = FeasibilityService(load_feasibility_config(ROOT), clock=lambda: NOW + timedelta(days=30))
    with sqlite_engine.begin() as conn:
        again = month.assess_application(conn, application("A1", 100), correlation_id="c")
    assert again.assessment.reserved_until == NOW + timedelta(days=90)
    # 91 days on the scheme has lapsed: the grid answer stands, but nothing is reserved again.
    with sqlite_engine.begin() as conn:
        _peaks_on(conn, TODAY + timedelta(days=91))
    late = FeasibilityService(load_feasibility_config(ROOT), clock=lambda: NOW + timedelta(days=91))
    with sqlite_engine.begin() as conn:
        lapsed = late.assess_application(conn, application("A1", 100), correlation_id="c")
    assert lapsed.assessment.verdict == "feasible" and lapsed.reserved_kva == 0
    assert lapsed.assessment.trace[-1].rule == "reservation_lapsed"
    with sqlite_engine.connect() as conn:
        assert reservations(conn) == []


def test_a_high_voltage_scheme_holds_a_year_and_a_temporary_supply_ends_on_its_last_day(
    sqlite_engine: Engine,
) -> None:
    service = _grid(sqlite_engine, feeder_rate=0.3)
    temporary = application("A1", 100).model_copy(
        update={"business_type": BusinessType.TEMPORARY_SUPPLY, "temporary_until": date(2026, 11, 30)}
    )
    with sqlite_engine.begin() as conn:
        outcome = service.assess_application(conn, temporary, correlation_id="c")
    # Until the end of 30 November in Shanghai: 1 December 00:00 +08:00 = 30 November 16:00 UTC, well
    # before the 90 days of the low-voltage scheme.
    assert outcome.assessment.reserved_until == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    # 300 kVA x 0.9 = 270 kW > 160 kW: 10 kV, a one-year scheme (365 days).
    with sqlite_engine.begin() as conn:
        hv = service.assess_application(conn, application("A2", 300), correlation_id="c")
    assert hv.assessment.recommended_voltage_kv == 10
    assert hv.assessment.reserved_until == NOW + timedelta(days=365)


def _handler(service: FeasibilityService) -> FeasibilityHandler:
    return FeasibilityHandler(service)


def _document(number: str, kva: float) -> dict[str, Any]:
    document = application(number, kva).model_dump(mode="json", exclude_none=True)
    del document["application_no"]
    return document


def test_withdrawn_or_cancelled_releases_the_reservation(sqlite_engine: Engine) -> None:
    service = _grid(sqlite_engine, feeder_rate=0.3)
    handler = _handler(service)
    for number, stage in (("A1", "withdrawn"), ("A2", "cancelled")):
        document = _document(number, 100)
        with sqlite_engine.begin() as conn:
            handler(conn, DecodedEvent(application_event(number, 1, **document)))
        with sqlite_engine.connect() as conn:
            assert (number, "T1", 100.0) in reservations(conn)
        with sqlite_engine.begin() as conn:
            handler(conn, DecodedEvent(application_event(number, 2, **{**document, "stage": stage})))
        with sqlite_engine.connect() as conn:
            assert [row for row in reservations(conn) if row[0] == number] == []


def test_after_energisation_the_reservation_stays_until_the_load_shows(sqlite_engine: Engine) -> None:
    service = _grid(sqlite_engine, feeder_rate=0.3)
    handler = _handler(service)
    document = _document("A1", 100)
    with sqlite_engine.begin() as conn:
        handler(conn, DecodedEvent(application_event("A1", 1, **document)))
        handler(conn, DecodedEvent(application_event("A1", 2, **{**document, "stage": "energisation"})))
    with sqlite_engine.connect() as conn:
        # Kept, at most 60 days from energisation, with T1's basis then: 150 kW; no longer re-assessed.
        assert reservations(conn) == [("A1", "T1", 100.0)]
        assert _expiry(conn, "A1") == [NOW + timedelta(days=60)]
        assert service.affected(conn, "T1", None) == []
    # Released once T1's basis rose by 0.5 x 100 kVA x 0.9 = 45 kW: 150 + 40 = 190 kW is not yet enough.
    with sqlite_engine.begin() as conn:
        store_peak(conn, "T1", 190.0, TODAY - timedelta(days=1))
        service.assess_application(conn, application("A2", 10), correlation_id="c")
    with sqlite_engine.connect() as conn:
        assert ("A1", "T1", 100.0) in reservations(conn)
    with sqlite_engine.begin() as conn:
        store_peak(conn, "T1", 195.0, TODAY - timedelta(days=2))  # 150 + 45
        service.assess_application(conn, application("A2", 10), correlation_id="c")
    with sqlite_engine.connect() as conn:
        assert reservations(conn) == [("A2", "T1", 10.0)]


def test_an_energised_reservation_lapses_after_the_configured_days(sqlite_engine: Engine) -> None:
    service = _grid(sqlite_engine, feeder_rate=0.3)
    with sqlite_engine.begin() as conn:
        service.assess_application(conn, application("A1", 100), correlation_id="c")
        assert service.energised(conn, "A1") == 1
    # 61 days after energisation, past the 60 kept, with T1's load unchanged (150 kW): the next check on T1
    # releases it although the load never showed.
    with sqlite_engine.begin() as conn:
        _peaks_on(conn, TODAY + timedelta(days=61))
    later = FeasibilityService(load_feasibility_config(ROOT), clock=lambda: NOW + timedelta(days=61))
    with sqlite_engine.begin() as conn:
        later.assess_application(conn, application("A2", 10), correlation_id="c")
    with sqlite_engine.connect() as conn:
        assert reservations(conn) == [("A2", "T1", 10.0)]


def _customer(conn: Connection, customer_no: str, capacity: float | None, district: str | None) -> None:
    document: dict[str, object] = {"customer_no": customer_no, "name": "客户", "category": "commercial"}
    if capacity is not None:
        document["contract_capacity_kva"] = capacity
    if district is not None:
        document["transformer_district_id"] = district
    conn.execute(
        customers.insert().values(customer_no=customer_no, document=document, last_sequence=1, updated_at=NOW)
    )


def _district_transformer(engine: Engine) -> None:
    """T1 (400 kVA, district TG1) peaking at 216 kW = 240 kVA, below a lightly loaded feeder."""
    with engine.begin() as conn:
        store_grid(
            conn,
            *lv_upstream(),
            transformer("T1", "F1", "S1", 50).model_copy(update={"transformer_district_id": "TG1"}),
        )
        _peaks_on(conn, TODAY, transformer_kw=216.0)


def test_a_capacity_increase_reserves_its_increase_on_the_customers_transformer(
    sqlite_engine: Engine,
) -> None:
    _district_transformer(sqlite_engine)
    with sqlite_engine.begin() as conn:
        _customer(conn, "C1", 100, "TG1")
    service = FeasibilityService(load_feasibility_config(ROOT), clock=lambda: NOW)
    increase = application("A1", 160).model_copy(
        update={"business_type": BusinessType.CAPACITY_INCREASE, "customer_no": "C1"}
    )
    with sqlite_engine.begin() as conn:
        outcome = service.assess_application(conn, increase, correlation_id="c")
    # 160 - 100 = 60 kVA: T1 at (240 + 60) / 400 = 0.75 <= 0.8; only the 60 kVA is promised.
    assert outcome.assessment.verdict == "feasible"
    assert outcome.assessment.existing_capacity_kva == 100
    assert outcome.reserved_kva == 60
    with sqlite_engine.connect() as conn:
        assert reservations(conn) == [("A1", "T1", 60.0)]


def test_a_capacity_increase_assessed_before_its_customer_record_is_assessed_again_when_it_arrives(
    sqlite_engine: Engine,
) -> None:
    _district_transformer(sqlite_engine)
    handler = _handler(FeasibilityService(load_feasibility_config(ROOT), clock=lambda: NOW))
    document = {**_document("A1", 160), "business_type": "capacity_increase", "customer_no": "C1"}
    with sqlite_engine.begin() as conn:
        handler(conn, DecodedEvent(application_event("A1", 1, **document)))
    with sqlite_engine.connect() as conn:
        first = conn.execute(sa.select(feasibility_assessments.c.verdict)).scalar_one()
    # The application came before its customer record: the increase cannot be told from the total.
    assert first == "insufficient_data"
    # The customer record arrives; the workflow may store it before or after this consumer runs, so the
    # event's own facts count (the hub's customers table still has no C1 here).
    customer = customer_event("C1", 1, contract_capacity_kva=100.0, transformer_district_id="TG1")
    with sqlite_engine.begin() as conn:
        handler(conn, DecodedEvent(customer))
    # The record marks A1 due; the consumer's deferred step re-checks it.
    assert handler.drain(sqlite_engine) == 1
    with sqlite_engine.connect() as conn:
        verdict = conn.execute(sa.select(feasibility_assessments.c.verdict)).scalar_one()
        # 160 - 100 = 60 kVA on T1: (240 + 60) / 400 = 0.75 <= 0.8.
        assert verdict == "feasible"
        assert reservations(conn) == [("A1", "T1", 60.0)]


def test_a_customer_record_read_before_its_capacity_increase_is_used_when_the_increase_comes(
    sqlite_engine: Engine,
) -> None:
    _district_transformer(sqlite_engine)
    handler = _handler(FeasibilityService(load_feasibility_config(ROOT), clock=lambda: NOW))
    customer = customer_event("C1", 1, contract_capacity_kva=100.0, transformer_district_id="TG1")
    document = {**_document("A1", 160), "business_type": "capacity_increase", "customer_no": "C1"}
    with sqlite_engine.begin() as conn:
        handler(
            conn, DecodedEvent(customer)
        )  # nothing to assess yet; the hub's customers table never gets C1 here
        handler(conn, DecodedEvent(application_event("A1", 1, **document)))
    with sqlite_engine.connect() as conn:
        # 160 - 100 = 60 kVA on T1: (240 + 60) / 400 = 0.75 <= 0.8.
        assert conn.execute(sa.select(feasibility_assessments.c.verdict)).scalar_one() == "feasible"
        assert reservations(conn) == [("A1", "T1", 60.0)]


def test_a_reduction_cuts_what_the_customers_open_applications_hold(sqlite_engine: Engine) -> None:
    service = _grid(sqlite_engine, feeder_rate=0.3)
    with sqlite_engine.begin() as conn:
        _customer(conn, "C1", 400, None)
        service.assess_application(
            conn, application("A1", 100).model_copy(update={"customer_no": "C1"}), correlation_id="c"
        )
        reduction = application("A2", 50).model_copy(
            update={"customer_no": "C1", "business_type": BusinessType.CAPACITY_REDUCTION}
        )
        outcome = service.assess_application(conn, reduction, correlation_id="c")
    # 400 - 50 kept = 350 kVA freed; A1's 100 kVA is cut to the 50 kVA the customer keeps; A2 holds nothing.
    assert outcome.assessment.verdict == "feasible" and outcome.reserved_kva == 0
    assert [c.rule for c in outcome.assessment.trace] == ["capacity_released", "reservation_reduced"]
    with sqlite_engine.connect() as conn:
        assert reservations(conn) == [("A1", "T1", 50.0)]


def test_a_name_change_is_kept_with_no_capacity_check(sqlite_engine: Engine) -> None:
    service = _grid(sqlite_engine, feeder_rate=0.3)
    rename = application("A1", 100).model_copy(update={"business_type": BusinessType.NAME_CHANGE})
    with sqlite_engine.begin() as conn:
        outcome = service.assess_application(conn, rename, correlation_id="c")
    assert outcome.assessment.verdict == "no_capacity_check" and outcome.reserved_kva == 0
    assert outcome.event is not None and outcome.event.data["verdict"] == "no_capacity_check"


def test_a_large_load_reserves_its_dedicated_circuits_on_the_substation(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        store_grid(
            conn,
            substation("S1", 0, 600, area=SupplyAreaClass.B, spare_bays=3),
            main_transformer("S1-T1", "S1", 50_000),
            main_transformer("S1-T2", "S1", 50_000),
            feeder("F1", "S1", 300, ties=1),
        )
        for equipment_id, peak_kw in (("F1", 1_000.0), ("S1-T1", 9_000.0), ("S1-T2", 9_000.0)):
            store_peak(conn, equipment_id, peak_kw)
    service = FeasibilityService(load_feasibility_config(ROOT), clock=lambda: NOW)
    large = application("A1", 9_000, customer_class=CustomerClass.HV_SINGLE_SOURCE)
    with sqlite_engine.begin() as conn:
        outcome = service.assess_application(conn, large, correlation_id="c")
    assessment = outcome.assessment
    # F1 (class B from S1, one tie) may carry 0.5 x 8400.4 = 4200.2 kVA even empty; 9000 kVA needs
    # ceil(9000 / 6062.2) = 2 new circuits, and S1 has 3 spare bays.
    best = assessment.schemes[0].sources[0]
    assert (best.equipment_id, best.connection, best.circuits) == ("S1", "dedicated_line", 2)
    assert assessment.verdict == "feasible"
    with sqlite_engine.connect() as conn:
        assert reservations(conn) == [("A1", "S1", 9_000.0)]
        kept = service.stored(conn, "A1")
    assert kept is not None and kept["schemes"][0]["sources"][0]["circuits"] == 2


def _forecast_alert(equipment_id: str, month: str) -> dict[str, Any]:
    alert = feeder_alert(equipment_id, month)
    return {
        "equipment_id": equipment_id,
        "kind": "feeder",
        "crossing_month": month,
        "limit_rate": 0.7,
        "document": alert.model_dump(mode="json"),
        "event_id": f"e-{equipment_id}",
        "raised_at": NOW,
    }


def test_a_planning_alert_on_equipment_checked_is_cited_in_the_trace(sqlite_engine: Engine) -> None:
    service = _grid(sqlite_engine, feeder_rate=0.3)
    with sqlite_engine.begin() as conn:
        # F1 feeds the candidate T1; XL9 is elsewhere and must not be cited.
        conn.execute(
            forecast_alerts.insert(), [_forecast_alert("F1", "2027-07"), _forecast_alert("XL9", "2027-01")]
        )
        outcome = service.assess_application(conn, application("A9", 100), correlation_id="c")
    notes = [check for check in outcome.assessment.trace if check.rule == "capacity_forecast"]
    assert [(note.subject, note.result.value) for note in notes] == [("F1", "info")]
    assert notes[0].detail == (
        "feeder F1 is forecast to exceed 70% in July 2027 (6000.0 kVA against 5880.3 kVA, 15% of it from "
        "applications not yet energised)"
    )
    # Information only: F1 at 30% today, the verdict is today's.
    assert outcome.assessment.verdict == "feasible"


def test_capacity_locks_are_taken_after_the_slow_reads_and_once_for_a_re_assessment(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _grid(sqlite_engine, feeder_rate=0.3)
    with sqlite_engine.begin() as conn:
        for number in ("A1", "A2"):
            service.assess_application(conn, application(number, 100), correlation_id="c")
    steps: list[str] = []
    reading, locking = feasibility_service.read_loads, feasibility_service._lock

    def read_loads(*args: Any, **kwargs: Any) -> Any:
        steps.append("read loads")
        return reading(*args, **kwargs)

    def lock(conn: Connection, equipment_ids: list[str]) -> None:
        steps.append(f"lock {','.join(equipment_ids)}")
        locking(conn, equipment_ids)

    monkeypatch.setattr(feasibility_service, "read_loads", read_loads)
    monkeypatch.setattr(feasibility_service, "_lock", lock)
    with sqlite_engine.begin() as conn:
        service.assess_application(conn, application("A3", 100), correlation_id="c")
    assert steps == ["read loads", "lock F1,S1,T1"]
    steps.clear()
    with sqlite_engine.begin() as conn:
        assert service.reassess(conn, ["A2", "A1"], correlation_id="c") == 2
    # Both are prepared first; their capacity locks are then taken together, in id order.
    assert steps == ["read loads", "read loads", "lock F1,S1,T1"]


def test_each_event_locks_the_applications_it_may_assess_with_their_customers(sqlite_engine: Engine) -> None:
    """Changes that only mark applications due lock none of them: the re-check takes their keys."""
    _district_transformer(sqlite_engine)
    handler = _handler(FeasibilityService(load_feasibility_config(ROOT), clock=lambda: NOW))
    arrived = application_event("A1", 1, **{**_document("A1", 50), "customer_no": "C1"})
    with sqlite_engine.begin() as conn:
        assert handler.keys(conn, DecodedEvent(arrived)) == [case_key("A1"), customer_key("C1")]
        handler(conn, DecodedEvent(arrived))
        # The customer's record changes the customer's facts under its key; it and a change of the
        # transformer A1 was assessed on mark A1 due, and the re-check locks A1 and C1.
        customer = customer_event("C1", 2, contract_capacity_kva=100.0, transformer_district_id="TG1")
        assert handler.keys(conn, DecodedEvent(customer)) == [customer_key("C1")]
        assert handler.keys(conn, DecodedEvent(projection_update("T1"))) == []
        assert handler.service.keys_of(conn, ["A1"]) == [case_key("A1"), customer_key("C1")]
        report = stage_report_event("A1", "energisation", NOW.isoformat())
        assert handler.keys(conn, DecodedEvent(report)) == [case_key("A1"), customer_key("C1")]
