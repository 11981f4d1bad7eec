"""Seeded generator of a prefecture's PMS2.0 grid (Nanyang, Henan): same seed and sizes, same rows.

Defaults: 100 substations (8% 220 kV, 60% 110 kV, 32% 35 kV) with 1-3 main transformers each, 2,000 10 kV
feeders on the 110 kV and 35 kV substations, 50,000 distribution transformers (about 70% public with a
marketing transformer district TG_ID, 30% dedicated), one or more pole-mounted switches per feeder, and GIS
coordinates for the substations, switches and about 99% of the transformers.
Supply-area classes (GDQY) follow a prefecture city of Henan: the 220/110 kV substations serve the city's A
and B areas and the county towns' C areas, the 35 kV ones county towns (C) and the countryside (D, a few E).
A feeder serves its substation's class or, for one in five, the next class out. Urban feeders (A, B) have one
to three tie switches; in C some and in D most are radial (no tie), and most rural 35 kV substations have a
single main transformer, as in the countryside.
Each main transformer feeds its own 10 kV bus section (I, II, III), and a substation's feeders leave from its
sections in turn (SSMX). Spare 10 kV bays (BYJGS) for dedicated lines: a few at most city substations, fewer
at rural ones, none at some; drawn from a random stream of their own, so
the rest of the grid does not depend on them.
GXSJ is realistic for a migrated legacy system: about 40% of the rows carry the one second of the data
migration (a burst far larger than any page), the rest are spread over three years in small batch-job
bursts, and about 0.2% are NULL.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ground.errors import ConfigError
from simulators.pms.schema import (
    DEVICE_TYPES,
    coordinates,
    create_pms_schema,
    feeders,
    main_transformers,
    substations,
    switches,
    transformers,
)

# Seeded times lie before this local (Asia/Shanghai) time; live changes use the real clock after it.
SEED_AS_OF = datetime(2026, 6, 30, 18, 0, 0)
MIGRATED_AT = datetime(2023, 6, 30, 2, 0, 0)
_SPREAD_S = int((SEED_AS_OF - MIGRATED_AT).total_seconds())
_CHUNK = 5000

_PLACES = (
    "卧龙",
    "宛城",
    "白河",
    "独山",
    "七里园",
    "溧河",
    "仲景",
    "光武",
    "建设",
    "工业",
    "车站",
    "中州",
    "麒麟",
    "靳岗",
    "潦河",
    "石桥",
    "镇平",
    "贾宋",
    "侯集",
    "方城",
    "博望",
    "赵河",
    "南召",
    "云阳",
    "社旗",
    "赊店",
    "唐河",
    "源潭",
    "郭滩",
    "新野",
    "邓州",
    "内乡",
    "西峡",
    "淅川",
    "桐柏",
    "英庄",
    "瓦店",
    "红泥湾",
    "高庙",
    "王村",
    "陆营",
    "安皋",
    "青华",
    "黄台岗",
    "蒲山",
    "金华",
    "谢庄",
    "汉冢",
    "茶庵",
    "新店",
)
_ROADS = ("人民路", "新华路", "建设路", "工业路", "光武路", "仲景路", "中州路", "车站路", "张衡路", "七一路")
_COMPANIES = ("纺织", "食品", "机械", "化工", "建材", "医药", "物流", "电子", "造纸", "冶金")
_PUBLIC_KVA = (100, 200, 200, 315, 315, 400, 400, 500, 630)
_DEDICATED_KVA = (250, 315, 400, 500, 630, 630, 800, 1000, 1250, 1600)
_MAIN_MVA = {"33": (180, 240), "32": (31.5, 40, 50, 63), "25": (6.3, 10, 20)}
# GDQY codes: "02" A, "03" B, "04" C, "05" D, "06" E ("01" A+ is a provincial capital's core: none here).
_AREA_BY_VOLTAGE = {"33": (("02", 0.3), ("03", 0.7)), "32": (("02", 0.15), ("03", 0.45), ("04", 0.4))}
_RURAL_AREAS = (("04", 0.3), ("05", 0.6), ("06", 0.1))
_NEXT_AREA_OUT = {"02": "03", "03": "04", "04": "05", "05": "06", "06": "06"}
_UNITS = {"02": (2, 2, 3), "03": (2, 2, 3), "04": (1, 2, 2), "05": (1, 1, 2), "06": (1,)}
# Half-width in degrees of the square a feeder's equipment lies in around its substation (0.01 deg ~ 1 km).
_SPREAD_DEG = {"02": 0.018, "03": 0.02, "04": 0.03, "05": 0.07, "06": 0.08}
_SECTIONS = ("I", "II", "III", "IV")
_SPARE_BAYS = {"33": (0, 2, 4), "32": (0, 1, 2, 2, 3, 4), "25": (0, 0, 1, 1, 2)}
_TIES = {"02": (1, 2, 2, 3), "03": (1, 1, 2, 3), "04": (0, 1, 1, 2), "05": (0, 0, 0, 1), "06": (0,)}
_SERIES = ("S11-M", "S13-M", "SBH15-M", "SCB13")
# Nanyang prefecture, roughly: lon 111.9-113.4, lat 32.3-33.8.
_LON = (111.9, 113.4)
_LAT = (32.3, 33.8)


@dataclass(frozen=True)
class SeedSummary:
    """How many rows of each table a seeding wrote."""

    substations: int
    main_transformers: int
    feeders: int
    transformers: int
    switches: int
    coordinates: int


def substation_id(n: int) -> str:
    """OBJ_ID of the n-th substation."""
    return f"DZ{n:06d}"


def feeder_id(n: int) -> str:
    """OBJ_ID of the n-th feeder."""
    return f"XL{n:06d}"


def transformer_id(n: int) -> str:
    """OBJ_ID of the n-th distribution transformer."""
    return f"PB{n:07d}"


def transformer_model(kva: int, rng: random.Random) -> str:
    """A type designation (型号) for a distribution transformer of this rating."""
    return f"{rng.choice(_SERIES)}-{kva}/10"


class _Times:
    """GXSJ values: the migration second, batch-job bursts over three years, and a few NULLs."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._burst_at: datetime | None = None
        self._burst_left = 0

    def next(self) -> datetime | None:
        rng = self._rng
        roll = rng.random()
        if roll < 0.002:
            return None
        if roll < 0.4:
            return MIGRATED_AT
        if self._burst_left <= 0 or self._burst_at is None:
            self._burst_at = MIGRATED_AT + timedelta(seconds=rng.randrange(1, _SPREAD_S))
            self._burst_left = rng.choice((1, 1, 1, 2, 3, 5, 8, 20, 50))
        self._burst_left -= 1
        return self._burst_at


def _commissioned(rng: random.Random) -> date:
    return date(1995, 1, 1) + timedelta(days=rng.randrange(0, (SEED_AS_OF.date() - date(1995, 1, 1)).days))


def _status(rng: random.Random) -> str:
    roll = rng.random()
    return "20" if roll < 0.96 else ("10" if roll < 0.98 else "30")


@dataclass
class _Substation:
    obj_id: str
    place: str
    voltage: str
    lon: float
    lat: float
    area: str
    units: int = 1


def _pick(rng: random.Random, shares: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([code for code, _ in shares], [share for _, share in shares])[0]


@dataclass
class _Feeder:
    obj_id: str
    substation: _Substation
    tie_switches: int
    area: str


class _Generator:
    """Rows in insertion order; one random stream, so the same seed and sizes give the same rows."""

    def __init__(self, seed: int, substation_count: int, feeder_count: int, transformer_count: int) -> None:
        self.rng = random.Random(seed)
        self.bays_rng = random.Random(f"{seed}:spare-bays")
        self.times = _Times(self.rng)
        self.substations: list[_Substation] = []
        self.feeders: list[_Feeder] = []
        self.sizes = (substation_count, feeder_count, transformer_count)

    def substation_rows(self) -> list[dict[str, Any]]:
        rng = self.rng
        rows = []
        for n in range(1, self.sizes[0] + 1):
            roll = rng.random()
            voltage = "33" if roll < 0.08 else ("32" if roll < 0.68 else "25")
            cycle, index = divmod(n - 1, len(_PLACES))
            place = _PLACES[index] + (str(cycle + 1) if cycle else "")
            kv = {"33": 220, "32": 110, "25": 35}[voltage]
            area = _pick(rng, _AREA_BY_VOLTAGE.get(voltage, _RURAL_AREAS))
            sub = _Substation(
                substation_id(n),
                place,
                voltage,
                round(rng.uniform(*_LON), 6),
                round(rng.uniform(*_LAT), 6),
                area,
            )
            self.substations.append(sub)
            rows.append(
                {
                    "OBJ_ID": sub.obj_id,
                    "BDZMC": f"{kv}kV{place}变",
                    "DYDJ": voltage,
                    "YWDW": "国网南阳供电公司变电运维中心",
                    "GDQY": area,
                    "BYJGS": self.bays_rng.choice(_SPARE_BAYS[voltage]),
                    "YXZT": "20",
                    "TYRQ": _commissioned(rng),
                    "GXSJ": self.times.next(),
                }
            )
        return rows

    def main_transformer_rows(self) -> list[dict[str, Any]]:
        rng = self.rng
        rows = []
        n = 0
        for sub in self.substations:
            sub.units = rng.choice(_UNITS[sub.area])
            for unit in range(1, sub.units + 1):
                n += 1
                rows.append(
                    {
                        "OBJ_ID": f"ZB{n:06d}",
                        "SSDZ": sub.obj_id,
                        "SBMC": f"{sub.place}变{unit}号主变",
                        "EDRL": rng.choice(_MAIN_MVA[sub.voltage]),
                        "EDDY": sub.voltage,
                        "YXZT": "20",
                        "TYRQ": _commissioned(rng),
                        "GXSJ": self.times.next(),
                    }
                )
        return rows

    def feeder_rows(self) -> list[dict[str, Any]]:
        rng = self.rng
        sources = [s for s in self.substations if s.voltage != "33"] or self.substations
        weights = [3 if s.voltage == "32" else 1 for s in sources]
        per_substation: dict[str, int] = {}
        rows = []
        for n in range(1, self.sizes[1] + 1):
            sub = rng.choices(sources, weights)[0] if sources else None
            if sub is None:
                raise ConfigError("feeders need at least one substation")
            index = per_substation[sub.obj_id] = per_substation.get(sub.obj_id, 0) + 1
            area = _NEXT_AREA_OUT[sub.area] if rng.random() < 0.2 else sub.area
            feeder = _Feeder(feeder_id(n), sub, rng.choice(_TIES[area]), area)
            self.feeders.append(feeder)
            rows.append(
                {
                    "OBJ_ID": feeder.obj_id,
                    "XLMC": f"10kV{sub.place}{index}线",
                    "QSDZ": sub.obj_id,
                    "DYDJ": "22",
                    "YXDL": rng.choice((400, 485, 485, 600)),
                    "LLKGS": feeder.tie_switches,
                    "GDQY": area,
                    "SSMX": _SECTIONS[(index - 1) % min(sub.units, len(_SECTIONS))],
                    "YXZT": _status(rng),
                    "TYRQ": _commissioned(rng),
                    "GXSJ": self.times.next(),
                }
            )
        return rows

    def transformer_rows(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        if not self.feeders and self.sizes[2]:
            raise ConfigError("distribution transformers need at least one feeder")
        for n in range(1, self.sizes[2] + 1):
            feeder = rng.choice(self.feeders)
            public = rng.random() < 0.7
            kva = rng.choice(_PUBLIC_KVA if public else _DEDICATED_KVA)
            name = (
                f"{rng.choice(_ROADS)}{rng.randrange(1, 300)}号公变"
                if public
                else f"南阳{rng.choice(_PLACES)}{rng.choice(_COMPANIES)}有限公司专变"
            )
            yield {
                "OBJ_ID": transformer_id(n),
                "SBMC": name,
                "XH": transformer_model(kva, rng),
                "SSDKX": feeder.obj_id,
                "SSDZ": feeder.substation.obj_id,
                "EDRL": kva,
                "DYDJ": "22",
                "SYXZ": "01" if public else "02",
                "YXTQBH": f"TG{rng.randrange(10**7):07d}" if public else None,
                "YXZT": _status(rng),
                "TYRQ": _commissioned(rng),
                "GXSJ": self.times.next(),
                # Not a column: where the GIS row goes, if the transformer has one.
                "_AT": self.near(feeder) if rng.random() < 0.99 else None,
            }

    def switch_rows(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        n = 0
        for feeder in self.feeders:
            roles = ["01"] + ["02"] * feeder.tie_switches
            for role in roles:
                n += 1
                yield {
                    "OBJ_ID": f"KG{n:07d}",
                    "SBMC": f"{feeder.substation.place}{'联络' if role == '02' else '分段'}开关{n}",
                    "SSDKX": feeder.obj_id,
                    "KGXZ": role,
                    "YXZT": "20",
                    "TYRQ": _commissioned(rng),
                    "GXSJ": self.times.next(),
                    "_AT": self.near(feeder),
                }

    def near(self, feeder: _Feeder) -> tuple[float, float]:
        """A point along a feeder: within about 2 km of its substation in A and B areas, 3 km in C and
        8 km in D and E, so that most feeders keep their class's supply radius (3, 5, 15 km)."""
        spread = _SPREAD_DEG[feeder.area]
        sub = feeder.substation
        return (
            round(sub.lon + self.rng.uniform(-spread, spread), 6),
            round(sub.lat + self.rng.uniform(-spread, spread), 6),
        )

    def gis_row(self, obj_id: str, device_type: str, at: tuple[float, float]) -> dict[str, Any]:
        return {
            "SBID": obj_id,
            "SBLX": device_type,
            "JD": at[0],
            "WD": at[1],
            "GXSJ": self.times.next(),
        }


def _insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), _CHUNK):
        conn.execute(table.insert(), rows[start : start + _CHUNK])


def seed_database(
    engine: Engine,
    *,
    seed: int = 20261126,
    substation_count: int = 100,
    feeder_count: int = 2000,
    transformer_count: int = 50000,
    progress: Callable[[str], None] | None = None,
) -> SeedSummary:
    """Create the PMS tables if needed and fill them with a seeded grid; the tables must be empty."""
    if min(substation_count, feeder_count, transformer_count) < 0 or substation_count < 1:
        raise ConfigError(
            f"PMS seed sizes must be non-negative with at least one substation: {substation_count} "
            f"substations, {feeder_count} feeders, {transformer_count} transformers"
        )
    create_pms_schema(engine)
    gen = _Generator(seed, substation_count, feeder_count, transformer_count)
    say = progress or (lambda _text: None)
    with engine.begin() as conn:
        if conn.execute(sa.select(sa.func.count()).select_from(substations)).scalar_one():
            raise ConfigError("the PMS tables already hold data; reset them before seeding")
        subs = gen.substation_rows()
        _insert(conn, substations, subs)
        mains = gen.main_transformer_rows()
        _insert(conn, main_transformers, mains)
        lines = gen.feeder_rows()
        _insert(conn, feeders, lines)
        gis = [gen.gis_row(s.obj_id, DEVICE_TYPES["substation"], (s.lon, s.lat)) for s in gen.substations]
        say(f"seeded {len(subs)} substations, {len(mains)} main transformers, {len(lines)} feeders")
        written = 0
        chunk: list[dict[str, Any]] = []
        for row in gen.transformer_rows():
            at = row.pop("_AT")
            if at is not None:
                gis.append(gen.gis_row(row["OBJ_ID"], DEVICE_TYPES["transformer"], at))
            chunk.append(row)
            if len(chunk) == _CHUNK:
                _insert(conn, transformers, chunk)
                written += len(chunk)
                chunk = []
                say(f"seeded {written}/{transformer_count} distribution transformers")
        _insert(conn, transformers, chunk)
        written += len(chunk)
        switch_rows = []
        for row in gen.switch_rows():
            gis.append(gen.gis_row(row["OBJ_ID"], DEVICE_TYPES["switch"], row.pop("_AT")))
            switch_rows.append(row)
        _insert(conn, switches, switch_rows)
        _insert(conn, coordinates, gis)
    say(f"seeded {written} distribution transformers, {len(switch_rows)} switches, {len(gis)} coordinates")
    return SeedSummary(
        substations=len(subs),
        main_transformers=len(mains),
        feeders=len(lines),
        transformers=written,
        switches=len(switch_rows),
        coordinates=len(gis),
    )
