"""Several years of daily 96-point curves with a known truth, for the forecasts and the load-share analysis.

Every parameter of the multi-year history is here; tests check what the hub recovers against them.

- Growth: an equipment's level grows by (1 + REGION_GROWTH[region]) x (1 + CLASS_GROWTH[load class]) a
  year, compounded daily from the history's first day. Its region (a supply unit of Nanyang, ORG_NO as the
  marketing simulator uses them) is drawn per equipment id, so it stays the same in every run.
- Weather: one daily anomaly for the whole prefecture, AR(1) with day-to-day persistence
  WEATHER_PERSISTENCE and innovations of WEATHER_SD, so hot and cold spells last several days. It scales
  the day's cooling by (1 + anomaly) and the whole load by (1 + WEATHER_LOAD_SHARE x anomaly).
- Cooling season: cooling(day) is a bell around COOLING_PEAK_DAY (day of year, late July), zero more than
  COOLING_HALF_SEASON_DAYS from it (early May to mid October), scaled so that its mean over July and
  August is 1. April and November have neither cooling nor (for commercial complexes) heating.
- Commercial complexes are built from two components:
  - base: lighting, lifts and shops, a plateau from 09:00 to 21:30 (weekends x WEEKEND_BUSY), the same in
    every season;
  - air conditioning: a bell centred at AC_CENTRE_HOUR (15:30) whose half-maximum spans AC_SPAN_HOURS
    (14:00-17:00), times cooling(day) x (1 + anomaly). Its height makes it AC_SHARE_OF_SUMMER_PEAK (60%)
    of the load at 15:30, the peak, on a July-August day of mean cooling.
  The analysis must find this share and these hours from the curves alone; nothing of it is stored.
- Residential and industrial equipment keep the shapes of curves.py (their own seasonal terms).
- Every point carries POINT_NOISE (3%) of Gaussian noise.

A spring weekday of the first year peaks at curves.utilisation x the rated kW, as in the daily files.
Draws come from Random streams of their own (seed/"history/..."), so the default daily files stay as
they were.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from simulators.dispatch.curves import POINTS, REFERENCE_DAY, _bump, _plateau, shape, utilisation
from simulators.dispatch.equipment import Equipment, EquipmentKind, LoadClass
from simulators.dispatch.files import GOOD, Reading, power_curve_bytes, write_atomically

DAYS_PER_YEAR = 365.25
# Supply units (ORG_NO) of the marketing simulator and their yearly load growth: the city districts
# grow faster than the counties.
REGION_GROWTH: dict[str, float] = {
    "41401": 0.06,
    "41402": 0.05,
    "41403": 0.03,
    "41404": 0.03,
    "41405": 0.02,
    "41406": 0.02,
    "41407": 0.03,
}
CLASS_GROWTH: dict[LoadClass, float] = {
    LoadClass.RESIDENTIAL: 0.04,
    LoadClass.INDUSTRIAL: 0.01,
    LoadClass.COMMERCIAL: 0.05,
}
WEATHER_PERSISTENCE = 0.7
WEATHER_SD = 0.1
WEATHER_LOAD_SHARE = 0.05
COOLING_PEAK_DAY = 206  # 25 July
COOLING_HALF_SEASON_DAYS = 80
WEEKEND_BUSY = 1.1
AC_CENTRE_HOUR = 15.5
AC_SPAN_HOURS = 3.0  # full width at half maximum: 14:00 to 17:00
AC_SHARE_OF_SUMMER_PEAK = 0.6
POINT_NOISE = 0.03
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def region_of(equipment_id: str) -> str:
    """The supply unit an equipment is placed in, the same for an id in every run."""
    return random.Random(f"history/region/{equipment_id}").choice(sorted(REGION_GROWTH))


def growth(region: str, load_class: LoadClass, years: float) -> float:
    """The level after `years`, as a multiple of the first day's."""
    yearly = (1.0 + REGION_GROWTH[region]) * (1.0 + CLASS_GROWTH[load_class])
    return math.pow(yearly, years)


def _raw_cooling(day: date) -> float:
    distance = day.timetuple().tm_yday - COOLING_PEAK_DAY
    if abs(distance) >= COOLING_HALF_SEASON_DAYS:
        return 0.0
    return math.cos(distance / COOLING_HALF_SEASON_DAYS * math.pi / 2.0) ** 2


@functools.cache
def _summer_mean() -> float:
    # July and August of a common year; a leap year moves the days by one, well within the bell's flat top.
    first = date(2025, 7, 1)
    days = [first + timedelta(days=n) for n in range(62)]
    return sum(_raw_cooling(day) for day in days) / len(days)


def cooling(day: date) -> float:
    """The cooling season's intensity, its July-August mean 1, zero from mid October to early May."""
    return _raw_cooling(day) / _summer_mean()


def weather(start: date, days: int, seed: int) -> list[float]:
    """The prefecture's daily weather anomaly over `days` days from `start` (the same seed, the same days)."""
    rng = random.Random(f"{seed}/history/weather/{start.isoformat()}")
    anomalies = [0.0] * days
    for n in range(1, days):
        anomalies[n] = WEATHER_PERSISTENCE * anomalies[n - 1] + rng.gauss(0.0, WEATHER_SD)
    return anomalies


def _commercial_base(day: date, hour: float) -> float:
    busy = WEEKEND_BUSY if day.weekday() >= 5 else 1.0
    return busy * (0.15 + 0.5 * _plateau(hour, 9.0, 21.5))


def ac_height() -> float:
    """The AC bell's height at mean summer cooling: share s of the 15:30 load means AC = s/(1-s) x base."""
    base = _commercial_base(REFERENCE_DAY, AC_CENTRE_HOUR)
    return AC_SHARE_OF_SUMMER_PEAK / (1.0 - AC_SHARE_OF_SUMMER_PEAK) * base


def commercial_components(day: date, hour: float, anomaly: float) -> tuple[float, float]:
    """A commercial complex's unscaled (base, air conditioning) at an hour of a day."""
    sigma = AC_SPAN_HOURS / _FWHM_PER_SIGMA
    ac = ac_height() * cooling(day) * (1.0 + anomaly) * _bump(hour, AC_CENTRE_HOUR, sigma)
    return _commercial_base(day, hour), max(0.0, ac)


def _unscaled(load_class: LoadClass, day: date, hour: float, anomaly: float) -> float:
    if load_class is LoadClass.COMMERCIAL:
        return sum(commercial_components(day, hour, anomaly))
    return shape(load_class, day, hour)


@functools.cache
def _spring_peak(load_class: LoadClass) -> float:
    return max(_unscaled(load_class, REFERENCE_DAY, (n + 0.5) / 4.0, 0.0) for n in range(POINTS))


@dataclass(frozen=True)
class HistoryDay:
    """One equipment's simulated day: 96 loads in kW."""

    equipment: Equipment
    day: date
    load_kw: tuple[float, ...]


def history(equipment: Sequence[Equipment], start: date, years: int, seed: int) -> Iterator[list[HistoryDay]]:
    """Each day's curves of every equipment, from `start` to the same date `years` later (excluded)."""
    # 29 February has no same date in a common year: the history then ends on 1 March.
    end = (
        start.replace(year=start.year + years)
        if (start.month, start.day) != (2, 29)
        else (date(start.year + years, 3, 1))
    )
    days = (end - start).days
    anomalies = weather(start, days, seed)
    rng = random.Random(f"{seed}/history/points")
    levels = {
        item.equipment_id: utilisation(
            item.equipment_id, main_transformer=item.kind is EquipmentKind.MAIN_TRANSFORMER
        )
        * item.rated_kw
        / _spring_peak(item.load_class)
        for item in equipment
    }
    regions = {item.equipment_id: region_of(item.equipment_id) for item in equipment}
    for n in range(days):
        day = start + timedelta(days=n)
        anomaly = anomalies[n]
        out = []
        for item in equipment:
            scale = levels[item.equipment_id] * growth(
                regions[item.equipment_id], item.load_class, n / DAYS_PER_YEAR
            )
            scale *= 1.0 + WEATHER_LOAD_SHARE * anomaly
            loads = tuple(
                max(
                    0.0,
                    _unscaled(item.load_class, day, (p + 0.5) / 4.0, anomaly)
                    * scale
                    * rng.gauss(1.0, POINT_NOISE),
                )
                for p in range(POINTS)
            )
            out.append(HistoryDay(item, day, loads))
        yield out


def write_history(out_dir: Path, equipment: Sequence[Equipment], start: date, years: int, seed: int) -> int:
    """Write the history as metering power-curve CSVs (E_MP_POWER_CURVE), one a day; return the days."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for day_curves in history(equipment, start, years, seed):
        readings = [
            Reading(curve.equipment, curve.day, curve.load_kw, (GOOD,) * POINTS) for curve in day_curves
        ]
        stamp = day_curves[0].day.strftime("%Y%m%d")
        write_atomically(out_dir / f"metering_power_curve_{stamp}.csv", power_curve_bytes(readings))
        written += 1
    return written
