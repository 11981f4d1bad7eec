"""Settings of the demand forecast and the study's analyses (forecast/demand.yaml), errors by file:line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from canonical_model.application import BusinessType
from forecast.config import MAX_HORIZON_MONTHS, Check, _levels, _whole, read_checked
from mappings.yamlfile import Diagnostics, key_line, plain

SETTINGS_FILE = "demand.yaml"


@dataclass(frozen=True)
class DemandSettings:
    """How applications are counted and forecast per month."""

    business_types: frozenset[BusinessType]
    max_months: int
    default_months: int
    min_months: int
    season_months: int
    interval_levels: tuple[int, ...]


@dataclass(frozen=True)
class LoadShareSettings:
    """The seasons compared to find a load type's component in a class's curves."""

    summer_months: frozenset[int]
    shoulder_months: frozenset[int]
    min_days: int
    concentration: float


@dataclass(frozen=True)
class EvGrowthSettings:
    """The years of EV-charging applications read and projected."""

    years: int
    projection_years: int
    interval_levels: tuple[int, ...]


@dataclass(frozen=True)
class DemandConfig:
    """The settings of forecast/demand.yaml; see the file for what each means."""

    demand: DemandSettings
    load_share: LoadShareSettings
    ev_growth: EvGrowthSettings


def _business_types(value: Any) -> str | None:
    known = [kind.value for kind in BusinessType]
    if not isinstance(value, list) or not value or any(kind not in known for kind in value):
        return f"must be a non-empty list of {known}, not {value!r}"
    return None


def _months(value: Any) -> str | None:
    if (
        not isinstance(value, list)
        or not value
        or any(
            isinstance(month, bool) or not isinstance(month, int) or not 1 <= month <= 12 for month in value
        )
        or len(set(value)) != len(value)
    ):
        return f"must be a list of distinct months from 1 to 12, not {value!r}"
    return None


def _fraction(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        return f"must be a number between 0 and 1, not {value!r}"
    return None


SPEC: Mapping[str, Mapping[str, Check]] = {
    "demand": {
        "business_types": _business_types,
        "max_months": _whole(1, MAX_HORIZON_MONTHS),
        "default_months": _whole(1, MAX_HORIZON_MONTHS),
        "min_months": _whole(4, 600),
        "season_months": _whole(2, 24),
        "interval_levels": _levels,
    },
    "load_share": {
        "summer_months": _months,
        "shoulder_months": _months,
        "min_days": _whole(1, 31),
        "concentration": _fraction,
    },
    # Four years at least: a trend in logs fitted to fewer has no residual degrees of freedom.
    "ev_growth": {"years": _whole(4, 50), "projection_years": _whole(1, 10), "interval_levels": _levels},
}


def read_demand_config(config_dir: Path, diag: Diagnostics) -> DemandConfig | None:
    """The settings under config_dir, or None after recording every problem in diag."""
    before = len(diag.errors)
    checked = read_checked(config_dir, SETTINGS_FILE, SPEC, diag)
    if checked is None:
        return None
    document, file = checked
    raw = plain(document)
    demand, share, ev = raw["demand"], raw["load_share"], raw["ev_growth"]
    if demand["default_months"] > demand["max_months"]:
        diag.error(
            f"demand.default_months {demand['default_months']} exceeds max_months {demand['max_months']}",
            file,
            key_line(document["demand"], "default_months"),
        )
    overlap = set(share["summer_months"]) & set(share["shoulder_months"])
    if overlap:
        diag.error(
            f"load_share.shoulder_months share {sorted(overlap)} with summer_months",
            file,
            key_line(document["load_share"], "shoulder_months"),
        )
    if len(diag.errors) > before:
        return None
    return DemandConfig(
        demand=DemandSettings(
            business_types=frozenset(BusinessType(kind) for kind in demand["business_types"]),
            max_months=demand["max_months"],
            default_months=demand["default_months"],
            min_months=demand["min_months"],
            season_months=demand["season_months"],
            interval_levels=tuple(sorted(demand["interval_levels"])),
        ),
        load_share=LoadShareSettings(
            summer_months=frozenset(share["summer_months"]),
            shoulder_months=frozenset(share["shoulder_months"]),
            min_days=share["min_days"],
            concentration=float(share["concentration"]),
        ),
        ev_growth=EvGrowthSettings(
            years=ev["years"],
            projection_years=ev["projection_years"],
            interval_levels=tuple(sorted(ev["interval_levels"])),
        ),
    )


def load_demand_config(config_dir: Path) -> DemandConfig:
    """The validated settings; raises ConfigError naming file and line when anything is wrong."""
    diag = Diagnostics(config_dir)
    config = read_demand_config(config_dir, diag)
    diag.raise_if_any()
    assert config is not None, "settings read without errors are always built"
    return config
