"""Forecaster settings (forecast/forecast.yaml): read with line numbers, every problem named by file:line."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecast.trend import Trend
from mappings.yamlfile import Diagnostics, is_map, key_line, line_of, plain, read_yaml

FORECAST_FOLDER = "forecast"
SETTINGS_FILE = "forecast.yaml"
MAX_HORIZON_MONTHS = 120


@dataclass(frozen=True)
class ForecastConfig:
    """The forecaster's settings; see forecast.yaml for what each means."""

    horizon_months: int
    interval_levels: tuple[int, ...]
    min_history_months: int
    min_days_per_month: int
    min_good_points: int
    max_stale_months: int
    season_months: int
    trend: Trend
    undated_month: int


Check = Callable[[Any], str | None]


def _whole(low: int, high: int) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return f"must be a whole number from {low} to {high}, not {value!r}"
        return None

    return check


def _levels(value: Any) -> str | None:
    if (
        not isinstance(value, list)
        or not value
        or any(
            isinstance(level, bool) or not isinstance(level, int) or not 0 < level < 100 for level in value
        )
        or len(set(value)) != len(value)
    ):
        return f"must be a list of distinct whole percentages between 0 and 100, not {value!r}"
    return None


def _trend(value: Any) -> str | None:
    known = [trend.value for trend in Trend]
    if value not in known:
        return f"must be one of {known}, not {value!r}"
    return None


SPEC: Mapping[str, Check | Mapping[str, Check]] = {
    "horizon_months": _whole(1, MAX_HORIZON_MONTHS),
    "interval_levels": _levels,
    "history": {
        "min_months": _whole(4, 600),
        "min_days_per_month": _whole(1, 28),
        "min_good_points": _whole(1, 96),
        "max_stale_months": _whole(1, 24),
    },
    "model": {"season_months": _whole(2, 24), "trend": _trend},
    "pipeline": {"undated_month": _whole(1, MAX_HORIZON_MONTHS)},
}


def _check(node: Any, spec: Mapping[str, Any], file: str, diag: Diagnostics, where: str) -> None:
    if not is_map(node):
        diag.error(f"{where or 'the file'} must be a map", file)
        return
    for key in node:
        name = f"{where}.{key}" if where else str(key)
        if key not in spec:
            diag.error(f"unknown key {name!r}; expected one of {sorted(spec)}", file, key_line(node, key))
            continue
        expected = spec[key]
        if isinstance(expected, Mapping):
            _check(node[key], expected, file, diag, name)
            continue
        problem = expected(plain(node[key]))
        if problem is not None:
            diag.error(f"{name} {problem}", file, key_line(node, key))
    for key in spec:
        if key not in node:
            diag.error(f"{where or 'the file'} lacks {key!r}", file, line_of(node))


def read_checked(
    config_dir: Path, name: str, spec: Mapping[str, Any], diag: Diagnostics
) -> tuple[Any, str] | None:
    """The YAML file forecast/<name> under config_dir and its display name, checked against spec; None
    after recording every problem in diag."""
    path = config_dir / FORECAST_FOLDER / name
    file = diag.display(path)
    before = len(diag.errors)
    document = read_yaml(path, file, diag)
    if document is None:
        return None
    _check(document, spec, file, diag, "")
    if len(diag.errors) > before:
        return None
    return document, file


def read_forecast_config(config_dir: Path, diag: Diagnostics) -> ForecastConfig | None:
    """The settings under config_dir, or None after recording every problem in diag."""
    checked = read_checked(config_dir, SETTINGS_FILE, SPEC, diag)
    if checked is None:
        return None
    document, file = checked
    raw = plain(document)
    config = ForecastConfig(
        horizon_months=raw["horizon_months"],
        interval_levels=tuple(sorted(raw["interval_levels"])),
        min_history_months=raw["history"]["min_months"],
        min_days_per_month=raw["history"]["min_days_per_month"],
        min_good_points=raw["history"]["min_good_points"],
        max_stale_months=raw["history"]["max_stale_months"],
        season_months=raw["model"]["season_months"],
        trend=Trend(raw["model"]["trend"]),
        undated_month=raw["pipeline"]["undated_month"],
    )
    if config.undated_month > config.horizon_months:
        diag.error(
            f"pipeline.undated_month {config.undated_month} lies beyond horizon_months "
            f"{config.horizon_months}",
            file,
            key_line(document["pipeline"], "undated_month"),
        )
        return None
    return config


def load_forecast_config(config_dir: Path) -> ForecastConfig:
    """The validated settings; raises ConfigError naming file and line when anything is wrong."""
    diag = Diagnostics(config_dir)
    config = read_forecast_config(config_dir, diag)
    diag.raise_if_any()
    assert config is not None, "settings read without errors are always built"
    return config
