"""The multi-year history: growth, the cooling season, the commercial AC component and the files."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from ground import clock
from ground.clock import FixedClock
from simulators.dispatch import history
from simulators.dispatch.equipment import Equipment, EquipmentKind, LoadClass
from simulators.pms.seed import seed_database
from yekuo.cli import main

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


def test_yekuo_sim_dispatch_history_years_writes_the_years_and_stops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pms_url = f"sqlite:///{tmp_path / 'pms.db'}"
    engine = sa.create_engine(pms_url)
    seed_database(engine, seed=4, substation_count=2, feeder_count=3, transformer_count=10)
    engine.dispose()
    out = tmp_path / "incoming"
    arguments = [
        "sim",
        "dispatch",
        "--out",
        str(out),
        "--pms-db",
        pms_url,
        "--feeders",
        "1",
        "--transformers",
        "2",
    ]
    assert main([*arguments, "--history-years", "1", "--start", "2025-03-01"]) == 0
    assert len(list(out.glob("metering_power_curve_*.csv"))) == 365
    assert "wrote 365 days of history curves" in capsys.readouterr().out
    # Without --start, whole years up to the clock's: 2025 from a clock in 2026.
    with clock.use(FixedClock(datetime(2026, 6, 1, tzinfo=UTC))):
        assert main([*arguments, "--out", str(tmp_path / "b"), "--history-years", "1"]) == 0
    names = sorted(path.name for path in (tmp_path / "b").glob("*.csv"))
    assert (names[0], names[-1]) == ("metering_power_curve_20250101.csv", "metering_power_curve_20251231.csv")
