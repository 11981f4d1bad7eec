"""One seeded world for the three simulators: the same customers, sites, feeders and transformers in each.

The PMS grid is seeded first. Marketing customers are then generated from the same seed and each site that
has coordinates is placed within about SITE_RADIUS_M of an in-service public distribution transformer of
that grid (the connection points of low-voltage customers; every transformer also marks its feeder), so
the hub's feasibility search finds connection points near every application, and a low-voltage customer's
transformer district (TG_ID) is that transformer's (YXTQBH), as 营配贯通 links them. The dispatch simulator
measures the feeders and transformers of the same PMS database.

disagreement_rate seeds the information errors the hub's consistency rules look for: that share of the
applications declares another trade code than its customer record, or its customer names a transformer
district PMS does not know (half each). It is 0 unless asked for, so a world is clean by default.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ground.errors import ConfigError
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

SITE_RADIUS_M = 100.0
_METRES_PER_DEGREE = 111_320.0
# Keeps the placement's random stream apart from the generators that share the seed.
_PLACEMENT_SALT = 0x5173
_DISAGREEMENT_SALT = 0x7E57
# Trade codes (GB/T 4754) a wrongly keyed application declares instead of its customer's.
_OTHER_TRADE_CODES = ("C1711", "F5212", "H6210", "I6450", "K7010", "Q8411")
# A point a site lies near: longitude, latitude and the transformer's marketing district (TG_ID).
SitePoint = tuple[float, float, str]


@dataclass(frozen=True)
class WorldScale:
    """How big the world is: marketing customers and applications, PMS substations, feeders, transformers."""

    customers: int = 150
    applications: int = 200
    substations: int = 100
    feeders: int = 2000
    transformers: int = 50000
    disagreement_rate: float = 0.0
    # Each application from a customer of its own, as in a history where one customer rarely applies twice.
    distinct_customers: bool = False


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
    customers, applications = generate_rows(
        seed, scale.customers, scale.applications, start, distinct_customers=scale.distinct_customers
    )
    place_sites(customers, applications, points, random.Random(seed ^ _PLACEMENT_SALT))
    if scale.disagreement_rate:
        rng = random.Random(seed ^ _DISAGREEMENT_SALT)
        seed_disagreements(customers, applications, scale.disagreement_rate, rng)
    return SharedWorld(seed, customers, applications, summary)


def transformer_points(engine: Engine) -> list[SitePoint]:
    """(lon, lat, TG_ID) of every in-service public distribution transformer with coordinates and a
    district, in OBJ_ID order."""
    transformer_type = DEVICE_TYPES["transformer"]
    query = (
        sa.select(coordinates.c.JD, coordinates.c.WD, transformers.c.YXTQBH)
        .join(transformers, transformers.c.OBJ_ID == coordinates.c.SBID)
        .where(
            coordinates.c["SBLX"] == transformer_type,
            transformers.c.YXZT == "20",
            transformers.c.SYXZ == "01",
            transformers.c.YXTQBH.is_not(None),
        )
        .order_by(transformers.c.OBJ_ID)
    )
    with engine.connect() as conn:
        return [(float(row.JD), float(row.WD), str(row.YXTQBH)) for row in conn.execute(query)]


def place_sites(
    customers: list[CustomerRow],
    applications: list[ApplicationRow],
    points: list[SitePoint],
    rng: random.Random,
) -> None:
    """Move every mapped customer site next to one of the points, and its applications' sites with it.

    Sites without coordinates stay without: the hub must cope with applications nobody put on a map. A
    customer with a transformer district takes the district of its point (one without a site, a point
    picked by its customer number, so the placement's random draws stay as they were).
    """
    if not points:
        raise ConfigError(
            "the PMS grid has no in-service public transformer with coordinates to put sites near"
        )
    moved: dict[str, tuple[float, float]] = {}
    for customer in customers:
        if customer["LONGITUDE"] is None or customer["LATITUDE"] is None:
            if customer["TG_ID"] is not None:
                customer["TG_ID"] = points[int(customer["CONS_NO"]) % len(points)][2]
            continue
        lon, lat, district = rng.choice(points)
        if customer["TG_ID"] is not None:
            customer["TG_ID"] = district
        dlat = rng.uniform(-SITE_RADIUS_M, SITE_RADIUS_M) / _METRES_PER_DEGREE
        dlon = rng.uniform(-SITE_RADIUS_M, SITE_RADIUS_M) / (_METRES_PER_DEGREE * math.cos(math.radians(lat)))
        site = (round(lon + dlon, 6), round(lat + dlat, 6))
        customer["LONGITUDE"], customer["LATITUDE"] = site
        moved[customer["CONS_NO"]] = site
    for application in applications:
        if application["LONGITUDE"] is not None and application["CONS_NO"] in moved:
            application["LONGITUDE"], application["LATITUDE"] = moved[application["CONS_NO"]]


def seed_disagreements(
    customers: list[CustomerRow], applications: list[ApplicationRow], rate: float, rng: random.Random
) -> int:
    """Make about rate of the applications disagree with their customer or with PMS; return how many.

    Half declare another trade code than their customer record (applications with one); half have a
    customer whose transformer district PMS does not know (customers with one; all their applications).
    """
    if not 0 <= rate <= 1:
        raise ConfigError(f"disagreement_rate must be between 0 and 1, got {rate}")
    by_number = {customer["CONS_NO"]: customer for customer in customers}
    seeded = 0
    for application in applications:
        if rng.random() >= rate:
            continue
        customer = by_number[application["CONS_NO"]]
        if rng.random() < 0.5 and application["TRADE_CODE"] is not None:
            application["TRADE_CODE"] = rng.choice(
                [code for code in _OTHER_TRADE_CODES if code != customer["TRADE_CODE"]]
            )
            seeded += 1
        elif customer["TG_ID"] is not None:
            # PMS numbers districts TG0000000-TG9999999; a ninth digit is a keying error it never holds.
            customer["TG_ID"] = f"TG{rng.randrange(10**8, 10**9)}"
            seeded += 1
    return seeded


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
