"""One seeded world for the three simulators: marketing sites next to the grid the dispatch feed measures."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
import sqlalchemy as sa

from ground.errors import ConfigError
from simulators.pms.schema import coordinates, main_transformers, transformers
from simulators.world import SITE_RADIUS_M, WorldScale, build_world, dispatch_equipment, seed_disagreements

SCALE = WorldScale(customers=60, applications=40, substations=2, feeders=6, transformers=50)


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dlat = (a[1] - b[1]) * 111_320.0
    dlon = (a[0] - b[0]) * 111_320.0 * math.cos(math.radians(a[1]))
    return math.hypot(dlat, dlon)


def _public_in_service(engine: sa.Engine) -> list[tuple[float, float]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(coordinates.c.JD, coordinates.c.WD)
            .join(transformers, transformers.c.OBJ_ID == coordinates.c.SBID)
            .where(transformers.c.YXZT == "20", transformers.c.SYXZ == "01")
        ).all()
    return [(float(row.JD), float(row.WD)) for row in rows]


def test_every_mapped_site_lies_next_to_an_in_service_public_transformer() -> None:
    engine = sa.create_engine("sqlite://")
    world = build_world(5, SCALE, engine)
    points = _public_in_service(engine)
    mapped = [c for c in world.customers if c["LONGITUDE"] is not None and c["LATITUDE"] is not None]
    assert len(mapped) > 40
    for customer in mapped:
        site = (customer["LONGITUDE"], customer["LATITUDE"])
        assert min(_metres(site, point) for point in points) <= SITE_RADIUS_M * math.sqrt(2) + 1
    by_customer = {c["CONS_NO"]: (c["LONGITUDE"], c["LATITUDE"]) for c in world.customers}
    for application in world.applications:
        if application["LONGITUDE"] is not None:
            assert (application["LONGITUDE"], application["LATITUDE"]) == by_customer[application["CONS_NO"]]


def test_the_same_seed_gives_the_same_world_and_another_seed_another() -> None:
    first = build_world(5, SCALE, sa.create_engine("sqlite://"))
    again = build_world(5, SCALE, sa.create_engine("sqlite://"))
    other = build_world(6, SCALE, sa.create_engine("sqlite://"))
    assert (first.customers, first.applications) == (again.customers, again.applications)
    assert first.customers != other.customers


def test_a_seeded_database_is_kept_and_the_dispatch_feed_measures_its_equipment() -> None:
    engine = sa.create_engine("sqlite://")
    first = build_world(5, SCALE, engine)
    kept = build_world(5, SCALE, engine)
    assert first.pms is not None and first.pms.transformers == 50
    assert kept.pms is None
    assert kept.customers == first.customers
    measured = {item.equipment_id for item in dispatch_equipment(engine, 5)}
    with engine.connect() as conn:
        in_service = set(
            conn.execute(sa.select(transformers.c.OBJ_ID).where(transformers.c.YXZT == "20")).scalars()
        )
    assert in_service <= measured
    assert {key for key in measured if key.startswith("XL")} == {f"XL{n:06d}" for n in range(1, 7)}
    with engine.connect() as conn:
        mains = set(conn.execute(sa.select(main_transformers.c.OBJ_ID)).scalars())
    assert mains and mains <= measured  # their N-1 check needs their load


def _districts(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        query = sa.select(transformers.c.YXTQBH).where(
            transformers.c.YXZT == "20", transformers.c.SYXZ == "01"
        )
        return {district for district in conn.execute(query).scalars() if district}


def test_a_default_world_is_consistent_customers_name_districts_pms_knows() -> None:
    engine = sa.create_engine("sqlite://")
    world = build_world(5, SCALE, engine)
    known = _districts(engine)
    named = [c["TG_ID"] for c in world.customers if c["TG_ID"] is not None]
    assert len(named) > 30 and set(named) <= known
    by_customer = {c["CONS_NO"]: c for c in world.customers}
    assert all(a["TRADE_CODE"] == by_customer[a["CONS_NO"]]["TRADE_CODE"] for a in world.applications)


def test_a_disagreement_rate_seeds_both_kinds_of_information_error() -> None:
    engine = sa.create_engine("sqlite://")
    scale = WorldScale(customers=60, applications=200, substations=2, feeders=6, transformers=50)
    world = build_world(5, replace(scale, disagreement_rate=0.3), engine)
    known = _districts(engine)
    by_customer = {c["CONS_NO"]: c for c in world.customers}
    trade = [a for a in world.applications if a["TRADE_CODE"] != by_customer[a["CONS_NO"]]["TRADE_CODE"]]
    unknown = [c for c in world.customers if c["TG_ID"] is not None and c["TG_ID"] not in known]
    assert trade and unknown
    # About 30% of 200 applications, give or take the draws that find no field to change.
    assert 15 <= len(trade) + len(unknown) <= 80
    assert build_world(5, replace(scale, disagreement_rate=0.3), sa.create_engine("sqlite://")) == world


def test_a_rate_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="disagreement_rate must be between 0 and 1"):
        seed_disagreements([], [], 1.5, random.Random(1))
