"""Feasibility check latency with a city-sized grid: 50,000 transformers, 2,000 feeders, 100 substations.

Two paths are timed over the same synthetic grid, spread evenly over a 40 km square around Zhengzhou:
- engine: plan() and evaluate() on an in-memory GridArea built once (the rules and the spatial index);
- database: FeasibilityService.preview() on the hub database (PostgreSQL in `make bench`), which reads the
  equipment in the site's supply radius, the load basis with the power factor measured at its peak and the
  reservations for every check, then runs the engine (the path of the API and of the feasibility consumer).
Sites are random (seeded) in the centre of the grid; requests alternate between low-voltage (100 kVA) and
10 kV (630 kVA). The database holds a year of daily profiles (history_days) for every feeder and main
transformer and for each transformer a 10 kV search from those sites can reach, so the 12-month load basis
reads a full year for every candidate; the grid is evenly dense, so the sites' square costs what any other
would, and seeding the year only where checks look keeps the run within minutes.
Every day peaks at 20:00, and every other piece of equipment has a factor curve of its peak day.
"""

from __future__ import annotations

import math
import random
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from canonical_model.application import CustomerClass
from canonical_model.common import GeoPoint, UrbanRural
from feasibility.config import Rules, load_feasibility_config
from feasibility.engine import (
    FEEDER,
    MAIN_TRANSFORMER,
    SUBSTATION,
    TRANSFORMER,
    Equipment,
    FeasibilityRequest,
    GridArea,
    LoadReading,
    evaluate,
    plan,
)
from feasibility.service import FeasibilityService
from feasibility.spatial import METRES_PER_DEGREE_LAT
from store.database import create_engine, create_schema
from store.grid import bump_grid_revision, grid_equipment
from store.loads import load_profiles, power_factor_curves

ROOT = Path(__file__).resolve().parents[1]
CENTRE = GeoPoint(lon=113.65, lat=34.75)
SPAN_M = 40_000
# The checks' sites lie in a square of this side at the centre; a transformer within REACH_M of that square
# can be a candidate (3 km: the urban 10 kV supply radius).
SITES_SPAN_M = 6_000
REACH_M = 3_000
NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
DAY = date(2026, 11, 20)
PEAK_POINT = 80  # 20:00-20:15


@dataclass(frozen=True)
class Latency:
    """Latency figures of one path, milliseconds."""

    path: str
    checks: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class FeasibilityBench:
    """Both paths and the grid they ran on."""

    transformers: int
    feeders: int
    substations: int
    build_s: float
    results: tuple[Latency, ...]


def random_point(
    rng: random.Random, near: tuple[float, float] | None = None, within_m: float = SPAN_M
) -> tuple[float, float]:
    """A random point in the square, or within a square of side within_m around another point."""
    half = within_m / 2
    east, north = rng.uniform(-half, half), rng.uniform(-half, half)
    lon0, lat0 = near or (CENTRE.lon, CENTRE.lat)
    lat = lat0 + north / METRES_PER_DEGREE_LAT
    lon = lon0 + east / (METRES_PER_DEGREE_LAT * 0.8217)  # cos(34.75 degrees)
    return lon, lat


def synthetic_grid(transformers: int, feeders: int, substations: int, seed: int = 7) -> list[Equipment]:
    """Substations with two main transformers each, feeders on them, transformers on the feeders.

    As in a real network, a feeder starts near its substation and its transformers lie along it.
    """
    rng = random.Random(seed)
    items: list[Equipment] = []
    substation_at: list[tuple[float, float]] = []
    feeder_at: list[tuple[float, float]] = []
    for s in range(substations):
        lon, lat = random_point(rng)
        substation_at.append((lon, lat))
        items.append(Equipment(SUBSTATION, f"S{s}", f"S{s}", lon=lon, lat=lat, voltage_kv=110))
        for t in range(2):
            items.append(Equipment(MAIN_TRANSFORMER, f"S{s}-T{t}", substation_id=f"S{s}", rated_kva=50_000))
    for f in range(feeders):
        lon, lat = random_point(rng, substation_at[f % substations], 8_000)
        feeder_at.append((lon, lat))
        items.append(
            Equipment(
                FEEDER,
                f"F{f}",
                f"F{f}",
                lon=lon,
                lat=lat,
                substation_id=f"S{f % substations}",
                voltage_kv=10,
                allowed_current_a=485,
                tie_switches=rng.choice((0, 1, 2, 3)),
            )
        )
    for t in range(transformers):
        feeder = t % feeders
        lon, lat = random_point(rng, feeder_at[feeder], 3_000)
        items.append(
            Equipment(
                TRANSFORMER,
                f"T{t}",
                f"T{t}",
                lon=lon,
                lat=lat,
                feeder_id=f"F{feeder}",
                substation_id=f"S{feeder % substations}",
                rated_kva=rng.choice((200, 315, 400, 630)),
                voltage_kv=10,
            )
        )
    return items


def synthetic_peaks(items: Sequence[Equipment], seed: int = 11) -> dict[str, float]:
    """A recent peak (kW) per piece of equipment: 20-90% of its capacity at power factor 0.9."""
    rng = random.Random(seed)
    peaks: dict[str, float] = {}
    for item in items:
        if item.kind == SUBSTATION:
            continue
        capacity = item.rated_kva or (1.732 * 10 * (item.allowed_current_a or 0))
        peaks[item.equipment_id] = round(capacity * rng.uniform(0.2, 0.9) * 0.9, 1)
    return peaks


def _requests(count: int, seed: int = 13) -> list[FeasibilityRequest]:
    rng = random.Random(seed)
    requests = []
    for index in range(count):
        lon, lat = random_point(rng, within_m=SITES_SPAN_M)
        requests.append(
            FeasibilityRequest(
                requested_capacity_kva=100 if index % 2 else 630,
                customer_class=CustomerClass.LV_NON_RESIDENTIAL,
                site=GeoPoint(lon=lon, lat=lat),
                urban_rural=UrbanRural.URBAN,
            )
        )
    return requests


def _latency(path: str, samples: Sequence[float]) -> Latency:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return Latency(path, len(ordered), statistics.median(ordered) * 1000, p99 * 1000, ordered[-1] * 1000)


def _time(checks: Sequence[FeasibilityRequest], run: Callable[[FeasibilityRequest], Any]) -> list[float]:
    samples = []
    for request in checks:
        started = time.perf_counter()
        run(request)
        samples.append(time.perf_counter() - started)
    return samples


def store_grid_items(engine: Engine, items: Sequence[Equipment]) -> None:
    """The synthetic equipment as grid projection rows, in one revision."""
    kinds = {TRANSFORMER: "transformer_id", MAIN_TRANSFORMER: "transformer_id", FEEDER: "feeder_id"}
    grid_rows = []
    for item in items:
        document: dict[str, Any] = {
            kinds.get(item.kind, "substation_id"): item.equipment_id,
            "name": item.name or item.equipment_id,
            "status": "in_service",
        }
        for key, value in (
            ("substation_id", item.substation_id),
            ("feeder_id", item.feeder_id),
            ("rated_capacity_kva", item.rated_kva),
            ("voltage_kv", item.voltage_kv),
            ("allowed_current_a", item.allowed_current_a),
            ("tie_switch_count", item.tie_switches),
        ):
            if value is not None:
                document[key] = value
        if item.lon is not None and item.lat is not None:
            document["location"] = {"lon": item.lon, "lat": item.lat}
        grid_rows.append(
            {
                "kind": item.kind,
                "equipment_id": item.equipment_id,
                "name": item.name,
                "status": "in_service",
                "substation_id": item.substation_id,
                "feeder_id": item.feeder_id,
                "lon": item.lon,
                "lat": item.lat,
                "document": document,
                "last_event_id": str(uuid.uuid4()),
                "updated_at": NOW,
            }
        )
    with engine.begin() as conn:
        revision = bump_grid_revision(conn)
        conn.execute(grid_equipment.insert(), [{**row, "revision": revision} for row in grid_rows])


def _seed_database(
    engine: Engine, items: Sequence[Equipment], peaks: dict[str, float], history_days: int
) -> None:
    store_grid_items(engine, items)
    reach = SITES_SPAN_M / 2 + REACH_M
    batch: list[dict[str, Any]] = []
    factors: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for index, item in enumerate(items):
            peak = peaks.get(item.equipment_id)
            if peak is None:
                continue
            days = history_days if item.kind != TRANSFORMER or _within(item, reach) else 1
            history = [DAY - timedelta(days=back) for back in range(days)]
            batch.extend(
                profile_row(item.equipment_id, day, round(peak * _season(day), 1)) for day in history
            )
            if index % 2 == 0:
                factors.append(_factor_row(item.equipment_id, max(history, key=_season)))
            if len(batch) >= 20_000:
                conn.execute(load_profiles.insert(), batch)
                batch = []
        conn.execute(load_profiles.insert(), batch)
        conn.execute(power_factor_curves.insert(), factors)


def _within(item: Equipment, half_m: float) -> bool:
    """Whether the item lies in the square of half-side half_m around the centre."""
    if item.lon is None or item.lat is None:
        return False
    north = (item.lat - CENTRE.lat) * METRES_PER_DEGREE_LAT
    east = (item.lon - CENTRE.lon) * METRES_PER_DEGREE_LAT * 0.8217  # cos(34.75 degrees)
    return abs(north) <= half_m and abs(east) <= half_m


def _season(day: date) -> float:
    """Share of the year's peak on a day: 1.0 in late July (air conditioning), about 0.7 in spring."""
    return 0.85 + 0.15 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 205) / 365)


def profile_row(equipment_id: str, day: date, peak_kw: float, updated_at: datetime = NOW) -> dict[str, Any]:
    """A stored daily load profile of the equipment with the given peak, as the loads consumer keeps it."""
    return {
        "equipment_id": equipment_id,
        "data_date": day,
        "phase": "total",
        "source": "dispatch",
        "peak_kw": peak_kw,
        "peak_point": PEAK_POINT,
        "good_points": 96,
        "document": {"equipment_id": equipment_id},
        "event_source": "/bench",
        "sequence": 1,
        "event_id": str(uuid.uuid4()),
        "updated_at": updated_at,
    }


def _factor_row(equipment_id: str, day: date) -> dict[str, Any]:
    return {
        "equipment_id": equipment_id,
        "data_date": day,
        "phase": "total",
        "source": "dispatch",
        "factors": [0.85 if point == PEAK_POINT else 0.95 for point in range(96)],
        "good_points": 96,
        "event_source": "/bench",
        "sequence": 1,
        "event_id": str(uuid.uuid4()),
        "updated_at": NOW,
    }


def measure_feasibility(
    engine: Engine,
    *,
    transformers: int = 50_000,
    feeders: int = 2_000,
    substations: int = 100,
    checks: int = 1_000,
    history_days: int = 365,
) -> FeasibilityBench:
    """Time `checks` checks on each path; engine holds an empty hub schema that the grid is loaded into."""
    started = time.perf_counter()
    items = synthetic_grid(transformers, feeders, substations)
    peaks = synthetic_peaks(items)
    area = GridArea(items)
    build_s = time.perf_counter() - started
    rules: Rules = load_feasibility_config(ROOT).default
    loads = {key: LoadReading(value, DAY) for key, value in peaks.items()}
    requests = _requests(checks)

    def engine_check(request: FeasibilityRequest) -> Any:
        planned = plan(request, rules, area)
        return evaluate(planned, area, loads, {}, assessed_at=NOW)

    results = [_latency("engine", _time(requests, engine_check))]
    _seed_database(engine, items, peaks, history_days)
    service = FeasibilityService(load_feasibility_config(ROOT), clock=lambda: NOW)
    with engine.connect() as conn:
        samples = _time(requests, lambda request: service.preview(conn, request))
    results.append(_latency("database", samples))
    return FeasibilityBench(transformers, feeders, substations, round(build_s, 2), tuple(results))


def main() -> None:
    """Print the figures of a full-size run on a SQLite file (`make bench` runs it on PostgreSQL)."""
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        engine = create_engine(f"sqlite:///{work}/feasibility-bench.db")
        create_schema(engine)
        try:
            bench = measure_feasibility(engine)
        finally:
            engine.dispose()
    print(f"grid: {bench.transformers} transformers, {bench.feeders} feeders, built in {bench.build_s} s")
    for result in bench.results:
        print(
            f"{result.path}: {result.checks} checks, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
            f"max {result.max_ms:.2f} ms"
        )


if __name__ == "__main__":
    main()
