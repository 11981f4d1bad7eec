"""The load store: the power factor at a profile's peak point, whichever of the two curves came first."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from canonical_model.load import LoadPoint, LoadProfile, LoadSource
from store.loads import (
    FactorCurve,
    PeakPoint,
    load_profiles,
    power_factors_at,
    upsert_power_factors,
)
from tests.unit.feasibility.builders import store_profile

DAY = date(2026, 11, 20)
_SEQUENCES = itertools.count(1)


def store_day(conn: Connection, equipment_id: str, peak_at: int, source: str = "metering") -> None:
    """A day at 100 kW with a 400 kW peak at point peak_at."""
    points = [LoadPoint(load_kw=400.0 if n == peak_at else 100.0, quality=0) for n in range(96)]
    store_profile(
        conn,
        LoadProfile(
            equipment_id=equipment_id, data_date=DAY, source=LoadSource(source), points=tuple(points)
        ),
    )


def store_factors(
    conn: Connection, equipment_id: str, factors: dict[int, float | None], source: str = "metering"
) -> None:
    """A factor curve of 0.95 everywhere except the given points."""
    values = [factors.get(n, 0.95) for n in range(96)]
    curve = FactorCurve(equipment_id, DAY, "total", source, values)
    upsert_power_factors(
        conn, curve, event_source="/dispatch/factor_curve", sequence=next(_SEQUENCES), event_id="e"
    )


def peak_of(conn: Connection, equipment_id: str) -> PeakPoint:
    row = conn.execute(
        sa.select(load_profiles.c.source, load_profiles.c.peak_point).where(
            load_profiles.c.equipment_id == equipment_id
        )
    ).one()
    return PeakPoint(equipment_id, DAY, row.source, row.peak_point)


@pytest.mark.parametrize("factors_first", [False, True])
def test_the_factor_at_the_peak_point_is_found_in_either_arrival_order(
    sqlite_engine: Engine, factors_first: bool
) -> None:
    with sqlite_engine.begin() as conn:
        if factors_first:
            store_factors(conn, "PB1", {80: 0.8})
            store_day(conn, "PB1", peak_at=80)
        else:
            store_day(conn, "PB1", peak_at=80)
            store_factors(conn, "PB1", {80: 0.8})
    with sqlite_engine.connect() as conn:
        peak = peak_of(conn, "PB1")
        assert peak.point == 80
        assert power_factors_at(conn, [peak], phase="total") == {"PB1": 0.8}


def test_no_factor_where_the_peak_point_is_not_good_or_the_day_has_no_curve(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        store_day(conn, "GAP", peak_at=80)
        store_factors(conn, "GAP", {80: None})  # missing or flagged at the peak: kept as null
        store_day(conn, "NONE", peak_at=10)
        store_day(conn, "OTHER_DAY", peak_at=10)
        upsert_power_factors(
            conn,
            FactorCurve("OTHER_DAY", date(2026, 11, 19), "total", "metering", [0.8] * 96),
            event_source="/dispatch/factor_curve",
            sequence=next(_SEQUENCES),
            event_id="e",
        )
    with sqlite_engine.connect() as conn:
        peaks = [peak_of(conn, name) for name in ("GAP", "NONE", "OTHER_DAY")]
        assert power_factors_at(conn, peaks, phase="total") == {}
        assert power_factors_at(conn, [], phase="total") == {}


def test_the_peaks_own_measuring_system_is_preferred_and_another_stands_in(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        store_day(conn, "BOTH", peak_at=40, source="dispatch")
        store_factors(conn, "BOTH", {40: 0.82}, source="metering")
        store_factors(conn, "BOTH", {40: 0.86}, source="dispatch")
        store_day(conn, "STAND_IN", peak_at=40, source="dispatch")
        store_factors(conn, "STAND_IN", {40: 0.82}, source="metering")
        store_factors(conn, "STAND_IN", {40: None}, source="dispatch")
    with sqlite_engine.connect() as conn:
        peaks = [peak_of(conn, "BOTH"), peak_of(conn, "STAND_IN")]
        assert power_factors_at(conn, peaks, phase="total") == {"BOTH": 0.86, "STAND_IN": 0.82}
