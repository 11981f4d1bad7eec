"""The load-share analysis recovers the simulator's commercial air conditioning from the curves alone."""

from __future__ import annotations

from datetime import date

import pytest

from forecast.demand_config import load_demand_config
from forecast.load_share import DayCurve, InsufficientCurvesError, load_share
from ground.settings import PROJECT_ROOT
from simulators.dispatch import history
from simulators.dispatch.equipment import Equipment, EquipmentKind, LoadClass

SETTINGS = load_demand_config(PROJECT_ROOT).load_share
COMPLEXES = [
    Equipment(
        f"T-MALL-{n}",
        f"商业综合体{n}号专变",
        EquipmentKind.TRANSFORMER,
        400.0 + 200 * n,
        LoadClass.COMMERCIAL,
    )
    for n in range(3)
]


def _curves(equipment: list[Equipment], years: int, seed: int) -> list[DayCurve]:
    return [
        DayCurve(curve.equipment.equipment_id, curve.day, curve.load_kw)
        for day in history.history(equipment, date(2023, 1, 1), years, seed)
        for curve in day
    ]


def test_three_years_of_commercial_complexes_give_ac_at_60_percent_of_the_summer_peak_14_to_17() -> None:
    result = load_share(_curves(COMPLEXES, 3, seed=11), SETTINGS)
    assert result.years == [2023, 2024, 2025]
    # Truth (simulators/dispatch/history.py): AC is 60% of the load at 15:30 on a July-August day of mean
    # cooling, and half its height at 14:00 and 17:00. The recovered share moves with the three summers'
    # mean weather (AR(1) anomaly, sd 0.14, about eleven independent days a summer: a share error of about
    # 0.24 x 0.14 / sqrt(33) = 0.006), hence 0.02; 15:30 lies between the points starting 15:15 and 15:30.
    assert result.share_at_peak == pytest.approx(history.AC_SHARE_OF_SUMMER_PEAK, abs=0.02)
    assert result.summer_peak_time in ("15:15", "15:30")
    assert (result.concentrated_from, result.concentrated_to) == ("14:00", "17:00")


def test_the_share_follows_the_simulated_truth_not_a_constant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "AC_SHARE_OF_SUMMER_PEAK", 0.3)
    monkeypatch.setattr(history, "AC_SPAN_HOURS", 5.0)
    result = load_share(_curves(COMPLEXES[:1], 2, seed=3), SETTINGS)
    assert result.share_at_peak == pytest.approx(0.3, abs=0.02)
    # A 5-hour half-maximum span around 15:30: 13:00 to 18:00.
    assert (result.concentrated_from, result.concentrated_to) == ("13:00", "18:00")


def test_missing_points_do_not_move_the_answer() -> None:
    curves = _curves(COMPLEXES[:1], 2, seed=5)
    holed = [
        DayCurve(
            c.equipment_id, c.day, [None if (n + c.day.day) % 17 == 0 else v for n, v in enumerate(c.load_kw)]
        )
        for c in curves
    ]
    assert load_share(holed, SETTINGS).share_at_peak == pytest.approx(
        load_share(curves, SETTINGS).share_at_peak, abs=0.01
    )


def test_a_year_without_both_shoulder_seasons_is_not_compared() -> None:
    # From June 2023 to May 2025: 2023 lacks April and 2025 lacks July to November, so only 2024 counts.
    curves = [c for c in _curves(COMPLEXES[:1], 3, seed=2) if date(2023, 6, 1) <= c.day < date(2025, 6, 1)]
    assert load_share(curves, SETTINGS).years == [2024]
    with pytest.raises(InsufficientCurvesError, match="no year has at least 10 working days"):
        load_share([c for c in curves if c.day.month != 11], SETTINGS)
