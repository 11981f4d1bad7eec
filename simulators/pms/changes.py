"""Seeded live changes to a PMS database, the way its users and batch jobs make them.

Each change touches distribution transformers (T_SB_ZNYC_PDBYQ) or their GIS coordinates (T_TX_SBZB) and
stamps GXSJ with the local (Asia/Shanghai) time of the change, in whole seconds, so changes in the same
second share a timestamp:
    insert        a new transformer, with its coordinates
    rating        capacity change (增容): EDRL and XH
    decommission  YXZT 30 (退役); the row stays
    delete        the row and its coordinates are deleted outright, leaving no trace
    move          the coordinates change; the transformer row does not (only T_TX_SBZB.GXSJ moves)
    bulk          a feeder cut-over (割接): many transformers move to another feeder in one statement,
                  all with the same GXSJ
A generator never touches a row twice, so every change is one row version that a sync must deliver
exactly once.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ground import clock
from ground.errors import ConfigError
from simulators.pms.schema import DEVICE_TYPES, coordinates, feeders, transformers
from simulators.pms.seed import transformer_id, transformer_model

LOCAL_ZONE = ZoneInfo("Asia/Shanghai")
_RATINGS = (100, 200, 250, 315, 400, 500, 630, 800, 1000, 1250, 1600)


class ChangeKind(StrEnum):
    """What a change did."""

    INSERT = "insert"
    RATING = "rating"
    DECOMMISSION = "decommission"
    DELETE = "delete"
    MOVE = "move"
    BULK = "bulk"


# Relative frequency of each kind in apply().
DEFAULT_MIX: dict[ChangeKind, int] = {
    ChangeKind.INSERT: 15,
    ChangeKind.RATING: 25,
    ChangeKind.DECOMMISSION: 10,
    ChangeKind.DELETE: 10,
    ChangeKind.MOVE: 10,
    ChangeKind.BULK: 30,
}


@dataclass(frozen=True)
class Change:
    """One committed change: its kind, the transformers it touched and the GXSJ it wrote."""

    kind: ChangeKind
    keys: tuple[str, ...]
    at: datetime


def local_now() -> datetime:
    """The current Asia/Shanghai wall time, naive and in whole seconds, as PMS writes GXSJ."""
    return clock.now().astimezone(LOCAL_ZONE).replace(tzinfo=None, microsecond=0)


class ChangeGenerator:
    """Applies seeded random changes to the distribution transformers of a PMS database."""

    def __init__(
        self,
        engine: Engine,
        *,
        seed: int = 1,
        clock: Callable[[], datetime] = local_now,
        mix: dict[ChangeKind, int] | None = None,
        max_burst: int = 60,
    ) -> None:
        self._engine = engine
        self._rng = random.Random(seed)
        self._clock = clock
        self._mix = dict(mix or DEFAULT_MIX)
        self._max_burst = max_burst
        with engine.connect() as conn:
            keys = conn.execute(sa.select(transformers.c.OBJ_ID).order_by(transformers.c.OBJ_ID)).scalars()
            self._untouched = list(keys)
            self._feeders = list(conn.execute(sa.select(feeders.c.OBJ_ID, feeders.c.QSDZ)).tuples())
        if not self._untouched or not self._feeders:
            raise ConfigError("the PMS database has no transformers or feeders to change; seed it first")
        self._next_number = max(int(key[2:]) for key in self._untouched if key[2:].isdigit()) + 1
        self.changes: list[Change] = []

    @property
    def untouched(self) -> int:
        """How many seeded transformers no change has touched yet."""
        return len(self._untouched)

    def apply(self, rows: int) -> list[Change]:
        """Change `rows` transformer rows (a bulk change counts every row it moves); return the changes."""
        done: list[Change] = []
        left = rows
        kinds = list(self._mix)
        weights = [self._mix[kind] for kind in kinds]
        while left > 0:
            kind = self._rng.choices(kinds, weights)[0]
            if kind is ChangeKind.BULK:
                size = min(left, self._rng.randint(2, self._max_burst))
                change = self.bulk(size) if size >= 2 else self.rating()
            else:
                change = self._single(kind)
            done.append(change)
            left -= len(change.keys)
        return done

    def _single(self, kind: ChangeKind) -> Change:
        if kind is ChangeKind.INSERT:
            return self.insert()
        if kind is ChangeKind.RATING:
            return self.rating()
        if kind is ChangeKind.DECOMMISSION:
            return self.decommission()
        if kind is ChangeKind.DELETE:
            return self.delete()
        return self.move()

    def _take(self, count: int = 1) -> list[str]:
        if len(self._untouched) < count:
            raise ConfigError(f"only {len(self._untouched)} untouched transformers are left, {count} needed")
        picked = []
        for _ in range(count):
            index = self._rng.randrange(len(self._untouched))
            self._untouched[index], self._untouched[-1] = self._untouched[-1], self._untouched[index]
            picked.append(self._untouched.pop())
        return picked

    def _record(self, kind: ChangeKind, keys: list[str], at: datetime) -> Change:
        change = Change(kind, tuple(keys), at)
        self.changes.append(change)
        return change

    def insert(self) -> Change:
        """A new public transformer on a random feeder, with coordinates."""
        rng = self._rng
        key = transformer_id(self._next_number)
        self._next_number += 1
        feeder, substation = rng.choice(self._feeders)
        kva = rng.choice((200, 315, 400, 630))
        at = self._clock()
        with self._engine.begin() as conn:
            conn.execute(
                transformers.insert().values(
                    OBJ_ID=key,
                    SBMC=f"新建{rng.randrange(1, 999)}号公变",
                    XH=transformer_model(kva, rng),
                    SSDKX=feeder,
                    SSDZ=substation,
                    EDRL=kva,
                    DYDJ="22",
                    SYXZ="01",
                    YXTQBH=f"TG{rng.randrange(10**7):07d}",
                    YXZT="10",
                    TYRQ=None,
                    GXSJ=at,
                )
            )
            conn.execute(
                coordinates.insert().values(
                    SBID=key,
                    SBLX=DEVICE_TYPES["transformer"],
                    JD=round(rng.uniform(112.4, 112.7), 6),
                    WD=round(rng.uniform(32.9, 33.1), 6),
                    GXSJ=at,
                )
            )
        return self._record(ChangeKind.INSERT, [key], at)

    def rating(self) -> Change:
        """A capacity change of one transformer."""
        (key,) = self._take()
        kva = self._rng.choice(_RATINGS)
        at = self._clock()
        with self._engine.begin() as conn:
            conn.execute(
                transformers.update()
                .where(transformers.c["OBJ_ID"] == key)
                .values(EDRL=kva, XH=transformer_model(kva, self._rng), GXSJ=at)
            )
        return self._record(ChangeKind.RATING, [key], at)

    def decommission(self) -> Change:
        """One transformer taken out of service for good (its row stays, status 30)."""
        (key,) = self._take()
        at = self._clock()
        with self._engine.begin() as conn:
            conn.execute(
                transformers.update().where(transformers.c["OBJ_ID"] == key).values(YXZT="30", GXSJ=at)
            )
        return self._record(ChangeKind.DECOMMISSION, [key], at)

    def delete(self) -> Change:
        """One transformer and its coordinates deleted outright."""
        (key,) = self._take()
        at = self._clock()
        with self._engine.begin() as conn:
            conn.execute(coordinates.delete().where(coordinates.c["SBID"] == key))
            conn.execute(transformers.delete().where(transformers.c["OBJ_ID"] == key))
        return self._record(ChangeKind.DELETE, [key], at)

    def move(self) -> Change:
        """New coordinates for one transformer; only the GIS row changes."""
        (key,) = self._take()
        rng = self._rng
        at = self._clock()
        values = {
            "JD": round(rng.uniform(112.4, 112.7), 6),
            "WD": round(rng.uniform(32.9, 33.1), 6),
            "GXSJ": at,
        }
        with self._engine.begin() as conn:
            updated = conn.execute(coordinates.update().where(coordinates.c["SBID"] == key).values(**values))
            if updated.rowcount == 0:
                gis_type = DEVICE_TYPES["transformer"]
                conn.execute(coordinates.insert().values(SBID=key, SBLX=gis_type, **values))
        return self._record(ChangeKind.MOVE, [key], at)

    def bulk(self, size: int) -> Change:
        """A feeder cut-over: `size` transformers move to one feeder in one statement with one GXSJ."""
        keys = self._take(size)
        feeder, substation = self._rng.choice(self._feeders)
        at = self._clock()
        with self._engine.begin() as conn:
            conn.execute(
                transformers.update()
                .where(transformers.c.OBJ_ID.in_(keys))
                .values(SSDKX=feeder, SSDZ=substation, GXSJ=at)
            )
        return self._record(ChangeKind.BULK, keys, at)
