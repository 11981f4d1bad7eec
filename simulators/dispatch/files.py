"""The files the dispatch simulator writes, good and faulty, and what the hub should make of each.

Good files (each written under <name>.part and renamed when complete):
- ``dispatch_loadcurve_<day>.cime``: CIM/E, GBK declared (Code=GBK), one <LoadCurve::南阳> block with a row
  per feeder: mRID (PMS id), name, date, P1 ... P96 in MW and quality codes Q1 ... Q96.
- ``dispatch_analog_<day>T2015.cime``: CIM/E, GBK declared, one <Analog::南阳> block with each feeder's
  active power (MW) at 20:15, its quality code and the PMS id of the feeder (equipment).
- ``metering_power_curve_<day>.csv``: UTF-8 CSV laid out like E_MP_POWER_CURVE (ID = the transformer's PMS
  id, DATA_DATE, DATA_TYPE 1 = total active power, P1 ... P96 in kW); a missing point is an empty cell.
- ``metering_factor_curve_<day>.csv``: UTF-8 CSV laid out like E_MP_FACTOR_CURVE (ID, DATA_DATE, DATA_TYPE
  1 = total, F1 ... F96 the power factor, see curves.py) of the transformers whose meters record it
  (records_power_factor); empty where the power curve is.

Quality codes (CIM/E only) follow the IEC 60870-5-104 quality descriptor D5000 keeps: 0 good; 0x80 (128)
invalid, with the value missing or a spike; 0x40 (64) not topical, the previous value repeated; 0x20 (32)
substituted by an operator. About 1% of points are flagged; the hub must never count them as good.
"""

from __future__ import annotations

import io
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.dispatch.cime import Block, Header, iter_cime_bytes, iter_cime_lines
from adapters.dispatch.curves_csv import POINT_COLUMNS, QUALITY_COLUMNS, Curve, CurveKind, iter_curve_lines
from simulators.dispatch.curves import POINTS, daily_curve, power_factor_curve, utilisation
from simulators.dispatch.equipment import Equipment, EquipmentKind, LoadClass

REGION = "南阳"
GOOD = 0
NOT_TOPICAL = 0x40
SUBSTITUTED = 0x20
INVALID = 0x80
SNAPSHOT_POINT = 81
LOAD_CURVE_COLUMNS = ("Num", "mRID", "name", "date", *POINT_COLUMNS, *QUALITY_COLUMNS)
LOAD_CURVE_LABELS = (
    "序号",
    "标识",
    "名称",
    "日期",
    *(f"{(n * 15) // 60:02d}:{(n * 15) % 60:02d}" for n in range(1, POINTS + 1)),
    *(f"质量码{n}" for n in range(1, POINTS + 1)),
)
ANALOG_COLUMNS = ("Num", "mRID", "name", "equipment", "measurementType", "value", "unit", "quality", "time")
ANALOG_LABELS = ("序号", "标识", "名称", "所属设备", "量测类型", "值", "单位", "质量码", "时标")


@dataclass(frozen=True)
class WrittenFile:
    """A file the simulator wrote and what the hub should do with it.

    rows: data rows in the file; events and invalid: how many of them the hub should publish and park;
    outcome: published, duplicate or error (nothing of the file published).
    """

    name: str
    kind: str
    rows: int
    events: int
    invalid: int
    outcome: str
    fault: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The manifest line of the file."""
        return asdict(self)


@dataclass(frozen=True)
class Reading:
    """One equipment's day: 96 values in kW (None where missing) and their quality codes."""

    equipment: Equipment
    day: date
    load_kw: tuple[float | None, ...]
    quality: tuple[int, ...]


def _utilisation(item: Equipment) -> float:
    """A spring weekday's peak as a share of the rating, fixed per equipment (curves.utilisation)."""
    return utilisation(item.equipment_id, main_transformer=item.kind is EquipmentKind.MAIN_TRANSFORMER)


def readings(
    equipment: Sequence[Equipment], day: date, rng: random.Random, *, flag_rate: float = 0.01
) -> list[Reading]:
    """Each equipment's measured day, with a seeded ~flag_rate of points flagged bad."""
    out = []
    for item in equipment:
        curve = daily_curve(item.load_class, day, item.rated_kw, rng, utilisation=_utilisation(item))
        values: list[float | None] = list(curve)
        codes = [GOOD] * POINTS
        for n in range(POINTS):
            roll = rng.random()
            if roll >= flag_rate:
                continue
            share = roll / flag_rate
            if share < 0.4:
                values[n], codes[n] = None, INVALID
            elif share < 0.6:
                value = values[n]
                values[n], codes[n] = (value or 0.0) * rng.uniform(3.0, 10.0), INVALID
            elif share < 0.9 and n > 0:
                values[n], codes[n] = values[n - 1], NOT_TOPICAL
            else:
                codes[n] = SUBSTITUTED
        out.append(Reading(item, day, tuple(values), tuple(codes)))
    return out


def _header(moment: datetime, code: str | None, kind: str) -> Header:
    attributes = {"System": "D5000", "Version": "1.0"}
    if code is not None:
        attributes["Code"] = code
    attributes.update({"Data": "1.0", "Type": kind, "Time": moment.strftime("%Y-%m-%d %H:%M:%S")})
    return Header(attributes)


def _mw(value: float | None) -> str | None:
    return None if value is None else f"{value / 1000:.4f}"


def load_curve_rows(day_readings: Iterable[Reading]) -> Iterable[dict[str, str | None]]:
    """The LoadCurve rows of some readings."""
    for number, reading in enumerate(day_readings, start=1):
        row: dict[str, str | None] = {
            "Num": str(number),
            "mRID": reading.equipment.equipment_id,
            "name": reading.equipment.name,
            "date": reading.day.isoformat(),
        }
        row.update(zip(POINT_COLUMNS, (_mw(value) for value in reading.load_kw), strict=True))
        row.update(zip(QUALITY_COLUMNS, (str(code) for code in reading.quality), strict=True))
        yield row


def load_curve_lines(day_readings: Sequence[Reading], *, declared: str | None = "GBK") -> Iterator[str]:
    """The lines of a LoadCurve CIM/E file of one day's readings (at least one), declaring `declared`.

    declared None writes a header without Code=, as producers that leave the encoding to be guessed do.
    """
    day = day_readings[0].day
    header = _header(datetime.combine(day, time(23, 59)), declared, "LoadCurve")
    block = Block("LoadCurve", REGION, LOAD_CURVE_COLUMNS, load_curve_rows(day_readings), LOAD_CURVE_LABELS)
    return iter_cime_lines(header, [block])


def load_curve_bytes(
    day_readings: Sequence[Reading], *, declared: str | None = "GBK", encoding: str = "gbk"
) -> bytes:
    """A LoadCurve CIM/E file declaring `declared`, encoded as `encoding` (they differ in wrong_encoding)."""
    return "".join(load_curve_lines(day_readings, declared=declared)).encode(encoding)


def analog_bytes(day_readings: Sequence[Reading]) -> bytes:
    """An Analog CIM/E snapshot (GBK) of one day's readings (at least one), each one's value at 20:15."""
    day = day_readings[0].day
    moment = datetime.combine(day, time(20, 15))
    stamp = moment.strftime("%Y-%m-%d %H:%M:%S")

    def rows() -> Iterable[dict[str, str | None]]:
        for number, reading in enumerate(day_readings, start=1):
            yield {
                "Num": str(number),
                "mRID": f"{reading.equipment.equipment_id}-P",
                "name": f"{reading.equipment.name}有功",
                "equipment": reading.equipment.equipment_id,
                "measurementType": "P",
                "value": _mw(reading.load_kw[SNAPSHOT_POINT - 1]),
                "unit": "MW",
                "quality": str(reading.quality[SNAPSHOT_POINT - 1]),
                "time": stamp,
            }

    block = Block("Analog", REGION, ANALOG_COLUMNS, rows(), ANALOG_LABELS)
    return b"".join(iter_cime_bytes(_header(moment, "GBK", "Analog"), [block]))


def metered(reading: Reading) -> tuple[float | None, ...]:
    """The loads the metering platform took: None where the point is missing or flagged invalid.

    The platform has no quality codes: a reading it could not take is an empty cell, not a spike nobody
    downstream could tell from a load.
    """
    return tuple(
        None if value is None or code == INVALID else value
        for value, code in zip(reading.load_kw, reading.quality, strict=True)
    )


def power_curve_lines(day_readings: Iterable[Reading]) -> Iterable[str]:
    """The curve CSV of some readings, header first, points in kW."""
    curves = (
        Curve(
            id=reading.equipment.equipment_id,
            data_date=reading.day,
            points=tuple(None if value is None else Decimal(f"{value:.3f}") for value in metered(reading)),
            data_type="1",
        )
        for reading in day_readings
    )
    return iter_curve_lines(curves)


def power_curve_bytes(day_readings: Iterable[Reading]) -> bytes:
    """The curve CSV of some readings, UTF-8."""
    return "".join(power_curve_lines(day_readings)).encode("utf-8")


def records_power_factor(item: Equipment, seed: int, *, public_share: float = 0.5) -> bool:
    """Whether the transformer's meter records its power factor, fixed per seed and equipment.

    A dedicated transformer's customer is billed with the power-factor adjustment (力调电费), so its meter
    always records it; of the public ones (residential) a seeded share does.
    """
    if item.load_class is not LoadClass.RESIDENTIAL:
        return True
    return random.Random(f"{seed}/{item.equipment_id}").random() < public_share


def factor_curve_lines(day_readings: Iterable[Reading], rng: random.Random) -> Iterable[str]:
    """The power-factor curve CSV of some readings, header first, factors to three decimals."""
    curves = (
        Curve(
            id=reading.equipment.equipment_id,
            data_date=reading.day,
            points=tuple(
                None if factor is None else Decimal(f"{factor:.3f}")
                for factor in power_factor_curve(reading.equipment.load_class, metered(reading), rng)
            ),
            data_type="1",
            kind=CurveKind.FACTOR,
        )
        for reading in day_readings
    )
    return iter_curve_lines(curves, kind=CurveKind.FACTOR)


def factor_curve_bytes(day_readings: Iterable[Reading], rng: random.Random) -> bytes:
    """The power-factor curve CSV of some readings, UTF-8."""
    return "".join(factor_curve_lines(day_readings, rng)).encode("utf-8")


def write_atomically(path: Path, data: bytes) -> None:
    """Write under <name>.part, then rename: the intake never sees the file half written."""
    temporary = path.with_name(path.name + ".part")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def write_slowly(path: Path, data: bytes, *, pause: Callable[[], None], parts: int = 2) -> None:
    """Write straight under the final name in parts, pausing between them, as a careless producer does."""
    size = len(data)
    with path.open("wb") as file:
        for index in range(parts):
            file.write(data[index * size // parts : (index + 1) * size // parts])
            file.flush()
            os.fsync(file.fileno())
            if index < parts - 1:
                pause()


def csv_row_boundaries(data: bytes) -> list[int]:
    """Offsets where each line of a CSV starts (the header's included), plus its end."""
    offsets = [0]
    stream = io.BytesIO(data)
    for line in stream:
        offsets.append(offsets[-1] + len(line))
    return offsets
