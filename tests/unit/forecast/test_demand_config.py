"""forecast/demand.yaml: the shipped settings, and errors naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from canonical_model.application import BusinessType
from forecast.demand_config import load_demand_config
from ground.errors import ConfigError
from ground.settings import PROJECT_ROOT
from tests.unit.routes.config_copy import copy_config, replace


def test_the_shipped_settings_load() -> None:
    config = load_demand_config(PROJECT_ROOT)
    assert config.demand.business_types == {BusinessType.NEW_CONNECTION, BusinessType.CAPACITY_INCREASE}
    assert (config.demand.default_months, config.demand.max_months, config.demand.min_months) == (12, 36, 24)
    assert config.load_share.summer_months == {7, 8}
    assert config.load_share.shoulder_months == {4, 11}
    assert (config.ev_growth.years, config.ev_growth.projection_years) == (5, 3)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("[new_connection, capacity_increase]", "[new_connection, rebuild]", "demand.business_types must be"),
        ("default_months: 12", "default_months: 40", "demand.default_months 40 exceeds max_months 36"),
        ("summer_months: [7, 8]", "summer_months: [7, 13]", "load_share.summer_months must be a list of"),
        ("shoulder_months: [4, 11]", "shoulder_months: [4, 8]", "load_share.shoulder_months share [8]"),
        ("concentration: 0.5", "concentration: 1.5", "load_share.concentration must be a number between"),
        ("  years: 5", "  years: 3", "ev_growth.years must be a whole number from 4 to 50"),
    ],
)
def test_a_bad_setting_is_named_with_its_file_and_line(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    root = copy_config(tmp_path)
    line = replace(root / "forecast" / "demand.yaml", old, new)
    with pytest.raises(ConfigError) as caught:
        load_demand_config(root)
    assert f"forecast/demand.yaml:{line}: {message}" in str(caught.value)
