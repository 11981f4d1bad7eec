"""Forecast refresh of a city-sized grid: 2,000 feeders, 50,000 distribution transformers, 100 substations.

The grid is feasibility_latency's synthetic one. Every feeder, transformer and substation has 25 months of
history before the current month, each month with exactly the 20 complete days a month needs to count
(forecast/forecast.yaml), so the refresh reads the least history that carries a forecast for all of them:
a real history of 30 days a month reads half again as many rows, at the same cost per row. Each piece of
equipment starts between 30% and 75% of its limit and grows by 0 to 8% a year, with a summer bump and daily
noise (seeded), so some of them cross their limit within the 36 months and raise an alert through the
outbox, as a real refresh would.

The timed part is refresh_forecasts itself: the grid read, the chunked history and pipeline reads, 52,100
model fits, the forecast rows written and the alerts staged. Peak RSS is the process's high-water mark
after the refresh (seeding is done in batches, so the refresh sets it).
"""

from __future__ import annotations

import argparse
import math
import random
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from bench.feasibility_latency import store_grid_items, synthetic_grid
from feasibility.config import load_feasibility_config
from feasibility.engine import MAIN_TRANSFORMER, Equipment
from forecast.config import load_forecast_config
from forecast.history import add_months
from forecast.refresh import RefreshSettings, refresh_forecasts
from store.database import create_engine, create_schema
from store.loads import load_profiles

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
HISTORY_MONTHS = 25
DAYS_PER_MONTH = 20
POWER_FACTOR = 0.9
INSERT_BATCH = 20_000


@dataclass(frozen=True)
class RefreshBench:
    """One timed refresh and what it covered."""

    feeders: int
    transformers: int
    substations: int
    equipment: int
    rows_read: int
    seed_s: float
    refresh_s: float
    rows_per_s: float
    equipment_per_s: float
    peak_rss_mb: float
    forecast: int
    alerts: int


def _limit_kw(item: Equipment) -> float:
    """Roughly what the item may carry, in kW: enough to place its synthetic load below or near it."""
    if item.allowed_current_a:
        capacity = math.sqrt(3) * (item.voltage_kv or 10) * item.allowed_current_a
        return capacity * 0.5 * POWER_FACTOR
    return (item.rated_kva or 100_000) * 0.8 * POWER_FACTOR


def _history(item: Equipment, rng: random.Random) -> Iterator[tuple[date, float]]:
    start = add_months(NOW.date().replace(day=1), -HISTORY_MONTHS)
    level = _limit_kw(item) * rng.uniform(0.3, 0.75)
    growth = rng.uniform(0.0, 0.08) / 12
    for index in range(HISTORY_MONTHS):
        month = add_months(start, index)
        summer = 0.1 if month.month in (7, 8) else 0.0
        base = level * (1 + growth * index + summer)
        for day in range(1, DAYS_PER_MONTH + 1):
            yield month.replace(day=day), base * rng.uniform(0.95, 1.0)


def _rows(items: Sequence[Equipment], seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    sequence = 0
    for item in items:
        for day, peak in _history(item, rng):
            sequence += 1
            yield {
                "equipment_id": item.equipment_id,
                "data_date": day,
                "phase": "total",
                "source": "dispatch",
                "peak_kw": round(peak, 1),
                "peak_point": 60,
                "good_points": 96,
                "document": {},
                "event_source": "/bench",
                "sequence": sequence,
                "event_id": f"b{sequence}",
                "updated_at": NOW,
            }


def seed_history(engine: Engine, items: Sequence[Equipment], seed: int = 17) -> None:
    """The grid and every forecast equipment's history."""
    store_grid_items(engine, items)
    measured = [item for item in items if item.kind != MAIN_TRANSFORMER]
    batch: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for row in _rows(measured, seed):
            batch.append(row)
            if len(batch) >= INSERT_BATCH:
                conn.execute(load_profiles.insert(), batch)
                batch = []
        if batch:
            conn.execute(load_profiles.insert(), batch)


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_refresh(
    engine: Engine, *, feeders: int = 2_000, transformers: int = 50_000, substations: int = 100
) -> RefreshBench:
    """Seed a grid of the given size into engine's empty hub schema and time one whole refresh."""
    started = time.perf_counter()
    items = synthetic_grid(transformers, feeders, substations)
    seed_history(engine, items)
    seed_s = time.perf_counter() - started
    settings = RefreshSettings(
        rules=load_feasibility_config(ROOT), config=load_forecast_config(ROOT), exchange="yekuo.events"
    )
    started = time.perf_counter()
    report = refresh_forecasts(engine, settings, now=NOW)
    refresh_s = time.perf_counter() - started
    return RefreshBench(
        feeders=feeders,
        transformers=transformers,
        substations=substations,
        equipment=report.equipment,
        rows_read=report.rows_read,
        seed_s=round(seed_s, 1),
        refresh_s=round(refresh_s, 1),
        rows_per_s=round(report.rows_read / refresh_s),
        equipment_per_s=round(report.equipment / refresh_s, 1),
        peak_rss_mb=round(_peak_rss_mb(), 1),
        forecast=report.forecast,
        alerts=report.raised,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bench.forecast_refresh [--db-url URL] [--feeders N] [--transformers N]`: one refresh."""
    parser = argparse.ArgumentParser(prog="python -m bench.forecast_refresh", description=__doc__)
    parser.add_argument("--db-url", default="sqlite:///var/bench-forecast.db", help="an empty hub database")
    parser.add_argument("--feeders", type=int, default=2_000)
    parser.add_argument("--transformers", type=int, default=50_000)
    args = parser.parse_args(argv)
    engine = create_engine(args.db_url)
    try:
        create_schema(engine)
        figures = measure_refresh(engine, feeders=args.feeders, transformers=args.transformers)
    finally:
        engine.dispose()
    for key, value in asdict(figures).items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
