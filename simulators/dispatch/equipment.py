"""The equipment the dispatch simulator measures: feeders, main and distribution transformers of PMS.

Ids and names come from the PMS simulator (read from its database, or from a private in-memory copy seeded
the same way), so the load files join the grid equipment the hub learns from PMS. Each piece gets a load
class that shapes its daily curve: public transformers serve homes, dedicated ones a factory or a business
(by the customer named in the transformer's name), feeders a seeded mix.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ground.errors import ConfigError
from simulators.pms.schema import feeders, main_transformers, transformers
from simulators.pms.seed import seed_database

POWER_FACTOR = 0.9
FEEDER_KV = 10.0
# Dedicated transformers of these trades run a factory's day; the others a business day.
_INDUSTRIAL_TRADES = ("纺织", "化工", "建材", "冶金", "机械", "造纸")


class EquipmentKind(StrEnum):
    """What is measured: dispatch automation measures feeders and main transformers, metering the rest."""

    FEEDER = "feeder"
    MAIN_TRANSFORMER = "main_transformer"
    TRANSFORMER = "transformer"


class LoadClass(StrEnum):
    """The shape of a daily curve."""

    RESIDENTIAL = "residential"
    INDUSTRIAL = "industrial"
    COMMERCIAL = "commercial"


@dataclass(frozen=True)
class Equipment:
    """A feeder or transformer with its PMS id and name, its capacity in kW and its load class."""

    equipment_id: str
    name: str
    kind: EquipmentKind
    rated_kw: float
    load_class: LoadClass


def classify_transformer(name: str, ownership: str | None) -> LoadClass:
    """Public transformers (SYXZ 01) serve homes; dedicated ones a factory or business by their trade."""
    if ownership != "02":
        return LoadClass.RESIDENTIAL
    if any(trade in name for trade in _INDUSTRIAL_TRADES):
        return LoadClass.INDUSTRIAL
    return LoadClass.COMMERCIAL


def feeder_rated_kw(allowed_current_a: float) -> float:
    """What a 10 kV feeder carries at its allowed current: sqrt(3) x U x I x power factor."""
    return math.sqrt(3) * FEEDER_KV * allowed_current_a * POWER_FACTOR


def read_pms_equipment(
    engine: Engine, *, feeder_count: int, transformer_count: int, seed: int
) -> list[Equipment]:
    """A seeded sample of the feeders and transformers in a PMS database (its tables read only)."""
    rng = random.Random(seed)
    with engine.connect() as conn:
        feeder_rows = conn.execute(
            sa.select(feeders.c.OBJ_ID, feeders.c.XLMC, feeders.c.YXDL).order_by(feeders.c.OBJ_ID)
        ).all()
        transformer_rows = conn.execute(
            sa.select(transformers.c.OBJ_ID, transformers.c.SBMC, transformers.c.EDRL, transformers.c.SYXZ)
            .where(transformers.c.YXZT == "20")
            .order_by(transformers.c.OBJ_ID)
        ).all()
    if not feeder_rows and not transformer_rows:
        raise ConfigError("the PMS database has no feeders or in-service transformers to measure")
    picked_feeders = rng.sample(feeder_rows, min(feeder_count, len(feeder_rows)))
    picked_transformers = rng.sample(transformer_rows, min(transformer_count, len(transformer_rows)))
    classes = list(LoadClass)
    equipment = [
        Equipment(
            row.OBJ_ID,
            row.XLMC,
            EquipmentKind.FEEDER,
            round(feeder_rated_kw(float(row.YXDL or 400)), 1),
            rng.choices(classes, (5, 3, 2))[0],
        )
        for row in sorted(picked_feeders)
    ]
    equipment += [
        Equipment(
            row.OBJ_ID,
            row.SBMC,
            EquipmentKind.TRANSFORMER,
            round(float(row.EDRL) * POWER_FACTOR, 1),
            classify_transformer(row.SBMC, row.SYXZ),
        )
        for row in sorted(picked_transformers)
    ]
    return equipment


def read_main_transformers(engine: Engine, *, seed: int) -> list[Equipment]:
    """Every in-service main transformer of a PMS database (EDRL in MVA), with a seeded load class."""
    rng = random.Random(seed)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(main_transformers.c.OBJ_ID, main_transformers.c.SBMC, main_transformers.c.EDRL)
            .where(main_transformers.c.YXZT == "20")
            .order_by(main_transformers.c.OBJ_ID)
        ).all()
    classes = list(LoadClass)
    return [
        Equipment(
            row.OBJ_ID,
            row.SBMC,
            EquipmentKind.MAIN_TRANSFORMER,
            round(float(row.EDRL) * 1000 * POWER_FACTOR, 1),
            rng.choices(classes, (5, 3, 2))[0],
        )
        for row in rows
    ]


def pms_equipment(
    *,
    pms_seed: int = 20261126,
    substation_count: int = 100,
    pms_feeder_count: int = 2000,
    pms_transformer_count: int = 50000,
    feeder_count: int = 200,
    transformer_count: int = 1000,
    seed: int = 1,
) -> list[Equipment]:
    """A sample of the grid `yekuo sim pms` seeds with the same seed and sizes (the same ids and names)."""
    engine = sa.create_engine("sqlite://")
    try:
        seed_database(
            engine,
            seed=pms_seed,
            substation_count=substation_count,
            feeder_count=pms_feeder_count,
            transformer_count=pms_transformer_count,
        )
        return read_pms_equipment(
            engine, feeder_count=feeder_count, transformer_count=transformer_count, seed=seed
        )
    finally:
        engine.dispose()


def split(equipment: Sequence[Equipment]) -> tuple[list[Equipment], list[Equipment]]:
    """What dispatch automation measures (feeders, main transformers) and what metering measures."""
    return (
        [item for item in equipment if item.kind is not EquipmentKind.TRANSFORMER],
        [item for item in equipment if item.kind is EquipmentKind.TRANSFORMER],
    )
