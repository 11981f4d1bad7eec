"""The multi-year history: growth, the cooling season, the commercial AC component and the files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from simulators.dispatch import history
from simulators.dispatch.equipment import Equipment, EquipmentKind, LoadClass

SHOP = Equipment("T-SHOP", "某商场专变", EquipmentKind.TRANSFORMER, 400.0, LoadClass.COMMERCIAL)
HOMES = Equipment("T-HOMES", "某小区公变", EquipmentKind.TRANSFORMER, 400.0, LoadClass.RESIDENTIAL)


def test_growth_compounds_the_region_and_class_rates() -> None:
    # Region 41401 grows 6% and commercial load 5%: two years give (1.06 x 1.05)^2 = 1.2388.
    assert history.growth("41401", LoadClass.COMMERCIAL, 2.0) == pytest.approx(1.2388, abs=1e-4)
    assert history.region_of("T-SHOP") == history.region_of("T-SHOP") in history.REGION_GROWTH


def test_cooling_is_one_on_average_in_july_and_august_and_nothing_in_april_or_november() -> None:
    summer = [history.cooling(date(2026, month, day)) for month in (7, 8) for day in range(1, 32)]
    assert sum(summer) / len(summer) == pytest.approx(1.0, abs=0.01)
    shoulder = [history.cooling(date(2026, month, day)) for month in (4, 11) for day in range(1, 31)]
    assert max(shoulder) == 0.0


def test_the_ac_component_is_sixty_percent_of_the_load_at_15_30_on_a_mean_summer_day() -> None:
    # A day whose cooling is 1 and whose weather is average: AC / (base + AC) at 15:30 is the parameter.
    day = next(date(2026, 7, d) for d in range(1, 32) if abs(history.cooling(date(2026, 7, d)) - 1.0) < 0.02)
    base, ac = history.commercial_components(day, 15.5, 0.0)
    assert ac / (base + ac) == pytest.approx(0.6, abs=0.01)
    # Half of its height at 14:00 and 17:00: the bell's half-maximum span.
    assert history.commercial_components(day, 14.0, 0.0)[1] == pytest.approx(ac / 2, rel=0.01)
    assert history.commercial_components(day, 17.0, 0.0)[1] == pytest.approx(ac / 2, rel=0.01)
    assert history.commercial_components(date(2026, 4, 15), 15.5, 0.0)[1] == 0.0


def test_the_history_is_seeded_and_grows_year_on_year() -> None:
    days = list(history.history([SHOP, HOMES], date(2023, 1, 1), 2, seed=4))
    assert len(days) == 365 + 366  # 2023 and the leap year 2024
    again = list(history.history([SHOP, HOMES], date(2023, 1, 1), 2, seed=4))
    assert [curve.load_kw for curve in again[100]] == [curve.load_kw for curve in days[100]]

    # April's mean of the shop's daily energy one year on: the growth of its region and class, within the
    # noise of twenty-odd days (3% per point, 5% of the weather).
    def april(year: int) -> float:
        totals = [sum(d[0].load_kw) for d in days if d[0].day.year == year and d[0].day.month == 4]
        return sum(totals) / len(totals)

    expected = history.growth(history.region_of("T-SHOP"), LoadClass.COMMERCIAL, 1.0)
    assert april(2024) / april(2023) == pytest.approx(expected, abs=0.03)


def test_write_history_writes_one_power_curve_file_a_day(tmp_path: Path) -> None:
    assert history.write_history(tmp_path, [SHOP], date(2024, 2, 27), 1, seed=1) == 366
    first = (tmp_path / "metering_power_curve_20240227.csv").read_text(encoding="utf-8").splitlines()
    assert first[0].startswith("ID,DATA_DATE,DATA_TYPE,P1")
    assert first[1].startswith("T-SHOP,2024-02-27,1,")
    assert len(list(tmp_path.glob("*.csv"))) == 366
    assert not list(tmp_path.glob("*.part"))
