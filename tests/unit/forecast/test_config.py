"""forecast/forecast.yaml: the shipped settings, and errors naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from forecast.config import load_forecast_config
from forecast.trend import Trend
from ground.errors import ConfigError
from tests.unit.routes.config_copy import copy_config, replace
from yekuo.config import check_config

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "forecast" / "forecast.yaml"


def _with(tmp_path: Path, text: str) -> Path:
    (tmp_path / "forecast").mkdir()
    (tmp_path / "forecast" / "forecast.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_the_shipped_settings_load() -> None:
    config = load_forecast_config(ROOT)
    assert config.horizon_months == 36
    assert config.interval_levels == (80, 95)
    assert config.min_history_months == 24
    assert config.season_months == 12
    assert config.trend is Trend.AUTO
    assert config.undated_month == 1


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("horizon_months: 36", "horizon_months: 0", 4, "horizon_months must be a whole number from 1 to 120"),
        ("[80, 95]", "[80, 80]", 7, "interval_levels must be a list of distinct whole percentages"),
        ("min_months: 24", "min_months: two", 12, "history.min_months must be a whole number"),
        ("trend: auto", "trend: linear", 25, "model.trend must be one of ['auto', 'none', 'additive'"),
        ("undated_month: 1", "undated_month: 40", 30, "undated_month 40 lies beyond horizon_months 36"),
        ("  season_months: 12\n", "  season_months: 12\n  seasons: 2\n", 24, "unknown key 'model.seasons'"),
    ],
)
def test_a_broken_setting_is_named_with_file_and_line(
    tmp_path: Path, old: str, new: str, line: int, message: str
) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(ConfigError) as caught:
        load_forecast_config(_with(tmp_path, text.replace(old, new, 1)))
    assert str(caught.value).startswith(f"forecast/forecast.yaml:{line}: ")
    assert message in str(caught.value)


def test_a_missing_section_is_reported(tmp_path: Path) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    start = text.index("pipeline:")
    with pytest.raises(ConfigError, match="lacks 'pipeline'"):
        load_forecast_config(_with(tmp_path, text[:start]))


def test_check_config_reports_the_forecast_settings(tmp_path: Path) -> None:
    settings = copy_config(tmp_path) / "forecast" / "forecast.yaml"
    line = replace(settings, "max_stale_months: 3", "max_stale_months: -1")
    errors = check_config(tmp_path)
    assert [str(error) for error in errors] == [
        f"forecast/forecast.yaml:{line}: history.max_stale_months must be a whole number from 1 to 24, not -1"
    ]
