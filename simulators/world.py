"""One seeded world for the three simulators: the same customers, sites, feeders and transformers in each.

The PMS grid is seeded first. Marketing customers are then generated from the same seed and each site that
has coordinates is placed within about SITE_RADIUS_M of an in-service public distribution transformer of
that grid (the connection points of low-voltage customers; every transformer also marks its feeder), so
the hub's feasibility search finds connection points near every application. The dispatch simulator
measures the feeders and transformers of the same PMS database.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from simulators.dispatch.equipment import Equipment, read_main_transformers, read_pms_equipment
from simulators.marketing.seed import DEFAULT_START, generate_rows
from simulators.marketing.world import ApplicationRow, CustomerRow
from simulators.pms.schema import (
    DEVICE_TYPES,
    coordinates,
    create_pms_schema,
    feeders,
    substations,
    transformers,
)
from simulators.pms.seed import SeedSummary, seed_database
from yekuo.errors import ConfigError

SITE_RADIUS_M = 100.0
_METRES_PER_DEGREE = 111_320.0
# Keeps the placement's random stream apart from the generators that share the seed.
_PLACEMENT_SALT = 0x5173


@dataclass(frozen=True)
class WorldScale:
    """How big the world is: marketing customers and applications, PMS substations, feeders, transformers."""

    customers: int = 150
    applications: int = 200
    substations: int = 100
    feeders: int = 2000
    transformers: int = 50000


@dataclass(frozen=True)
class SharedWorld:
    """The marketing rows of a world whose grid lies in a PMS database; sites lie near its transformers."""

    seed: int
    customers: list[CustomerRow]
    applications: list[ApplicationRow]
    pms: SeedSummary | None


def build_world(
    seed: int, scale: WorldScale, pms_engine: Engine, *, start: datetime = DEFAULT_START
) -> SharedWorld:
    """Seed the PMS database unless it holds a grid already, then generate the marketing rows on that grid.

    The same seed and scale on an empty database always give the same world.
    """
    create_pms_schema(pms_engine)
    with pms_engine.connect() as conn:
        seeded = conn.execute(sa.select(sa.func.count()).select_from(substations)).scalar_one() > 0
    summary = None
    if not seeded:
        summary = seed_database(
            pms_engine,
            seed=seed,
            substation_count=scale.substations,
            feeder_count=scale.feeders,
            transformer_count=scale.transformers,
        )
    points = transformer_points(pms_engine)
    customers, applications = generate_rows(seed, scale.customers, scale.applications, start)
    place_sites(customers, applications, points, random.Random(seed ^ _PLACEMENT_SALT))
    return SharedWorld(seed, customers, applications, summary)


def transformer_points(engine: Engine) -> list[tuple[float, float]]:
    """(lon, lat) of every in-service public distribution transformer with coordinates, in OBJ_ID order."""
    transformer_type = DEVICE_TYPES["transformer"]
    query = (
        sa.select(coordinates.c.JD, coordinates.c.WD)
        .join(transformers, transformers.c.OBJ_ID == coordinates.c.SBID)
        .where(
            coordinates.c["SBLX"] == transformer_type,
            transformers.c.YXZT == "20",
            transformers.c.SYXZ == "01",
        )
        .order_by(transformers.c.OBJ_ID)
    )
    with engine.connect() as conn:
        return [(float(row.JD), float(row.WD)) for row in conn.execute(query)]


def place_sites(
    customers: list[CustomerRow],
    applications: list[ApplicationRow],
    points: list[tuple[float, float]],
    rng: random.Random,
) -> None:
    """Move every mapped customer site next to one of the points, and its applications' sites with it.

    Sites without coordinates stay without: the hub must cope with applications nobody put on a map.
    """
    if not points:
        raise ConfigError(
            "the PMS grid has no in-service public transformer with coordinates to put sites near"
        )
    moved: dict[str, tuple[float, float]] = {}
    for customer in customers:
        if customer["LONGITUDE"] is None or customer["LATITUDE"] is None:
            continue
        lon, lat = rng.choice(points)
        dlat = rng.uniform(-SITE_RADIUS_M, SITE_RADIUS_M) / _METRES_PER_DEGREE
        dlon = rng.uniform(-SITE_RADIUS_M, SITE_RADIUS_M) / (_METRES_PER_DEGREE * math.cos(math.radians(lat)))
        site = (round(lon + dlon, 6), round(lat + dlat, 6))
        customer["LONGITUDE"], customer["LATITUDE"] = site
        moved[customer["CONS_NO"]] = site
    for application in applications:
        if application["LONGITUDE"] is not None and application["CONS_NO"] in moved:
            application["LONGITUDE"], application["LATITUDE"] = moved[application["CONS_NO"]]


def dispatch_equipment(engine: Engine, seed: int) -> list[Equipment]:
    """Every feeder and in-service main and distribution transformer of the PMS database, to measure."""
    with engine.connect() as conn:
        feeder_count, transformer_count = (
            conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (feeders, transformers)
        )
    sample = read_pms_equipment(
        engine, feeder_count=int(feeder_count), transformer_count=int(transformer_count), seed=seed
    )
    return sample + read_main_transformers(engine, seed=seed)
