"""Realistic 96-point daily load curves by load class, season and weekday, with seeded noise.

Shapes (share of the day's peak, by hour of day h):
- residential: low at night, a morning bump around 07:30, a small midday shoulder and the evening peak
  around 20:00; air conditioning raises summer evenings, electric heating raises winter evenings and
  mornings.
- industrial: a base load at night and a daytime plateau from about 07:30 to 18:00 with a lunch dip;
  Sundays run at a reduced shift and February (the Spring Festival shutdown) lower still.
- commercial: closed at night, a business-hours plateau from about 09:00 to 21:30 and an afternoon peak
  around 15:00 from air conditioning, much stronger in summer; weekends a little busier.

Seasonal intensity follows the month in Nanyang's climate: summer cooling peaks in late July, winter
heating in mid January. A spring weekday peaks at `utilisation` x the equipment's rated kW (before noise);
the seasons and the week move other days' peaks up or down from there.

How loaded each piece of equipment is (utilisation) is fixed per equipment id and spread like a healthy
prefecture grid: most feeders and distribution transformers peak at 25-50% of their rating on a spring
weekday (about 30-60% in winter and summer), one in ten at 50-65%, and one in twenty-five is overloaded
(75-95%, beyond the planning limits). Main transformers run lighter, 25-45%, so a substation's load fits on
its other units when one trips.

Power factor (功率因数), where a meter records it: high at light load and lowest at the day's peak, when
motors and air conditioning draw the most reactive power and capacitor banks lag behind:
- industrial: 0.96 at light load down to about 0.86 at the peak (induction motors);
- commercial: 0.97 down to about 0.91 (air conditioning, lighting ballasts);
- residential: 0.98 down to about 0.93,
falling with the square of the load's share of the day's peak, with 0.5% noise, within 0.85-0.98.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Sequence
from datetime import date

from simulators.dispatch.equipment import LoadClass

POINTS = 96
# A spring weekday, with neither cooling nor heating: the day whose peak is `utilisation` x rated kW.
REFERENCE_DAY = date(2026, 4, 15)


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-0.5 * ((hour - centre) / width) ** 2)


def _plateau(hour: float, start: float, end: float, edge: float = 0.5) -> float:
    rise = 1.0 / (1.0 + math.exp(-(hour - start) / edge))
    fall = 1.0 / (1.0 + math.exp((hour - end) / edge))
    return rise * fall


def summer_intensity(day: date) -> float:
    """0 in winter, 1 around 25 July: how much cooling load there is."""
    offset = (day.timetuple().tm_yday - 206) / 365.0 * 2 * math.pi
    return max(0.0, math.cos(offset)) ** 2


def winter_intensity(day: date) -> float:
    """0 in summer, 1 around 15 January: how much heating load there is."""
    offset = (day.timetuple().tm_yday - 15) / 365.0 * 2 * math.pi
    return max(0.0, math.cos(offset)) ** 2


def shape(load_class: LoadClass, day: date, hour: float) -> float:
    """The unscaled load at an hour of a day (its maximum over the day is normalised away)."""
    summer = summer_intensity(day)
    winter = winter_intensity(day)
    weekend = day.weekday() >= 5
    if load_class is LoadClass.RESIDENTIAL:
        return (
            0.22
            + (0.25 + 0.15 * winter) * _bump(hour, 7.5, 1.0)
            + 0.12 * _bump(hour, 12.5, 1.5)
            + (0.75 + 0.35 * summer + 0.25 * winter) * _bump(hour, 20.0, 1.6)
            + 0.15 * summer * _bump(hour, 14.5, 2.5)
        )
    if load_class is LoadClass.INDUSTRIAL:
        level = 0.6 if day.weekday() == 6 else 1.0
        if day.month == 2:
            level *= 0.7
        return (0.35 + 0.6 * level * _plateau(hour, 7.5, 18.0) - 0.15 * level * _bump(hour, 12.25, 0.5)) * (
            1.0 + 0.1 * summer
        )
    busy = 1.1 if weekend else 1.0
    return busy * (0.15 + 0.5 * _plateau(hour, 9.0, 21.5) + (0.15 + 0.45 * summer) * _bump(hour, 15.0, 2.0))


def utilisation(equipment_id: str, *, main_transformer: bool = False) -> float:
    """A spring weekday's peak as a share of the rating, fixed per equipment id (see the module text)."""
    draw = random.Random(equipment_id)
    roll, share = draw.random(), draw.random()
    if main_transformer:
        return 0.25 + 0.2 * share
    if roll < 0.04:
        return 0.75 + 0.2 * share
    if roll < 0.14:
        return 0.5 + 0.15 * share
    return 0.25 + 0.25 * share


@functools.cache
def _reference_peak(load_class: LoadClass) -> float:
    return max(shape(load_class, REFERENCE_DAY, (n + 0.5) / 4.0) for n in range(POINTS))


def daily_curve(
    load_class: LoadClass, day: date, rated_kw: float, rng: random.Random, *, utilisation: float = 0.7
) -> list[float]:
    """96 points in kW (point n covers minutes 15n to 15n+15), with 3% noise.

    The peak of a spring weekday is utilisation x rated_kw; seasons and weekdays move it up or down.
    """
    scale = utilisation * rated_kw / _reference_peak(load_class)
    # A little seasonal swing of the whole day on top of the shape's own seasonal terms.
    season = 1.0 + 0.1 * summer_intensity(day) + 0.05 * winter_intensity(day)
    return [
        max(0.0, shape(load_class, day, (n + 0.5) / 4.0) * scale * season * rng.gauss(1.0, 0.03))
        for n in range(POINTS)
    ]


# Load class -> (power factor at light load, at the day's peak); see the module text.
_POWER_FACTORS: dict[LoadClass, tuple[float, float]] = {
    LoadClass.INDUSTRIAL: (0.96, 0.86),
    LoadClass.COMMERCIAL: (0.97, 0.91),
    LoadClass.RESIDENTIAL: (0.98, 0.93),
}
LOWEST_POWER_FACTOR = 0.85
HIGHEST_POWER_FACTOR = 0.98


def power_factor_curve(
    load_class: LoadClass, loads_kw: Sequence[float | None], rng: random.Random
) -> list[float | None]:
    """The power factor at each point of a day's loads (None where the load is None), lowest at the peak."""
    light, at_peak = _POWER_FACTORS[load_class]
    peak = max((load for load in loads_kw if load is not None), default=0.0)
    factors: list[float | None] = []
    for load in loads_kw:
        if load is None:
            factors.append(None)
            continue
        share = min(1.0, load / peak) if peak > 0 else 0.0
        value = light - (light - at_peak) * share**2 + rng.gauss(0.0, 0.005)
        factors.append(min(HIGHEST_POWER_FACTOR, max(LOWEST_POWER_FACTOR, value)))
    return factors
