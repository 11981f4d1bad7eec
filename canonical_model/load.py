"""Measured load (负荷): 96-point daily profiles and point telemetry in kW, and daily power-factor curves,
with the source's quality codes.

Quality codes follow the IEC 60870-5-104 quality descriptor that dispatch front ends (D5000) keep with
every telemetry value: a bit mask where 0 means good and any set bit means the value must not be trusted
(0x01 overflow, 0x10 blocked, 0x20 substituted, 0x40 not topical, 0x80 invalid). The hub keeps the code as
the source gave it and never uses a flagged or missing value as a good one: a point is good only when it
has a value and its code is 0, or the source gives no codes at all (metering curves carry none).

A value flagged invalid (0x80) is no measurement at all (producers write 0, a spike or the last value
there), so it is kept as missing, load_kw None beside its code: no reader can take it for a measured 0.
Values with other flags (stale, substituted) keep their number for display and are still not good.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import TypeVar

from pydantic import AwareDatetime, Field, ValidationInfo, field_validator

from canonical_model.common import CanonicalModel, SourceRef

POINTS_PER_DAY = 96
# The quality bit (IEC 60870-5-104 IV) that marks a value invalid: the value is stored as missing.
INVALID_QUALITY = 0x80


def flags_invalid(quality: int | None) -> bool:
    """Whether a quality code marks its value invalid."""
    return quality is not None and bool(quality & INVALID_QUALITY)


_Value = TypeVar("_Value")


def _missing_when_invalid(value: _Value, info: ValidationInfo) -> _Value | None:
    # quality is declared before the value, so it is validated first (absent here when it failed).
    return None if flags_invalid(info.data.get("quality")) else value


class LoadSource(StrEnum):
    """Which system measured the load."""

    DISPATCH = "dispatch"
    METERING = "metering"


class LoadPhase(StrEnum):
    """Which active power a profile holds: the three-phase total or one phase (总/A相/B相/C相有功)."""

    TOTAL = "total"
    PHASE_A = "phase_a"
    PHASE_B = "phase_b"
    PHASE_C = "phase_c"


class LoadPoint(CanonicalModel):
    """One 15-minute point of a daily profile."""

    quality: int | None = Field(
        default=None,
        ge=0,
        description="quality code as the source gave it (质量码); 0 = good, any set bit = not trusted; "
        "None when the source gives no codes",
    )
    load_kw: float | None = Field(
        default=None,
        description="active power over the interval, kW (有功功率); None when missing or flagged invalid",
    )

    _invalid_is_missing = field_validator("load_kw")(_missing_when_invalid)

    @property
    def good(self) -> bool:
        """Whether the value may be used: present, and not flagged by the source."""
        return self.load_kw is not None and not self.quality


class LoadProfile(CanonicalModel):
    """A piece of equipment's active load over one day, 96 points at 15 minutes (日负荷曲线)."""

    equipment_id: str = Field(min_length=1, description="PMS equipment id: feeder or transformer (设备ID)")
    equipment_name: str | None = Field(default=None, description="equipment name in the source (设备名称)")
    data_date: date = Field(description="the day the points cover, Asia/Shanghai (数据日期)")
    phase: LoadPhase = Field(default=LoadPhase.TOTAL, description="total or per-phase active power")
    source: LoadSource = Field(description="the measuring system: dispatch automation or metering")
    points: tuple[LoadPoint, ...] = Field(
        min_length=POINTS_PER_DAY,
        max_length=POINTS_PER_DAY,
        description="points[n] covers minutes 15n to 15(n+1) of the day (P1 ... P96)",
    )
    source_refs: tuple[SourceRef, ...] = Field(default=(), description="legacy records this came from")

    @property
    def good_points(self) -> int:
        """How many points may be used."""
        return sum(1 for point in self.points if point.good)

    @property
    def peak_kw(self) -> float | None:
        """The highest good point, or None when no point is good; flagged values never count."""
        point = self.peak_point
        return None if point is None else self.points[point].load_kw

    @property
    def peak_point(self) -> int | None:
        """The index of the highest good point (the first of equal ones), or None when no point is good."""
        good = [
            (point.load_kw, -n)
            for n, point in enumerate(self.points)
            if point.good and point.load_kw is not None
        ]
        # The highest load, and of equal ones the lowest index (the largest -n).
        return -max(good)[1] if good else None


class PowerFactorPoint(CanonicalModel):
    """The power factor at one 15-minute point of a day."""

    quality: int | None = Field(
        default=None,
        ge=0,
        description="quality code as the source gave it (质量码); 0 = good, any set bit = not trusted; "
        "None when the source gives no codes",
    )
    power_factor: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="power factor cos φ, 0 < value <= 1 (功率因数); None when missing or flagged invalid",
    )

    # Before the range check: a value flagged invalid is no measurement (a 0 or a spike), and refusing it
    # would park the whole day's curve for one point its source already disowned.
    _invalid_is_missing = field_validator("power_factor", mode="before")(_missing_when_invalid)

    @property
    def good(self) -> bool:
        """Whether the value may be used: present, and not flagged by the source."""
        return self.power_factor is not None and not self.quality


class PowerFactorProfile(CanonicalModel):
    """A piece of equipment's power factor over one day, 96 points at 15 minutes (功率因数曲线).

    Point n is read at the same 15 minutes as point n of the equipment's LoadProfile, so the factor at the
    load's peak is the point of the peak's index.
    """

    equipment_id: str = Field(min_length=1, description="PMS equipment id: feeder or transformer (设备ID)")
    equipment_name: str | None = Field(default=None, description="equipment name in the source (设备名称)")
    data_date: date = Field(description="the day the points cover, Asia/Shanghai (数据日期)")
    phase: LoadPhase = Field(default=LoadPhase.TOTAL, description="total or per-phase power factor")
    source: LoadSource = Field(description="the measuring system: dispatch automation or metering")
    points: tuple[PowerFactorPoint, ...] = Field(
        min_length=POINTS_PER_DAY,
        max_length=POINTS_PER_DAY,
        description="points[n] covers minutes 15n to 15(n+1) of the day (F1 ... F96)",
    )
    source_refs: tuple[SourceRef, ...] = Field(default=(), description="legacy records this came from")

    @property
    def good_points(self) -> int:
        """How many points may be used."""
        return sum(1 for point in self.points if point.good)

    @property
    def good_factors(self) -> tuple[float | None, ...]:
        """Each point's power factor where it may be used, None where not."""
        return tuple(point.power_factor if point.good else None for point in self.points)


class MeasuredQuantity(StrEnum):
    """What a telemetry point measures (量测类型)."""

    ACTIVE_POWER = "active_power"


class Measurement(CanonicalModel):
    """One telemetry value (遥测) of a piece of equipment at a moment."""

    measurement_id: str = Field(min_length=1, description="measurement point id (量测标识)")
    equipment_id: str = Field(min_length=1, description="PMS equipment id of the measured equipment")
    name: str | None = Field(default=None, description="measurement name in the source (量测名称)")
    quantity: MeasuredQuantity = Field(description="what is measured (量测类型)")
    measured_at: AwareDatetime = Field(description="time stamp of the value (时标)")
    quality: int | None = Field(
        default=None, ge=0, description="quality code as the source gave it (质量码); 0 = good"
    )
    load_kw: float | None = Field(
        default=None, description="active power, kW; None when missing or flagged invalid"
    )
    source_unit: str = Field(
        min_length=1, description="unit the source reported the value in (单位); load_kw is converted from it"
    )
    source_refs: tuple[SourceRef, ...] = Field(default=(), description="legacy records this came from")

    _invalid_is_missing = field_validator("load_kw")(_missing_when_invalid)

    @property
    def good(self) -> bool:
        """Whether the value may be used: present, and not flagged by the source."""
        return self.load_kw is not None and not self.quality
