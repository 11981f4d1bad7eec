"""Daily curves have the shape of their load class and follow the seasons."""

from __future__ import annotations

import random
from datetime import date

import pytest

from simulators.dispatch.curves import (
    daily_curve,
    power_factor_curve,
    summer_intensity,
    utilisation,
    winter_intensity,
)
from simulators.dispatch.equipment import LoadClass

SPRING = date(2026, 4, 15)  # a Wednesday
SUMMER = date(2026, 7, 22)  # a Wednesday
WINTER = date(2026, 1, 14)  # a Wednesday


def curve(load_class: LoadClass, day: date, seed: int = 1) -> list[float]:
    return daily_curve(load_class, day, 1000.0, random.Random(seed), utilisation=0.7)


def hour_of_peak(points: list[float]) -> float:
    return points.index(max(points)) / 4


def mean(points: list[float], start_hour: float, end_hour: float) -> float:
    chosen = points[int(start_hour * 4) : int(end_hour * 4)]
    return sum(chosen) / len(chosen)


@pytest.mark.parametrize("day", [SPRING, SUMMER, WINTER])
def test_residential_load_peaks_in_the_evening(day: date) -> None:
    points = curve(LoadClass.RESIDENTIAL, day)
    assert 18.5 <= hour_of_peak(points) <= 21.5
    assert mean(points, 2, 5) < 0.45 * max(points), "night is low"
    assert mean(points, 7, 8.5) > mean(points, 3, 5), "there is a morning bump"


@pytest.mark.parametrize("day", [SPRING, SUMMER, WINTER])
def test_industrial_load_holds_a_daytime_plateau_with_a_lunch_dip(day: date) -> None:
    points = curve(LoadClass.INDUSTRIAL, day)
    day_level, night_level = mean(points, 9, 11.5), mean(points, 0, 5)
    assert day_level > 1.8 * night_level
    assert abs(mean(points, 9, 11) - mean(points, 14, 17)) < 0.08 * day_level, "a flat plateau"
    assert mean(points, 12, 12.5) < 0.9 * day_level, "the lunch dip"


def test_industrial_load_runs_a_reduced_shift_on_sunday() -> None:
    weekday = curve(LoadClass.INDUSTRIAL, date(2026, 4, 15))
    sunday = curve(LoadClass.INDUSTRIAL, date(2026, 4, 19))
    assert mean(sunday, 9, 11) < 0.85 * mean(weekday, 9, 11)


def test_commercial_load_peaks_in_the_afternoon_and_most_in_summer() -> None:
    summer = curve(LoadClass.COMMERCIAL, SUMMER)
    spring = curve(LoadClass.COMMERCIAL, SPRING)
    assert 13.0 <= hour_of_peak(summer) <= 17.0
    assert mean(summer, 2, 5) < 0.3 * max(summer), "closed at night"
    assert max(summer) > 1.1 * max(spring), "air conditioning raises the summer peak"
    assert mean(summer, 14, 16) / mean(summer, 10, 11) > mean(spring, 14, 16) / mean(spring, 10, 11)


def test_residential_evenings_grow_in_summer_and_winter() -> None:
    assert max(curve(LoadClass.RESIDENTIAL, SUMMER)) > max(curve(LoadClass.RESIDENTIAL, SPRING))
    assert max(curve(LoadClass.RESIDENTIAL, WINTER)) > max(curve(LoadClass.RESIDENTIAL, SPRING))


def test_seasonal_intensity_peaks_in_late_july_and_mid_january() -> None:
    assert summer_intensity(date(2026, 7, 25)) == pytest.approx(1.0, abs=1e-3)
    assert summer_intensity(date(2026, 1, 15)) == 0.0
    assert winter_intensity(date(2026, 1, 15)) == pytest.approx(1.0, abs=1e-3)
    assert winter_intensity(date(2026, 7, 25)) == 0.0


def test_curves_are_96_non_negative_points_near_the_utilisation_and_seeded() -> None:
    points = curve(LoadClass.RESIDENTIAL, SPRING)
    assert len(points) == 96 and min(points) >= 0
    assert 0.6 * 1000 < max(points) < 0.85 * 1000
    assert points == curve(LoadClass.RESIDENTIAL, SPRING)
    assert points != curve(LoadClass.RESIDENTIAL, SPRING, seed=2)


def test_utilisation_is_fixed_per_equipment_and_mostly_moderate() -> None:
    assert utilisation("XL000001") == utilisation("XL000001")
    shares = [utilisation(f"XL{n:06d}") for n in range(2000)]
    moderate = sum(1 for share in shares if 0.25 <= share <= 0.5) / len(shares)
    overloaded = sum(1 for share in shares if share >= 0.75) / len(shares)
    assert 0.8 < moderate < 0.92  # about 86%
    assert 0.02 < overloaded < 0.07  # about 4%
    assert max(shares) <= 0.95
    mains = [utilisation(f"ZB{n:06d}", main_transformer=True) for n in range(500)]
    assert min(mains) >= 0.25 and max(mains) <= 0.45


@pytest.mark.parametrize(
    ("load_class", "lowest", "highest"),
    [
        (LoadClass.INDUSTRIAL, 0.85, 0.89),  # 0.86 at the peak, with noise
        (LoadClass.COMMERCIAL, 0.89, 0.93),  # 0.91
        (LoadClass.RESIDENTIAL, 0.91, 0.95),  # 0.93
    ],
)
def test_the_power_factor_is_lowest_at_the_peak(load_class: LoadClass, lowest: float, highest: float) -> None:
    loads: list[float | None] = list(curve(load_class, SUMMER))
    loads[3] = None
    factors = power_factor_curve(load_class, loads, random.Random(2))
    assert factors[3] is None, "no load read, no factor"
    values = [factor for factor in factors if factor is not None]
    assert all(0.85 <= factor <= 0.98 for factor in values)
    peak = max(range(96), key=lambda n: loads[n] or 0.0)
    quietest = min(range(96), key=lambda n: loads[n] if loads[n] is not None else float("inf"))
    at_peak, at_quietest = factors[peak], factors[quietest]
    assert at_peak is not None and at_quietest is not None
    assert lowest <= at_peak <= highest
    assert at_quietest > at_peak + 0.03
