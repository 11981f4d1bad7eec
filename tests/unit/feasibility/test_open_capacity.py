"""Open capacity: load headroom from the engine's limits, PV hosting and grades, the capacity-to-load ratio,
and the open_capacity section of rules.yaml."""

from __future__ import annotations

import itertools
import math
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Connection, Engine

from canonical_model.grid import EquipmentStatus, SupplyAreaClass, TransformerOwnership
from canonical_model.load import LoadPoint, LoadProfile, LoadSource
from feasibility.config import FeasibilityConfig, load_feasibility_config, read_feasibility_config
from feasibility.grid_cache import GridCache
from feasibility.open_capacity import KIND_ORDER, DaytimeMinima, OpenCapacity, open_capacity, published
from ground.errors import ConfigError
from mappings.yamlfile import Diagnostics
from store.feasibility import capacity_reservations
from tests.unit.feasibility.builders import (
    NOW,
    ROOT,
    TODAY,
    feeder,
    main_transformer,
    store_grid,
    store_peak,
    store_profile,
    substation,
    transformer,
)

CAPACITY_485A = math.sqrt(3) * 10 * 485  # 8400.446 kVA
CONFIG: FeasibilityConfig = load_feasibility_config(ROOT)
_SEQUENCES = itertools.count(1)


def store_curve(
    conn: Connection, equipment_id: str, night_kw: float, day_kw: float, day: date = TODAY
) -> None:
    """A complete day at night_kw, except the PV hours P37-P64 (09:00-16:00) at day_kw."""
    points = [LoadPoint(load_kw=day_kw if 36 <= n < 64 else night_kw, quality=0) for n in range(96)]
    store_profile(
        conn,
        LoadProfile(
            equipment_id=equipment_id, data_date=day, source=LoadSource.DISPATCH, points=tuple(points)
        ),
    )


def reserve(conn: Connection, application_no: str, kva: float) -> None:
    """A reservation on transformer T1, as the feasibility service keeps it (feeder F1, substation S1)."""
    conn.execute(
        capacity_reservations.insert().values(
            application_no=application_no,
            equipment_id="T1",
            feeder_id="F1",
            substation_id="S1",
            kva=kva,
            reserved_at=NOW,
        )
    )


def _grid(conn: Connection, *, ties: int | None = 1, t1_day: date = TODAY) -> None:
    store_grid(
        conn,
        substation("S1", 0, 600, area=SupplyAreaClass.B),
        main_transformer("S1-T1", "S1", 50_000),
        main_transformer("S1-T2", "S1", 50_000),
        feeder("F1", "S1", 300, ties=ties),
        transformer("T1", "F1", "S1", 50, rated_kva=400),
    )
    store_peak(conn, "T1", 180.0, t1_day)
    store_peak(conn, "F1", 2_700.0)
    store_peak(conn, "S1-T1", 9_000.0)
    store_peak(conn, "S1-T2", 9_000.0)


def _answers(engine: Engine, province: str | None = None) -> dict[str, OpenCapacity]:
    rules = CONFIG.rules_for(province=province)
    assert CONFIG.open_capacity is not None
    with engine.connect() as conn:
        area = GridCache().area(conn)
        items = published(area, KIND_ORDER)
        found = open_capacity(conn, area, items, rules, CONFIG.open_capacity.rules_for(rules.province), TODAY)
    return {answer.equipment_id: answer for answer in found}


def test_open_capacity_is_the_engines_limit_less_load_basis_and_counted_reservations(
    sqlite_engine: Engine,
) -> None:
    with sqlite_engine.begin() as conn:
        _grid(conn)
        reserve(conn, "A1", 50)
    answers = _answers(sqlite_engine)
    t1, f1, s1 = answers["T1"].load, answers["F1"].load, answers["S1"].load
    # T1: 400 kVA x 0.8 heavy-load limit = 320; basis 180 kW / 0.9 = 200 kVA; 50 kVA held x 0.8 = 40.
    assert t1.open_kva == 80.0
    assert (t1.load_basis_kva, t1.counted_reserved_kva, t1.load_rate) == (200.0, 40.0, 0.6)
    assert t1.binding_limit is not None and t1.binding_limit.rule == "transformer_load_rate"
    # F1 (class B from S1, N-1 required, one tie): min(0.7 load rate, 1/2 N-1) = 0.5 binds;
    # 8400.446 x 0.5 = 4200.223 - 2700 / 0.9 = 3000 - 40 = 1160.2 kVA.
    assert f1.open_kva == 1160.2
    assert f1.binding_limit is not None
    assert (f1.binding_limit.rule, f1.binding_limit.max_load_rate, f1.binding_limit.policy) == (
        "feeder_n_minus_1",
        0.5,
        "required",
    )
    # S1: two 50 MVA units, N-1 1.3 x 1/2 = 0.65 -> 65000; basis 2 x 9000 / 0.9 = 20000; less 40 -> 44960.
    assert s1.open_kva == 44_960.0
    assert s1.binding_limit is not None and s1.binding_limit.max_load_rate == 0.65
    assert all(answer.load.status == "known" for answer in answers.values())


def test_an_overloaded_transformer_shows_zero_never_a_negative_figure(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        _grid(conn)
        reserve(conn, "A1", 200)  # 200 x 0.8 = 160 held: 200 + 160 = 360 kVA > 320
    t1 = _answers(sqlite_engine)["T1"].load
    assert t1.open_kva == 0.0
    assert t1.load_rate == 0.9  # 360 / 400


def test_a_loose_n1_leaves_the_load_rate_binding_and_a_radial_feeder_is_noted(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        _grid(conn, ties=0)
    f1 = _answers(sqlite_engine)["F1"].load
    # No tie: N-1 cannot be kept (a planning note), so the 0.7 load rate binds: 5880.312 - 3000 = 2880.3.
    assert f1.open_kva == 2880.3
    assert f1.binding_limit is not None and f1.binding_limit.rule == "feeder_load_rate"
    assert any("radial feeder F1" in note for note in f1.notes)


def test_stale_load_data_or_unknown_ties_give_unknown_with_the_reason(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        _grid(conn, ties=None, t1_day=TODAY - timedelta(days=10))
    answers = _answers(sqlite_engine)
    t1, f1 = answers["T1"].load, answers["F1"].load
    assert (t1.status, t1.open_kva) == ("unknown", None)
    assert any("stale" in reason for reason in t1.reasons)
    # N-1 is required in class B: without the tie count the binding limit cannot be known.
    assert (f1.status, f1.open_kva) == ("unknown", None)
    assert f1.reasons == ["tie switches of feeder F1 unknown"]


def test_a_substation_without_main_transformers_is_unknown(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        store_grid(conn, substation("S9", 0, 0, area=SupplyAreaClass.D))
    s9 = _answers(sqlite_engine)["S9"]
    assert s9.load.status == "unknown" and s9.load.reasons == ["capacity of S9 unknown"]
    assert s9.capacity_to_load is not None and s9.capacity_to_load.status == "unknown"
    assert s9.pv is not None and s9.pv.status == "unknown"


def test_pv_hosting_on_a_transformer_is_its_share_of_the_rating_and_graded_green(
    sqlite_engine: Engine,
) -> None:
    with sqlite_engine.begin() as conn:
        _grid(conn)
    pv = _answers(sqlite_engine)["T1"].pv
    assert pv is not None
    # 0.8 x 400 kVA = 320 kW, no connected PV in the grid data; minimum load 180 kW:
    # reverse load rate (0 - 180) / 400 = -0.45 <= 0: green.
    assert (pv.rule, pv.ceiling_kw, pv.open_kw, pv.connected_kw) == (
        "transformer_area_share",
        320.0,
        320.0,
        0.0,
    )
    assert pv.connected_note is not None and "no connected PV" in pv.connected_note
    assert (pv.reverse_load_rate, pv.grade) == (-0.45, "green")


def test_reverse_flow_on_a_feeder_limits_pv_and_sets_the_grade(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        _grid(conn)
        store_curve(conn, "F1", night_kw=100.0, day_kw=500.0, day=TODAY - timedelta(days=1))
    pv = _answers(sqlite_engine)["F1"].pv
    assert pv is not None
    # Minimum of the PV hours only: 500 kW (the 100 kW nights do not count); 500 + 0.8 x 8400.446 = 7220.357.
    assert (pv.rule, pv.min_load_kw, pv.open_kw, pv.grade) == ("reverse_flow", 500.0, 7220.357, "green")


@pytest.mark.parametrize(
    ("day_kw", "open_kw", "rate", "grade"),
    [
        # Net load -1000 kW at noon: PV already flows back; -1000 + 6720.357 = 5720.357; 1000 / 8400.446.
        (-1_000.0, 5_720.357, 0.119, "yellow"),
        # -7000 kW: 7000 / 8400.446 = 0.8333 > 0.8: red, and -7000 + 6720.357 < 0 leaves nothing.
        (-7_000.0, 0.0, 0.8333, "red"),
    ],
)
def test_measured_reverse_flow_grades_yellow_and_red(
    sqlite_engine: Engine, day_kw: float, open_kw: float, rate: float, grade: str
) -> None:
    with sqlite_engine.begin() as conn:
        _grid(conn)
        store_curve(conn, "F1", night_kw=2_000.0, day_kw=day_kw, day=TODAY - timedelta(days=1))
    pv = _answers(sqlite_engine)["F1"].pv
    assert pv is not None
    assert (pv.open_kw, pv.reverse_load_rate, pv.grade) == (open_kw, rate, grade)


def test_pv_without_recent_load_data_has_no_grade_and_no_reverse_flow_figure(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        _grid(conn)
        store_grid(conn, transformer("T2", "F1", "S1", 80, rated_kva=200))
        store_curve(conn, "T2", 1.0, 1.0, day=TODAY - timedelta(days=40))  # older than the 30-day window
        store_grid(conn, feeder("F2", "S1", 900, ties=1))
    answers = _answers(sqlite_engine)
    t2, f2 = answers["T2"].pv, answers["F2"].pv
    assert t2 is not None and f2 is not None
    # The transformer-area rule needs no load: 0.8 x 200 = 160 kW; the grade needs the minimum load.
    assert (t2.status, t2.open_kw, t2.grade) == ("known", 160.0, None)
    assert t2.reasons and t2.reasons[0].startswith("minimum load of T2: no complete day")
    # The reverse-flow rule needs the minimum load itself.
    assert (f2.status, f2.open_kw, f2.grade) == ("unknown", None, None)


def test_capacity_to_load_ratio_against_the_growth_class_range(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        _grid(conn)
        store_peak(conn, "S1-T1", 27_000.0, TODAY - timedelta(days=3))
        store_peak(conn, "S1-T2", 27_000.0, TODAY - timedelta(days=3))
    ratio = _answers(sqlite_engine)["S1"].capacity_to_load
    assert ratio is not None
    # 100000 kVA / (27000 + 27000) kW = 1.852: within moderate growth's 1.6-1.9.
    assert (ratio.main_transformer_kva, ratio.load_basis_kw, ratio.ratio) == (100_000.0, 54_000.0, 1.852)
    assert (ratio.growth, ratio.range_low, ratio.range_high, ratio.position) == (
        "moderate",
        1.6,
        1.9,
        "within",
    )


def _rules_text(extra: str) -> str:
    text = (ROOT / "feasibility" / "rules.yaml").read_text(encoding="utf-8")
    return text.replace("  provinces: {}  ", extra + "  ")


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "feasibility").mkdir()
    (tmp_path / "feasibility" / "rules.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_a_province_sets_its_growth_class_and_pv_share(tmp_path: Path) -> None:
    text = _rules_text(
        "  provinces:\n    henan: {capacity_to_load: {growth: fast}, pv: {transformer_share: 1.0}}\n"
    )
    config = load_feasibility_config(_write(tmp_path, text))
    assert config.open_capacity is not None
    henan = config.open_capacity.rules_for("henan")
    assert (henan.growth, henan.ratio_range, henan.pv_transformer_share) == ("fast", (1.8, 2.2), 1.0)
    assert henan.pv_reverse_share == config.open_capacity.default.pv_reverse_share
    assert config.open_capacity.rules_for("default").growth == "moderate"


def test_open_capacity_errors_name_file_and_line(tmp_path: Path) -> None:
    text = _rules_text("  provinces:\n    hubei: {capacity_to_load: {growth: rapid}}\n").replace(
        "daytime_points: [37, 64]", "daytime_points: [64, 37]"
    )
    lines = text.splitlines()
    points_line = next(i for i, line in enumerate(lines, 1) if "daytime_points: [64, 37]" in line)
    hubei_line = next(i for i, line in enumerate(lines, 1) if line.startswith("    hubei:"))
    diag = Diagnostics(_write(tmp_path, text))
    assert read_feasibility_config(tmp_path, diag) is None
    messages = [str(error) for error in diag.errors]
    assert any(f"rules.yaml:{points_line}" in m and "daytime_points" in m for m in messages)
    assert any(f"rules.yaml:{hubei_line}" in m and "no such province" in m for m in messages)
    assert any(f"rules.yaml:{hubei_line}" in m and "'rapid'" in m for m in messages)


def test_grade_bounds_must_rise(tmp_path: Path) -> None:
    text = _rules_text("  provinces: {}\n").replace("green_max: 0.0", "green_max: 0.9")
    with pytest.raises(ConfigError, match="green_max must be below yellow_max"):
        load_feasibility_config(_write(tmp_path, text))


def test_only_in_service_public_equipment_is_published_in_kind_then_id_order(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        _grid(conn)
        store_grid(
            conn,
            transformer("T0", "F1", "S1", 70).model_copy(
                update={"ownership": TransformerOwnership.DEDICATED}
            ),
            transformer("T3", "F1", "S1", 90).model_copy(update={"status": EquipmentStatus.DECOMMISSIONED}),
            transformer("T2", "F1", "S1", 80),
        )
    with sqlite_engine.connect() as conn:
        area = GridCache().area(conn)
    listed = [item.equipment_id for _, item in published(area, KIND_ORDER)]
    assert listed == ["S1", "F1", "T1", "T2"]
    # A page of one after F1: T1, and T2 to tell that more follow.
    after = [item.equipment_id for _, item in published(area, KIND_ORDER, after=(1, "F1"), limit=1)]
    assert after == ["T1", "T2"]


def test_the_feeder_and_substation_above_bound_what_a_transformer_can_take(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        _grid(conn)
    t1 = _answers(sqlite_engine)["T1"].load
    # T1 120 kVA, F1 1200.2, S1 45000: T1 itself is the least.
    assert (t1.open_kva, t1.open_kva_through_chain, t1.chain_limited_by) == (120.0, 120.0, "T1")
    with sqlite_engine.begin() as conn:
        store_peak(conn, "F1", 3_690.0, TODAY - timedelta(days=1))  # 4100 kVA: 4200.223 - 4100 = 100.2 left
    answers = _answers(sqlite_engine)
    t1 = answers["T1"].load
    assert (t1.open_kva, t1.open_kva_through_chain, t1.chain_limited_by) == (120.0, 100.2, "F1")
    assert (answers["F1"].load.open_kva_through_chain, answers["F1"].load.chain_limited_by) == (100.2, "F1")


def test_an_unknown_feeder_above_leaves_the_chain_figure_unknown(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        _grid(conn, ties=None)
    t1 = _answers(sqlite_engine)["T1"].load
    assert (t1.open_kva, t1.open_kva_through_chain, t1.chain_limited_by) == (120.0, None, None)


def test_daytime_minima_are_read_again_when_a_days_profile_is_corrected(sqlite_engine: Engine) -> None:
    assert CONFIG.open_capacity is not None
    rules = CONFIG.open_capacity.default
    minima = DaytimeMinima()
    yesterday = TODAY - timedelta(days=1)
    with sqlite_engine.begin() as conn:
        store_curve(conn, "F1", night_kw=900.0, day_kw=500.0, day=yesterday)
        store_curve(conn, "F1", night_kw=900.0, day_kw=700.0, day=yesterday - timedelta(days=1))
    with sqlite_engine.connect() as conn:
        assert minima.read(conn, ["F1"], rules, 72, TODAY)["F1"].kw == 500.0
    with sqlite_engine.begin() as conn:
        store_curve(conn, "F1", night_kw=900.0, day_kw=650.0, day=yesterday)  # the source corrects the day
    with sqlite_engine.connect() as conn:
        assert minima.read(conn, ["F1"], rules, 72, TODAY)["F1"].kw == 650.0
        # Days outside the 30-day window do not count.
        assert minima.read(conn, ["F1"], rules, 72, TODAY + timedelta(days=31))["F1"].kw is None
