"""The rules engine on in-memory grids; every expected number is worked out by hand in the test."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from canonical_model.application import BusinessType, CustomerClass, ImportanceGrade, LoadType
from canonical_model.common import UrbanRural
from canonical_model.feasibility import FeasibilityAssessment, RuleCheck, RuleResult, Verdict
from canonical_model.grid import SupplyAreaClass
from feasibility.config import VoltageBand
from feasibility.engine import FeasibilityRequest, GridArea, LoadReading, evaluate, plan, reservation_targets
from tests.unit.feasibility.builders import (
    LV_UPSTREAM_PEAKS_KW,
    NOW,
    default_rules,
    engine_view,
    feeder,
    lv_upstream,
    main_transformer,
    request,
    substation,
    transformer,
)

RULES = default_rules()


def check(assessment: FeasibilityAssessment, rule: str, subject: str | None = None) -> RuleCheck:
    found = [c for c in assessment.trace if c.rule == rule and (subject is None or c.subject == subject)]
    assert found, f"no {rule} check for {subject}"
    return found[0]


def test_the_defaults_used_below() -> None:
    assert RULES.power_factor == 0.9
    assert RULES.lv_ceiling_kw == {"urban": 160, "rural": 100}
    assert RULES.feeder_load_rate == 0.7
    assert RULES.dt_load_rate == 0.8
    assert RULES.mt_overload == 1.3


def _voltage(kva: float, area: UrbanRural | None, **kwargs: object) -> float | None:
    planned = plan(request(kva, area=area, **kwargs), RULES, GridArea(()))  # type: ignore[arg-type]
    return planned.voltage_kv


def test_120_kw_urban_stays_low_voltage() -> None:
    kva = 120 / 0.9  # 133.3 kVA at power factor 0.9 is 120 kW
    assert kva * 0.9 == pytest.approx(120)  # 120 kW <= 160 kW urban ceiling
    assert _voltage(kva, UrbanRural.URBAN) == 0.38


def test_120_kw_rural_goes_to_10_kv() -> None:
    kva = 120 / 0.9  # 120 kW > 100 kW rural ceiling; 133.3 kVA <= 10,000 kVA, the 10 kV band
    assert _voltage(kva, UrbanRural.RURAL) == 10


def test_unknown_area_counts_as_rural_and_small_residential_is_single_phase() -> None:
    assert _voltage(120 / 0.9, None) == 10
    # 8 kVA x 0.9 = 7.2 kW < 10 kW single-phase limit
    assert _voltage(8, UrbanRural.URBAN, customer_class=CustomerClass.LV_RESIDENTIAL) == 0.22


def test_voltage_bands_above_low_voltage() -> None:
    # No 20 kV network in the defaults: past 10 kV's 10,000 kVA the next voltage is 35 kV.
    assert _voltage(15_000, UrbanRural.URBAN) == 35  # 10,000 < 15,000 <= 40,000 kVA
    assert _voltage(30_000, UrbanRural.URBAN) == 35  # 10,000 < 30,000 <= 40,000 kVA
    assert _voltage(150_000, UrbanRural.URBAN) is None  # beyond 110 kV's 100,000 kVA
    planned = plan(request(150_000), RULES, GridArea(()))
    assert planned.final is Verdict.NOT_FEASIBLE


WITH_20_KV = replace(
    RULES,
    networks_kv=frozenset({10.0, 20.0, 35.0, 110.0}),
    bands=(
        VoltageBand(10, 10_000),
        VoltageBand(20, 20_000),
        VoltageBand(35, 40_000),
        VoltageBand(110, 100_000),
    ),
)


def test_20_kv_is_offered_only_where_the_province_has_a_20_kv_network() -> None:
    # 10,000 < 15,000 <= 20,000 kVA: 20 kV where the network exists, 35 kV where it does not.
    assert plan(request(15_000, area=UrbanRural.URBAN), WITH_20_KV, GridArea(())).voltage_kv == 20
    asked = plan(replace(request(15_000), requested_voltage_kv=20), RULES, GridArea(()))
    assert asked.voltage_kv == 35
    assert asked.trace[0].detail.endswith(
        "; the requested 20 kV is not a network of province default (10, 35, 110 kV): not used"
    )


def _mv_grid(feeder_load_rate: float, ties: int) -> tuple[GridArea, dict[str, LoadReading]]:
    area = GridArea(
        engine_view(
            substation("S1", 3000),
            main_transformer("S1-T1", "S1", 50_000),
            main_transformer("S1-T2", "S1", 50_000),
            feeder("F1", "S1", 300, ties=ties),
        )
    )
    capacity = math.sqrt(3) * 10 * 485  # 8400.4 kVA
    loads = {
        "F1": LoadReading(feeder_load_rate * capacity * 0.9),  # kW = load rate x kVA x power factor
        "S1-T1": LoadReading(9_000),
        "S1-T2": LoadReading(9_000),
    }
    return area, loads


def test_630_kva_on_a_feeder_already_beyond_n_minus_1_is_judged_on_its_increment() -> None:
    area, loads = _mv_grid(0.65, ties=1)
    planned = plan(request(630), RULES, area)
    assert planned.voltage_kv == 10  # 630 x 0.9 = 567 kW > 160 kW
    assessment = evaluate(planned, area, loads, {}, assessed_at=NOW)

    capacity = math.sqrt(3) * 10 * 485  # 8400.4 kVA
    # No industry and not residential: demand factor 1.0, the request adds its full 630 kVA.
    assert assessment.increment_kva == 630 and assessment.demand_factor == 1.0
    after = (0.65 * capacity + 630) / capacity  # 0.65 + 0.075 = 0.725
    n1_limit = 1 / (1 + 1)  # k/(k+1) with one tie switch = 0.5
    # F1 was at 65% against its 50% N-1 limit before the request: that shortfall, 0.15 x 8400.4 =
    # 1260.1 kVA, is an existing-grid condition for planning, not the applicant's (it used to be
    # blamed for 1890.1 kVA, the existing 1260.1 plus its own 630).
    n1 = check(assessment, "feeder_n_minus_1", "F1")
    assert n1.result is RuleResult.EXISTING_DEFICIENCY
    assert n1.threshold["max_load_rate"] == n1_limit
    (existing,) = [e for e in assessment.existing_grid if e.rule == "feeder_n_minus_1"]
    assert existing.equipment_id == "F1"
    assert existing.load_rate_before == pytest.approx(0.65, abs=0.001)
    assert existing.shortfall_before_kva == pytest.approx(0.15 * capacity, abs=0.01)
    assert existing.increment_kva == 630
    assert f"{after:.4f} after" in n1.detail
    # The 70% planning limit was kept before (0.65) and the request itself crosses it (0.725): that part
    # is the applicant's, short by (0.725 - 0.7) x 8400.4 = 210.0 kVA.
    assert assessment.verdict is Verdict.NEEDS_REINFORCEMENT
    (fix,) = assessment.reinforcement
    assert (fix.equipment_id, fix.reason) == ("F1", "feeder_load_rate")
    assert fix.shortfall_kva == pytest.approx(0.65 * capacity + 630 - 0.7 * capacity, abs=0.01)
    # The substation keeps N-1: 1.3 x (2-1)/2 = 0.65 >= (2 x 9000/0.9 + 630) / 100,000 = 0.2063.
    mt = check(assessment, "main_transformer_n_minus_1", "S1")
    assert mt.result is RuleResult.PASS
    assert mt.threshold["max_load_rate"] == pytest.approx(0.65)


def test_the_same_request_on_a_lightly_loaded_feeder_with_two_ties_is_feasible() -> None:
    area, loads = _mv_grid(0.30, ties=2)
    assessment = evaluate(plan(request(630), RULES, area), area, loads, {}, assessed_at=NOW)
    # (0.30 x 8400.4 + 630) / 8400.4 = 0.375 <= min(0.7, 2/3)
    assert check(assessment, "feeder_n_minus_1", "F1").result is RuleResult.PASS
    assert assessment.verdict is Verdict.FEASIBLE
    source = assessment.schemes[0].sources[0]
    capacity = math.sqrt(3) * 10 * 485
    assert source.headroom_kva == pytest.approx(capacity * (2 / 3) - 0.30 * capacity, abs=0.01)
    assert source.load_rate_after == pytest.approx(0.375, abs=0.001)


def test_a_single_main_transformer_is_a_planning_note_not_a_zero_limit() -> None:
    area = GridArea(
        engine_view(
            substation("S1", 3000), main_transformer("S1-T1", "S1", 50_000), feeder("F1", "S1", 300, ties=3)
        )
    )
    loads = {"F1": LoadReading(1000), "S1-T1": LoadReading(1000)}
    assessment = evaluate(plan(request(630), RULES, area), area, loads, {}, assessed_at=NOW)
    # 1.3 x (1-1)/1 = 0 would refuse any load: one unit cannot keep N-1, which is the substation's
    # condition, noted for planning, with no limit to fail.
    mt = check(assessment, "main_transformer_n_minus_1", "S1")
    assert mt.result is RuleResult.CONDITION
    assert mt.threshold["max_load_rate"] is None
    # The unit itself is held to its load-rate limit: (1000 / 0.9 + 630) / 50,000 = 0.0348 <= 0.8.
    rate = check(assessment, "main_transformer_load_rate", "S1")
    assert rate.result is RuleResult.PASS
    assert rate.detail.endswith("= 0.0348 <= 0.8000")
    (existing,) = assessment.existing_grid
    assert (existing.equipment_id, existing.rule, existing.max_load_rate) == (
        "S1",
        "main_transformer_n_minus_1",
        None,
    )
    assert existing.load_rate_before == pytest.approx(1000 / 0.9 / 50_000, abs=0.001)
    assert assessment.verdict is Verdict.FEASIBLE_WITH_CONDITIONS
    assert assessment.reinforcement == ()


def _two_substations() -> tuple[GridArea, dict[str, LoadReading]]:
    area = GridArea(
        engine_view(
            substation("S1", 2500),
            main_transformer("S1-T1", "S1", 50_000),
            main_transformer("S1-T2", "S1", 50_000),
            substation("S2", -2500),
            main_transformer("S2-T1", "S2", 50_000),
            main_transformer("S2-T2", "S2", 50_000),
            feeder("F1", "S1", 100, ties=2),
            feeder("F2", "S1", 150, ties=2),
            feeder("F3", "S2", -900, ties=2),
        )
    )
    loads = {key: LoadReading(1000) for key in ("F1", "F2", "F3", "S1-T1", "S1-T2", "S2-T1", "S2-T2")}
    return area, loads


def test_first_grade_customer_needs_two_substations() -> None:
    area, loads = _two_substations()
    assessment = evaluate(
        plan(request(2000, grade=ImportanceGrade.FIRST), RULES, area), area, loads, {}, assessed_at=NOW
    )
    best = assessment.schemes[0]
    assert {source.substation_id for source in best.sources} == {"S1", "S2"}
    assert len(best.sources) == 2
    assert check(assessment, "important_customer_sources").threshold == {
        "sources": 2,
        "distinct_substations": 2,
    }
    assert assessment.verdict is Verdict.FEASIBLE


def test_first_grade_customer_with_one_substation_in_reach_is_not_feasible() -> None:
    area = GridArea(
        engine_view(
            substation("S1", 2500),
            main_transformer("S1-T1", "S1", 50_000),
            main_transformer("S1-T2", "S1", 50_000),
            feeder("F1", "S1", 100, ties=2),
            feeder("F2", "S1", 150, ties=2),
        )
    )
    loads = {key: LoadReading(1000) for key in ("F1", "F2", "S1-T1", "S1-T2")}
    assessment = evaluate(
        plan(request(2000, grade=ImportanceGrade.FIRST), RULES, area), area, loads, {}, assessed_at=NOW
    )
    assert assessment.verdict is Verdict.NOT_FEASIBLE
    assert check(assessment, "important_customer_sources").result is RuleResult.FAIL
    assert [c.code for c in assessment.conditions] == ["sources_unavailable"]


def test_second_grade_may_share_a_substation_on_different_bus_sections() -> None:
    area, loads = _two_substations()
    assessment = evaluate(
        plan(request(2000, grade=ImportanceGrade.SECOND), RULES, area), area, loads, {}, assessed_at=NOW
    )
    shared = [s for s in assessment.schemes if len({x.substation_id for x in s.sources}) == 1]
    assert shared and all(len(s.sources) == 2 for s in shared)
    assert all("confirm_bus_sections" in [c.code for c in s.conditions] for s in shared)


def test_a_dual_source_class_with_no_grade_still_gets_two_sources() -> None:
    area, loads = _two_substations()
    dual = request(2000, customer_class=CustomerClass.HV_DUAL_SOURCE)
    assessment = evaluate(plan(dual, RULES, area), area, loads, {}, assessed_at=NOW)
    assert all(len(scheme.sources) == 2 for scheme in assessment.schemes)
    sources = check(assessment, "important_customer_sources")
    assert sources.threshold == {"sources": 2, "distinct_substations": 1}
    assert sources.detail.startswith("customer class hv_dual_source: 2 sources from at least 1 substation(s)")
    # The same class with grade 一级 takes the stricter need: two substations.
    first = replace(dual, importance_grade=ImportanceGrade.FIRST)
    strict = evaluate(plan(first, RULES, area), area, loads, {}, assessed_at=NOW)
    assert check(strict, "important_customer_sources").threshold == {"sources": 2, "distinct_substations": 2}
    assert {source.substation_id for source in strict.schemes[0].sources} == {"S1", "S2"}


def _one_substation_two_feeders(
    first: str | None, second: str | None
) -> tuple[GridArea, dict[str, LoadReading]]:
    area = GridArea(
        engine_view(
            substation("S1", 2500),
            main_transformer("S1-T1", "S1", 50_000),
            main_transformer("S1-T2", "S1", 50_000),
            feeder("F1", "S1", 100, ties=2, bus_section=first),
            feeder("F2", "S1", 150, ties=2, bus_section=second),
        )
    )
    return area, {key: LoadReading(1000) for key in ("F1", "F2", "S1-T1", "S1-T2")}


def test_second_grade_circuits_of_one_substation_leave_from_different_recorded_bus_sections() -> None:
    area, loads = _one_substation_two_feeders("I", "II")
    assessment = evaluate(
        plan(request(2000, grade=ImportanceGrade.SECOND), RULES, area), area, loads, {}, assessed_at=NOW
    )
    best = assessment.schemes[0]
    assert [(s.equipment_id, s.bus_section) for s in best.sources] == [("F1", "I"), ("F2", "II")]
    # The grid data shows the two sections: nothing left to confirm.
    assert "confirm_bus_sections" not in [c.code for c in best.conditions]
    assert assessment.verdict is Verdict.FEASIBLE


def test_second_grade_circuits_on_the_same_bus_section_are_no_scheme() -> None:
    area, loads = _one_substation_two_feeders("I", "I")
    assessment = evaluate(
        plan(request(2000, grade=ImportanceGrade.SECOND), RULES, area), area, loads, {}, assessed_at=NOW
    )
    assert assessment.schemes == ()
    assert assessment.verdict is Verdict.NOT_FEASIBLE
    assert [c.code for c in assessment.conditions] == ["sources_unavailable"]


def test_second_grade_circuits_with_an_unrecorded_bus_section_must_be_confirmed() -> None:
    area, loads = _one_substation_two_feeders("I", None)
    assessment = evaluate(
        plan(request(2000, grade=ImportanceGrade.SECOND), RULES, area), area, loads, {}, assessed_at=NOW
    )
    condition = next(c for c in assessment.schemes[0].conditions if c.code == "confirm_bus_sections")
    assert condition.detail.endswith("which the grid data does not record for F2")
    assert assessment.verdict is Verdict.FEASIBLE_WITH_CONDITIONS


def _large_load_grid(spare_bays: int | None) -> tuple[GridArea, dict[str, LoadReading]]:
    """F1 (485 A, one tie, N-1 required in an unclassed area) near the site; S1 2.5 km away."""
    area = GridArea(
        engine_view(
            substation("S1", 2500, spare_bays=spare_bays),
            main_transformer("S1-T1", "S1", 50_000),
            main_transformer("S1-T2", "S1", 50_000),
            feeder("F1", "S1", 100, ties=1),
        )
    )
    return area, {"F1": LoadReading(1000), "S1-T1": LoadReading(9000), "S1-T2": LoadReading(9000)}


def test_a_load_beyond_any_feeder_near_it_gets_dedicated_circuits_from_spare_bays() -> None:
    area, loads = _large_load_grid(spare_bays=2)
    planned = plan(request(9_000), RULES, area)
    # F1 may carry at most sqrt(3) x 10 x 485 x min(0.7, 1/2) = 4200.2 kVA even empty; the request adds
    # 9000 kVA (no industry: demand factor 1). A new circuit carries sqrt(3) x 10 x 500 x 0.7 = 6062.2 kVA,
    # so ceil(9000 / 6062.2) = 2 circuits.
    large = next(c for c in planned.trace if c.rule == "large_load")
    assert large.inputs["largest_feeder_limit_kva"] == pytest.approx(4200.2, abs=0.1)
    assert large.threshold == {"circuit_kva": pytest.approx(6062.2, abs=0.1), "circuits": 2}
    assert [c.equipment.equipment_id for c in planned.dedicated] == ["S1"]
    assert "S1-T1" in planned.load_ids(area) and "S1" in planned.lock_ids(area)
    assessment = evaluate(planned, area, loads, {}, assessed_at=NOW)
    best = assessment.schemes[0]
    source = best.sources[0]
    assert (source.equipment_id, source.connection, source.circuits) == ("S1", "dedicated_line", 2)
    assert check(assessment, "spare_bays", "S1").detail == "2 spare bay(s) >= 2 circuit(s)"
    # S1 keeps N-1 with the whole load: (2 x 9000 / 0.9 + 9000) / 100,000 = 0.29 <= 1.3 x 1/2 = 0.65.
    assert source.load_rate_after == pytest.approx(0.29, abs=0.001)
    assert assessment.verdict is Verdict.FEASIBLE
    # The tee-off F1 stays on offer, behind: it would need reinforcement.
    tee = next(s for s in assessment.schemes if s.sources[0].equipment_id == "F1")
    assert tee.verdict is Verdict.NEEDS_REINFORCEMENT and tee.rank > best.rank


def test_too_few_spare_bays_is_the_request_s_own_reinforcement() -> None:
    area, loads = _large_load_grid(spare_bays=1)
    assessment = evaluate(plan(request(9_000), RULES, area), area, loads, {}, assessed_at=NOW)
    dedicated = next(s for s in assessment.schemes if s.sources[0].connection == "dedicated_line")
    assert [(r.equipment_id, r.reason) for r in dedicated.reinforcement] == [("S1", "spare_bays")]
    assert (
        check(assessment, "spare_bays", "S1").detail
        == "1 spare bay(s) < 2 circuit(s): 1 new bay(s) to be built"
    )
    assert assessment.verdict is Verdict.NEEDS_REINFORCEMENT


def test_unrecorded_spare_bays_are_a_condition_to_confirm() -> None:
    area, loads = _large_load_grid(spare_bays=None)
    assessment = evaluate(plan(request(9_000), RULES, area), area, loads, {}, assessed_at=NOW)
    assert assessment.verdict is Verdict.FEASIBLE_WITH_CONDITIONS
    assert "confirm_spare_bays" in [c.code for c in assessment.conditions]


def test_a_load_one_feeder_can_carry_gets_no_dedicated_line() -> None:
    area, _ = _large_load_grid(spare_bays=2)
    # 4000 kVA <= 4200.2 kVA, F1's limit: an ordinary tee-off.
    planned = plan(request(4_000), RULES, area)
    assert planned.dedicated == () and all(c.rule != "large_load" for c in planned.trace)


def test_special_grade_needs_three_sources() -> None:
    area, loads = _two_substations()
    assessment = evaluate(
        plan(request(2000, grade=ImportanceGrade.SPECIAL), RULES, area), area, loads, {}, assessed_at=NOW
    )
    best = assessment.schemes[0]
    assert len(best.sources) == 3
    assert {source.substation_id for source in best.sources} == {"S1", "S2"}


def _with_upstream(peak_kw_of: dict[str, LoadReading]) -> dict[str, LoadReading]:
    return {key: LoadReading(value) for key, value in LV_UPSTREAM_PEAKS_KW.items()} | peak_kw_of


def test_stale_load_gives_insufficient_data_not_a_guess() -> None:
    area = GridArea(engine_view(*lv_upstream(), transformer("T1", "F1", "S1", 50)))
    loads = _with_upstream({"T1": LoadReading(None, None, "stale: latest profile is of 2026-11-01")})
    assessment = evaluate(plan(request(50), RULES, area), area, loads, {}, assessed_at=NOW)
    rate = check(assessment, "transformer_load_rate", "T1")
    assert rate.result is RuleResult.INSUFFICIENT_DATA
    assert assessment.verdict is Verdict.INSUFFICIENT_DATA
    assert reservation_targets(assessment) == []  # nothing is promised on data that is not there
    assert [c.code for c in assessment.conditions] == ["insufficient_data"]
    assert "stale" in assessment.conditions[0].detail
    assert assessment.schemes[0].sources[0].headroom_kva is None


def test_reserved_capacity_reduces_headroom() -> None:
    area = GridArea(engine_view(*lv_upstream(), transformer("T1", "F1", "S1", 50, rated_kva=400)))
    loads = _with_upstream({"T1": LoadReading(150)})  # 150 kW / 0.9 = 166.67 kVA
    planned = plan(request(100), RULES, area)
    free = evaluate(planned, area, loads, {}, assessed_at=NOW)
    # 400 x 0.8 - 166.67 = 153.33 kVA of headroom; (166.67 + 100) / 400 = 0.667 <= 0.8
    assert free.verdict is Verdict.FEASIBLE
    assert free.schemes[0].sources[0].headroom_kva == pytest.approx(153.333, abs=0.001)
    taken = evaluate(planned, area, loads, {"T1": 100}, assessed_at=NOW)
    # The 100 kVA others hold counts at the simultaneity 0.8: 80 kVA. Before: (166.67 + 80) / 400 = 0.617
    # <= 0.8; after: (166.67 + 80 + 100) / 400 = 0.867 > 0.8, short by 346.67 - 320 = 26.67 kVA.
    assert taken.verdict is Verdict.NEEDS_REINFORCEMENT
    assert taken.reinforcement[0].shortfall_kva == pytest.approx(26.667, abs=0.001)
    assert taken.schemes[0].sources[0].headroom_kva == pytest.approx(320 - 166.667 - 80, abs=0.001)


def test_search_widens_until_enough_candidates_and_stops_at_the_supply_radius() -> None:
    area = GridArea(
        engine_view(
            transformer("T1", "F1", "S1", 100),
            transformer("T2", "F1", "S1", 0, 180),
            transformer("T3", "F1", "S1", -240),
            transformer("T4", "F1", "S1", 0, -400),
        )
    )
    planned = plan(request(50), RULES, area)
    # Urban 0.4 kV supply radius is 250 m: steps 200, 250; T4 at 400 m is out of reach.
    assert [c.equipment.equipment_id for c in planned.candidates] == ["T1", "T2", "T3"]
    assert planned.radius_m == 250
    search = check(
        planned_assessment := evaluate(planned, area, {}, {}, assessed_at=NOW), "connection_point_search"
    )
    assert search.threshold["radii_m"] == [200, 250]
    assert planned_assessment.verdict is Verdict.INSUFFICIENT_DATA  # no loads, no feeder: no answer


def test_no_connection_point_in_reach_is_not_feasible() -> None:
    area = GridArea(engine_view(transformer("T1", "F1", "S1", 900)))
    assessment = evaluate(plan(request(50), RULES, area), area, {}, {}, assessed_at=NOW)
    assert assessment.verdict is Verdict.NOT_FEASIBLE
    assert check(assessment, "connection_point_search").result is RuleResult.FAIL


def test_schemes_rank_feasible_before_reinforcement_and_nearer_first() -> None:
    area = GridArea(
        engine_view(
            transformer("T-near-full", "F1", "S1", 20),
            transformer("T-mid", "F1", "S1", 120),
            transformer("T-far", "F1", "S1", 190),
        )
    )
    loads = {"T-near-full": LoadReading(300), "T-mid": LoadReading(100), "T-far": LoadReading(100)}
    assessment = evaluate(plan(request(100), RULES, area), area, loads, {}, assessed_at=NOW)
    order = [scheme.sources[0].equipment_id for scheme in assessment.schemes]
    # 300 kW / 0.9 = 333 kVA is already above 320 kVA (80% of 400): needs reinforcement, ranked last.
    assert order == ["T-mid", "T-far", "T-near-full"]
    assert [s.rank for s in assessment.schemes] == [1, 2, 3]
    assert assessment.schemes[0].score > assessment.schemes[1].score


def test_a_low_voltage_request_with_room_on_its_transformer_still_fails_its_feeder_n_minus_1() -> None:
    area = GridArea(engine_view(*lv_upstream(), transformer("T1", "F1", "S1", 50, rated_kva=400)))
    feeder_capacity = math.sqrt(3) * 10 * 485  # 8400.36 kVA
    n1_limit = 2 / 3  # two tie switches
    feeder_peak_kva = 0.666 * feeder_capacity  # just under the N-1 limit before the request
    loads = _with_upstream({"T1": LoadReading(150), "F1": LoadReading(feeder_peak_kva * 0.9)})
    assessment = evaluate(plan(request(100), RULES, area), area, loads, {}, assessed_at=NOW)
    # T1: (166.67 + 100) / 400 = 0.667 <= 0.8 passes; F1: (5594.6 + 100) / 8400.4 = 0.6779 > 0.6667 fails
    assert check(assessment, "transformer_load_rate", "T1").result is RuleResult.PASS
    n1 = check(assessment, "feeder_n_minus_1", "F1")
    assert n1.result is RuleResult.FAIL
    assert n1.threshold["max_load_rate"] == pytest.approx(n1_limit, abs=0.001)
    assert assessment.verdict is Verdict.NEEDS_REINFORCEMENT
    (reinforcement,) = assessment.reinforcement
    assert (reinforcement.equipment_id, reinforcement.reason) == ("F1", "feeder_n_minus_1")
    shortfall = feeder_peak_kva + 100 - feeder_capacity * n1_limit
    assert reinforcement.shortfall_kva == pytest.approx(shortfall, abs=0.001)
    # The scheme still offers T1, with the transformer's own figures.
    assert assessment.schemes[0].sources[0].equipment_id == "T1"
    assert assessment.schemes[0].sources[0].capacity_kva == 400


def test_a_low_voltage_request_counts_what_others_reserved_on_its_feeder() -> None:
    area = GridArea(engine_view(*lv_upstream(), transformer("T1", "F1", "S1", 50, rated_kva=400)))
    loads = _with_upstream({"T1": LoadReading(150)})
    capacity = math.sqrt(3) * 10 * 485  # 8400.45 kVA; two ties: N-1 limit 2/3, 5600.30 kVA
    planned = plan(request(100), RULES, area)
    alone = evaluate(planned, area, loads, {}, assessed_at=NOW)
    # (2222.22 + 100) / 8400.45 = 0.2764: nothing else on F1, it passes.
    assert check(alone, "feeder_n_minus_1", "F1").result is RuleResult.PASS
    # 4125 kVA held by others counts 4125 x 0.8 = 3300: before (2222.22 + 3300) / 8400.45 = 0.6574 <= 2/3,
    # after (5522.22 + 100) / 8400.45 = 0.6693 > 2/3: the request crosses N-1, short by 5622.22 - 5600.30.
    assessment = evaluate(planned, area, loads, {"F1": 4_125}, assessed_at=NOW)
    assert check(assessment, "feeder_load_rate", "F1").result is RuleResult.PASS  # 0.6693 <= 0.7
    assert check(assessment, "transformer_load_rate", "T1").result is RuleResult.PASS
    (fix,) = assessment.reinforcement
    assert (fix.equipment_id, fix.reason) == ("F1", "feeder_n_minus_1")
    assert fix.shortfall_kva == pytest.approx(2000 / 0.9 + 3300 + 100 - capacity * 2 / 3, abs=0.001)


def test_a_low_voltage_request_whose_feeder_is_unknown_is_not_told_plainly_feasible() -> None:
    area = GridArea(engine_view(transformer("T1", "F9", "S1", 50, rated_kva=400)))
    assessment = evaluate(
        plan(request(100), RULES, area), area, {"T1": LoadReading(150)}, {}, assessed_at=NOW
    )
    assert check(assessment, "feeder_load_rate").result is RuleResult.INSUFFICIENT_DATA
    assert assessment.verdict is Verdict.INSUFFICIENT_DATA


# --- The applicant is judged on what it adds --------------------------------------------------------------

CAPACITY_485A = math.sqrt(3) * 10 * 485  # 8400.45 kVA


def test_a_household_on_a_feeder_already_past_n_minus_1_is_not_blamed_for_it() -> None:
    area = GridArea(
        engine_view(
            substation("S1", 0, 600),
            main_transformer("S1-T1", "S1", 50_000),
            main_transformer("S1-T2", "S1", 50_000),
            feeder("F1", "S1", 300, ties=1),
            transformer("T1", "F1", "S1", 50, rated_kva=400),
        )
    )
    # F1 at 64.5% against its one-tie N-1 limit of 50% before anyone applied.
    loads = {
        "T1": LoadReading(150),
        "F1": LoadReading(0.645 * CAPACITY_485A * 0.9),
        "S1-T1": LoadReading(9_000),
        "S1-T2": LoadReading(9_000),
    }
    planned = plan(request(8, customer_class=CustomerClass.LV_RESIDENTIAL), RULES, area)
    assert planned.voltage_kv == 0.22
    assessment = evaluate(planned, area, loads, {}, assessed_at=NOW)
    # 8 kVA x residential demand factor 0.4 = 3.2 kVA is what the household adds.
    assert (assessment.demand_factor, assessment.increment_kva) == (0.4, 3.2)
    assert assessment.verdict is Verdict.FEASIBLE_WITH_CONDITIONS
    assert assessment.reinforcement == ()
    (existing,) = assessment.existing_grid
    # Short before the request: (0.645 - 0.5) x 8400.45 = 1218.06 kVA; the household adds 3.2 of it.
    assert (existing.equipment_id, existing.rule, existing.max_load_rate) == ("F1", "feeder_n_minus_1", 0.5)
    assert existing.shortfall_before_kva == pytest.approx(0.145 * CAPACITY_485A, abs=0.01)
    assert existing.increment_kva == 3.2
    assert "planning" in existing.note
    # Its own figures pass: T1 (166.67 + 3.2) / 400 = 0.4247 <= 0.8; F1 (5418.29 + 3.2) / 8400.45 = 0.6454
    # <= 0.7.
    assert check(assessment, "transformer_load_rate", "T1").detail.endswith("= 0.4247 <= 0.8000")
    assert check(assessment, "feeder_load_rate", "F1").result is RuleResult.PASS
    assert [c.code for c in assessment.conditions] == ["existing_grid_condition"]


def _classed_mv_grid(
    area_class: SupplyAreaClass | None, ties: int, load_rate: float = 0.45, *, substation_m: float = 2500
) -> tuple[GridArea, dict[str, LoadReading]]:
    area = GridArea(
        engine_view(
            substation("S1", substation_m),
            main_transformer("S1-T1", "S1", 50_000),
            main_transformer("S1-T2", "S1", 50_000),
            feeder("F1", "S1", 300, ties=ties, area=area_class),
        )
    )
    loads = {
        "F1": LoadReading(load_rate * CAPACITY_485A * 0.9),
        "S1-T1": LoadReading(9_000),
        "S1-T2": LoadReading(9_000),
    }
    return area, loads


def test_n_minus_1_is_required_in_class_b_recommended_in_c_and_not_required_in_d() -> None:
    # One tie: N-1 limit 0.5. Before 0.45; after 0.45 + 630 / 8400.45 = 0.525: the request crosses it,
    # short by 0.45 x 8400.45 + 630 - 0.5 x 8400.45 = 630 - 420.02 = 209.98 kVA. The 70% planning limit
    # holds (0.525 <= 0.7).
    judged = {}
    for area_class in (SupplyAreaClass.B, SupplyAreaClass.C, SupplyAreaClass.D):
        area, loads = _classed_mv_grid(area_class, ties=1)
        judged[area_class] = evaluate(plan(request(630), RULES, area), area, loads, {}, assessed_at=NOW)
    b, c, d = judged.values()
    assert check(b, "feeder_n_minus_1", "F1").result is RuleResult.FAIL
    assert b.verdict is Verdict.NEEDS_REINFORCEMENT
    assert b.reinforcement[0].shortfall_kva == pytest.approx(630 - 0.05 * CAPACITY_485A, abs=0.01)
    assert check(c, "feeder_n_minus_1", "F1").result is RuleResult.CONDITION
    assert c.verdict is Verdict.FEASIBLE_WITH_CONDITIONS
    assert [x.code for x in c.conditions] == ["n1_recommended"]
    assert check(d, "feeder_n_minus_1", "F1").result is RuleResult.INFO
    assert d.verdict is Verdict.FEASIBLE
    # In class D the substation is held to its load rate, not N-1: (20,000 + 630) / 100,000 = 0.2063.
    assert check(d, "main_transformer_load_rate", "S1").detail.endswith("= 0.2063 <= 0.8000")


def test_an_unclassed_feeder_keeps_the_safe_side_n_minus_1_required() -> None:
    area, loads = _classed_mv_grid(None, ties=1)
    assessment = evaluate(plan(request(630), RULES, area), area, loads, {}, assessed_at=NOW)
    assert check(assessment, "feeder_n_minus_1", "F1").threshold["policy"] == "required"
    assert assessment.verdict is Verdict.NEEDS_REINFORCEMENT


def test_a_radial_feeder_is_a_planning_note_never_a_zero_limit() -> None:
    area, loads = _classed_mv_grid(SupplyAreaClass.B, ties=0)
    assessment = evaluate(plan(request(630), RULES, area), area, loads, {}, assessed_at=NOW)
    n1 = check(assessment, "feeder_n_minus_1", "F1")
    assert n1.result is RuleResult.CONDITION
    assert n1.threshold["max_load_rate"] is None  # k/(k+1) with k = 0 would be a 0% limit
    assert "radial" in n1.detail and "tie" in n1.detail
    (existing,) = assessment.existing_grid
    assert (existing.equipment_id, existing.max_load_rate) == ("F1", None)
    # Only the 70% planning limit applies: 0.525 <= 0.7; headroom 0.7 x 8400.45 - 0.45 x 8400.45 = 2100.11.
    assert assessment.verdict is Verdict.FEASIBLE_WITH_CONDITIONS
    source = assessment.schemes[0].sources[0]
    assert source.headroom_kva == pytest.approx(0.25 * CAPACITY_485A, abs=0.01)
    assert source.n1_limit is None
    # In class D a radial feeder is normal: N-1 is not required and nothing is noted.
    area, loads = _classed_mv_grid(SupplyAreaClass.D, ties=0)
    rural = evaluate(plan(request(630), RULES, area), area, loads, {}, assessed_at=NOW)
    assert rural.verdict is Verdict.FEASIBLE
    assert rural.existing_grid == ()


def test_a_single_transformer_substation_in_class_d_has_only_its_load_rate() -> None:
    area = GridArea(
        engine_view(
            substation("S1", 2500, area=SupplyAreaClass.D),
            main_transformer("S1-T1", "S1", 10_000),
            feeder("F1", "S1", 300, ties=0),
        )
    )
    loads = {"F1": LoadReading(1800), "S1-T1": LoadReading(5400)}
    assessment = evaluate(plan(request(630), RULES, area), area, loads, {}, assessed_at=NOW)
    # The feeder inherits class D from its substation. S1-T1: (5400 / 0.9 + 630) / 10,000 = 0.663 <= 0.8.
    assert check(assessment, "main_transformer_load_rate", "S1").detail.endswith("= 0.6630 <= 0.8000")
    assert assessment.schemes[0].sources[0].area_class == "D"
    assert assessment.verdict is Verdict.FEASIBLE
    # A 2,600 kVA request: (6000 + 2600) / 10,000 = 0.86 > 0.8 while 0.6 before: the request's own
    # reinforcement, short by 8600 - 8000 = 600 kVA.
    heavy = evaluate(plan(request(2600), RULES, area), area, loads, {}, assessed_at=NOW)
    assert [(r.equipment_id, r.reason) for r in heavy.reinforcement] == [("S1", "main_transformer_load_rate")]
    assert heavy.reinforcement[0].shortfall_kva == pytest.approx(600, abs=0.001)


# --- Supply radius by area class ------------------------------------------------------------------------


def test_a_low_voltage_site_beyond_its_class_radius_is_a_condition_measured_in_a_straight_line() -> None:
    area = GridArea(
        engine_view(
            substation("S1", 0, 600, area=SupplyAreaClass.B),
            main_transformer("S1-T1", "S1", 50_000),
            main_transformer("S1-T2", "S1", 50_000),
            feeder("F1", "S1", 300, ties=2),
            transformer("T1", "F1", "S1", 300, rated_kva=400),
        )
    )
    loads = _with_upstream({"T1": LoadReading(150)})
    # Rural: the search reaches 500 m and finds T1 at 300 m; class B's 0.4 kV radius is 250 m.
    assessment = evaluate(
        plan(request(50, area=UrbanRural.RURAL), RULES, area), area, loads, {}, assessed_at=NOW
    )
    lv, mv = [c for c in assessment.trace if c.rule == "supply_radius"]
    assert lv.result is RuleResult.CONDITION
    assert lv.inputs["measured"] == "straight line from the transformer"
    assert lv.inputs["length_m"] == pytest.approx(300, abs=0.5)
    assert lv.threshold == {"max_m": 250}
    # 10 kV: substation (0, 600) to T1 (300, 0) = sqrt(300^2 + 600^2) = 670.8 m <= 3000 m, straight line.
    assert mv.result is RuleResult.PASS
    assert mv.inputs["length_m"] == pytest.approx(math.hypot(300, 600), abs=0.5)
    assert "no route" in mv.inputs["measured"]
    assert assessment.verdict is Verdict.FEASIBLE_WITH_CONDITIONS
    assert [c.code for c in assessment.conditions] == ["supply_radius_exceeded"]


def test_the_route_along_the_line_is_used_where_the_grid_data_has_it() -> None:
    area = GridArea(
        engine_view(
            substation("S1", 0, 600, area=SupplyAreaClass.B),
            main_transformer("S1-T1", "S1", 50_000),
            main_transformer("S1-T2", "S1", 50_000),
            feeder("F1", "S1", 300, ties=2),
            transformer("T1", "F1", "S1", 50, rated_kva=400, route_m=3_500),
        )
    )
    loads = _with_upstream({"T1": LoadReading(150)})
    assessment = evaluate(plan(request(50), RULES, area), area, loads, {}, assessed_at=NOW)
    # 600 m in a straight line, but the line runs 3,500 m > 3,000 m (class B, 10 kV).
    mv = next(c for c in assessment.trace if c.rule == "supply_radius" and c.inputs["level"] == "mv")
    assert (mv.inputs["length_m"], mv.inputs["measured"]) == (3500, "along the line from the substation")
    assert mv.result is RuleResult.CONDITION
    assert assessment.verdict is Verdict.FEASIBLE_WITH_CONDITIONS


def test_a_10_kv_site_is_measured_from_the_source_substation() -> None:
    area, loads = _classed_mv_grid(SupplyAreaClass.B, ties=2, substation_m=4_000)
    assessment = evaluate(plan(request(630), RULES, area), area, loads, {}, assessed_at=NOW)
    radius = check(assessment, "supply_radius", "F1")
    # Substation S1 at 4,000 m east of the site: beyond class B's 3,000 m.
    assert radius.inputs["length_m"] == pytest.approx(4000, abs=0.5)
    assert radius.result is RuleResult.CONDITION
    assert "supply_radius_exceeded" in [c.code for c in assessment.conditions]


# --- Load basis and demand ------------------------------------------------------------------------------


def test_the_request_counts_with_the_demand_factor_of_its_trade() -> None:
    area = GridArea(engine_view(*lv_upstream(), transformer("T1", "F1", "S1", 50, rated_kva=400)))
    loads = _with_upstream({"T1": LoadReading(150)})
    # C1711 (cotton spinning) matches C17 (textiles, 0.75) before C (manufacturing, 0.6): 150 x 0.75 = 112.5.
    assessment = evaluate(plan(request(150, industry="C1711"), RULES, area), area, loads, {}, assessed_at=NOW)
    assert (assessment.demand_factor, assessment.increment_kva) == (0.75, 112.5)
    increment = check(assessment, "request_increment")
    assert increment.threshold == {"demand_factor": 0.75, "from": "industry C17"}
    # T1: (166.67 + 112.5) / 400 = 0.6979
    assert check(assessment, "transformer_load_rate", "T1").detail.endswith("= 0.6979 <= 0.8000")
    assert assessment.schemes[0].sources[0].headroom_after_kva == pytest.approx(
        320 - 166.667 - 112.5, abs=0.001
    )


def test_a_charging_pile_counts_with_its_load_type_s_factor_not_the_residential_one() -> None:
    area = GridArea(engine_view(*lv_upstream(), transformer("T1", "F1", "S1", 50, rated_kva=400)))
    loads = _with_upstream({"T1": LoadReading(150)})
    # A 7 kW home charging pile: 7 kW / 0.9 = 7.78 kVA requested, 7.78 x 0.9 = 7.0 kW < 10 kW: 220 V.
    pile = replace(request(7.78, customer_class=CustomerClass.LV_RESIDENTIAL), load_type=LoadType.EV_CHARGING)
    assessment = evaluate(plan(pile, RULES, area), area, loads, {}, assessed_at=NOW)
    assert assessment.recommended_voltage_kv == 0.22
    # ev_charging 0.5, not the residential 0.4: 7.78 x 0.5 = 3.89 kVA added (3.11 as a household).
    assert (assessment.demand_factor, assessment.increment_kva) == (0.5, 3.89)
    increment = check(assessment, "request_increment")
    assert increment.threshold == {"demand_factor": 0.5, "from": "load type ev_charging"}
    assert increment.detail == (
        "7.78 kVA x demand factor 0.5 (load type ev_charging) = 3.9 kVA added to the equipment"
    )
    # T1: 150 kW / 0.9 = 166.67 kVA, + 3.89 = 170.56 kVA of 400: 0.4264.
    assert check(assessment, "transformer_load_rate", "T1").detail.endswith("= 0.4264 <= 0.8000")


def test_a_heat_pump_s_factor_wins_over_its_trade_s() -> None:
    area = GridArea(engine_view(*lv_upstream(), transformer("T1", "F1", "S1", 50, rated_kva=400)))
    loads = _with_upstream({"T1": LoadReading(150)})
    # A textile mill (C1711: C17, 0.75 by its trade) applying for heat pumps to heat its halls.
    mill = replace(request(100, industry="C1711"), load_type=LoadType.HEAT_PUMP)
    assessment = evaluate(plan(mill, RULES, area), area, loads, {}, assessed_at=NOW)
    # heat_pump 0.7, not textiles' 0.75: 100 x 0.7 = 70 kVA added.
    assert (assessment.demand_factor, assessment.increment_kva) == (0.7, 70)
    assert check(assessment, "request_increment").threshold["from"] == "load type heat_pump"


def test_a_measured_power_factor_replaces_the_configured_one() -> None:
    area = GridArea(engine_view(*lv_upstream(), transformer("T1", "F1", "S1", 50, rated_kva=400)))
    measured = _with_upstream({"T1": LoadReading(285, power_factor=0.95, basis="highest of 30 good day(s)")})
    assessment = evaluate(plan(request(30), RULES, area), area, measured, {}, assessed_at=NOW)
    basis = check(assessment, "load_basis", "T1")
    # 285 kW / 0.95 = 300 kVA (at the configured 0.9 it would be 316.7 kVA)
    assert basis.inputs["power_factor_from"] == "measured"
    assert assessment.schemes[0].sources[0].peak_load_kva == pytest.approx(300)
    assert basis.detail.startswith("highest of 30 good day(s): 285.0 kW / 0.95")
    # The upstream feeder's curve carries none: the configured 0.9 stands.
    assert check(assessment, "load_basis", "F1").inputs["power_factor_from"] == "configured"


def test_a_request_without_a_site_is_insufficient_data() -> None:
    planned = plan(
        FeasibilityRequest(requested_capacity_kva=50, customer_class=CustomerClass.LV_RESIDENTIAL),
        RULES,
        GridArea(()),
    )
    assessment = evaluate(planned, GridArea(()), {}, {}, assessed_at=NOW)
    assert assessment.verdict is Verdict.INSUFFICIENT_DATA
    assert reservation_targets(assessment) == []


def test_equipment_already_past_its_rating_cannot_take_the_connection_and_it_is_not_the_applicants() -> None:
    area = GridArea(
        engine_view(
            *lv_upstream(),
            transformer("T-over", "F1", "S1", 20, rated_kva=100),
            transformer("T-ok", "F1", "S1", 120, rated_kva=400),
        )
    )
    # T-over: 135 kW / 0.9 = 150 kVA on 100 kVA, 150% before anyone applied.
    loads = _with_upstream({"T-over": LoadReading(135), "T-ok": LoadReading(150)})
    planned = plan(request(8, customer_class=CustomerClass.LV_RESIDENTIAL), RULES, area)
    assessment = evaluate(planned, area, loads, {}, assessed_at=NOW)
    # The healthy transformer is recommended: (166.67 + 3.2) / 400 = 0.4247.
    assert assessment.verdict is Verdict.FEASIBLE
    assert [s.sources[0].equipment_id for s in assessment.schemes] == ["T-ok", "T-over"]
    over = assessment.schemes[1]
    # On T-over alone nothing can be connected until the grid is reinforced: 暂不具备供电条件, with the
    # shortfall the grid's (150 - 0.8 x 100 = 70 kVA), none of it the household's.
    assert over.verdict is Verdict.NOT_FEASIBLE
    assert over.reinforcement == ()
    (existing,) = over.existing_grid
    assert existing.blocks_connection
    assert existing.shortfall_before_kva == pytest.approx(70, abs=0.001)
    assert "existing_overload" in [c.code for c in over.conditions]
    alone = GridArea(engine_view(*lv_upstream(), transformer("T-over", "F1", "S1", 20, rated_kva=100)))
    blocked = evaluate(
        plan(request(8, customer_class=CustomerClass.LV_RESIDENTIAL), RULES, alone),
        alone,
        loads,
        {},
        assessed_at=NOW,
    )
    assert blocked.verdict is Verdict.NOT_FEASIBLE
    assert reservation_targets(blocked) == []


def _business(
    kva: float, kind: BusinessType, existing: float | None, district: str | None = None
) -> FeasibilityRequest:
    return replace(
        request(kva), business_type=kind, existing_capacity_kva=existing, existing_district_id=district
    )


@pytest.mark.parametrize(
    "kind", [BusinessType.NAME_CHANGE, BusinessType.TARIFF_CHANGE, BusinessType.OWNERSHIP_TRANSFER]
)
def test_a_change_that_touches_no_capacity_gets_no_grid_check(kind: BusinessType) -> None:
    planned = plan(_business(400, kind, None), RULES, GridArea(()))
    assessment = evaluate(planned, GridArea(()), {}, {}, assessed_at=NOW)
    assert assessment.verdict is Verdict.NO_CAPACITY_CHECK
    assert assessment.schemes == () and reservation_targets(assessment) == []
    assert [c.rule for c in assessment.trace] == ["business_type"]
    assert assessment.trace[0].detail == f"{kind.value} changes no capacity: no grid check and no reservation"


@pytest.mark.parametrize("kind", [BusinessType.CAPACITY_REDUCTION, BusinessType.SUSPENSION])
def test_a_reduction_or_suspension_frees_capacity_and_never_needs_reinforcement(kind: BusinessType) -> None:
    # 400 kVA contracted, 250 kept: 150 kVA freed, whatever the grid's state.
    assessment = evaluate(
        plan(_business(250, kind, 400), RULES, GridArea(())), GridArea(()), {}, {}, assessed_at=NOW
    )
    assert assessment.verdict is Verdict.FEASIBLE
    assert assessment.reinforcement == () and reservation_targets(assessment) == []
    released = check(assessment, "capacity_released")
    assert released.detail.startswith(f"{kind.value}: 400 kVA - 250 kVA kept = 150 kVA freed")
    assert assessment.existing_capacity_kva == 400
    # Without the contract capacity the freed amount is a stated condition, never a guess.
    unknown = evaluate(
        plan(_business(250, kind, None), RULES, GridArea(())), GridArea(()), {}, {}, assessed_at=NOW
    )
    assert unknown.verdict is Verdict.FEASIBLE_WITH_CONDITIONS
    assert [c.code for c in unknown.conditions] == ["existing_capacity_unknown"]


def _increase_grid() -> tuple[GridArea, dict[str, LoadReading]]:
    # T1 (400 kVA) is the customer's district TG1, 50 m east; T2 (400 kVA, idle) is nearer, 20 m west.
    area = GridArea(
        engine_view(
            *lv_upstream(),
            transformer("T1", "F1", "S1", 50).model_copy(update={"transformer_district_id": "TG1"}),
            transformer("T2", "F1", "S1", -20),
        )
    )
    loads = {key: LoadReading(value) for key, value in LV_UPSTREAM_PEAKS_KW.items()}
    loads["T1"] = LoadReading(216.0)  # 216 kW / 0.9 = 240 kVA, the customer's 100 kVA included
    loads["T2"] = LoadReading(0.0)
    return area, loads


def test_a_capacity_increase_adds_only_its_increase_at_the_existing_supply_point() -> None:
    area, loads = _increase_grid()
    # 160 kVA x 0.9 = 144 kW <= 160 kW urban: low voltage. 160 - 100 existing = 60 kVA added, demand
    # factor 1.0 (load type unknown). T1: (240 + 0 x 0.8 + 60) / 400 = 0.75 <= 0.8.
    assessment = evaluate(
        plan(_business(160, BusinessType.CAPACITY_INCREASE, 100, "TG1"), RULES, area),
        area,
        loads,
        {},
        assessed_at=NOW,
    )
    assert assessment.verdict is Verdict.FEASIBLE
    assert assessment.increment_kva == 60
    assert [s.equipment_id for s in assessment.schemes[0].sources] == ["T1"]  # not the nearer T2
    assert check(assessment, "capacity_increase").detail == (
        "160 kVA requested - 100 kVA existing contract capacity = 60 kVA added"
    )
    assert (
        "existing supply point: distribution_transformer T1"
        in check(assessment, "connection_point_search").detail
    )
    rate = check(assessment, "transformer_load_rate", "T1")
    assert rate.result is RuleResult.PASS and "= 0.7500 <=" in rate.detail
    # As a new connection the full 160 kVA would load T1 to (240 + 160) / 400 = 1.0 > 0.8 (T2 is nearer and
    # idle, so a new connection would go there instead).
    fresh = evaluate(plan(request(160), RULES, area), area, loads, {}, assessed_at=NOW)
    assert fresh.schemes[0].sources[0].equipment_id == "T2"


def test_a_capacity_increase_without_its_existing_capacity_is_insufficient_data() -> None:
    area, loads = _increase_grid()
    assessment = evaluate(
        plan(_business(160, BusinessType.CAPACITY_INCREASE, None, "TG1"), RULES, area),
        area,
        loads,
        {},
        assessed_at=NOW,
    )
    assert assessment.verdict is Verdict.INSUFFICIENT_DATA
    assert [c.code for c in assessment.conditions] == ["existing_capacity_unknown"]
    assert reservation_targets(assessment) == []


def test_a_requested_voltage_is_honoured_when_valid_and_explained_when_not() -> None:
    # 50 kVA x 0.9 = 45 kW could be low voltage, but 10 kV holds 50 kVA (<= 10,000): honoured.
    asked = plan(replace(request(50), requested_voltage_kv=10), RULES, GridArea(()))
    assert asked.voltage_kv == 10
    assert "the requested 10 kV is valid for 50 kVA and honoured" in asked.trace[0].detail
    # 500 kVA x 0.9 = 450 kW > 160 kW: 0.38 kV cannot carry it; the 10 kV band is recommended instead.
    refused = plan(replace(request(500), requested_voltage_kv=0.38), RULES, GridArea(()))
    assert refused.voltage_kv == 10
    assert "the requested 0.38 kV cannot carry 500 kVA" in refused.trace[0].detail
