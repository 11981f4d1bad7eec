"""A simulated equipment history with a known truth, for backtesting the forecaster.

Daily peaks in kW, every term additive so the growth of the monthly peak is the trend's own:
- level: BASE_KW on the first day, growing by GROWTH_KW_PER_YEAR (linear);
- summer: + SUMMER_KW x a bell around day-of-year 200 (mid-July, air conditioning), width 35 days;
- winter: + WINTER_KW x a bell around New Year (heating), width 25 days;
- week: - WEEKEND_KW on Saturdays and Sundays;
- weather: an AR(1) process, day-to-day persistence WEATHER_PERSISTENCE, innovations of WEATHER_SD_KW,
  so a hot or cold spell lasts several days, as real weather does. Seeded: the same seed, the same days.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

BASE_KW = 1000.0
GROWTH_KW_PER_YEAR = 80.0
SUMMER_KW = 250.0
WINTER_KW = 120.0
WEEKEND_KW = 80.0
WEATHER_PERSISTENCE = 0.7
WEATHER_SD_KW = 30.0
DAYS_PER_YEAR = 365.25


def daily_peaks(start: date, days: int, seed: int) -> list[tuple[date, float]]:
    """`days` consecutive days from `start` with their simulated peak (kW)."""
    rng = np.random.default_rng(seed)
    dates = [start + timedelta(days=n) for n in range(days)]
    weather = np.zeros(days)
    for n in range(1, days):
        weather[n] = WEATHER_PERSISTENCE * weather[n - 1] + rng.normal(0.0, WEATHER_SD_KW)
    peaks = []
    for n, day in enumerate(dates):
        day_of_year = day.timetuple().tm_yday
        summer = np.exp(-(((day_of_year - 200) / 35.0) ** 2))
        # New Year's bell, seen from both ends of the year.
        winter = np.exp(-(((day_of_year - 15) / 25.0) ** 2)) + np.exp(-(((day_of_year - 380) / 25.0) ** 2))
        level = BASE_KW + GROWTH_KW_PER_YEAR * n / DAYS_PER_YEAR
        weekend = WEEKEND_KW if day.weekday() >= 5 else 0.0
        peaks.append((day, float(level + SUMMER_KW * summer + WINTER_KW * winter - weekend + weather[n])))
    return peaks
