"""feasibility/rules.yaml: defaults, province overrides, and errors naming file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from feasibility.config import load_feasibility_config, read_feasibility_config
from mappings.yamlfile import Diagnostics
from tests.unit.feasibility.builders import ROOT
from yekuo.errors import ConfigError


def _copy(tmp_path: Path, text: str | None = None) -> Path:
    (tmp_path / "feasibility").mkdir()
    target = tmp_path / "feasibility" / "rules.yaml"
    if text is None:
        shutil.copy(ROOT / "feasibility" / "rules.yaml", target)
    else:
        target.write_text(text, encoding="utf-8")
    return tmp_path


def test_the_shipped_rules_hold_the_facts_defaults() -> None:
    config = load_feasibility_config(ROOT)
    rules = config.default
    assert rules.radii_m == (200, 500, 800, 1000, 1500, 2000)
    assert rules.supply_radius_m["urban"] == {"lv": 250, "mv": 3000, "hv": 10000}
    assert [(band.voltage_kv, band.max_kva) for band in rules.bands] == [
        (10, 10000),
        (20, 20000),
        (35, 40000),
        (110, 100000),
    ]
    assert rules.release_stages == {"energisation", "archived"}


def test_a_province_overrides_only_what_it_names() -> None:
    config = load_feasibility_config(ROOT)
    henan = config.rules_for(org_no="41101")
    assert henan.province == "henan"
    assert henan.single_phase_max_kw == 12
    assert henan.lv_ceiling_kw == config.default.lv_ceiling_kw
    assert config.rules_for(org_no="32001") is config.default
    assert config.rules_for(province="henan") is henan


def test_bad_values_are_reported_with_file_and_line(tmp_path: Path) -> None:
    text = (ROOT / "feasibility" / "rules.yaml").read_text(encoding="utf-8")
    text = text.replace("power_factor: 0.9 ", "power_factor: 1.4 ").replace(
        "radii_m: [200, 500, 800, 1000, 1500, 2000]", "radii_m: [500, 200]"
    )
    lines = text.splitlines()
    pf_line = next(i for i, line in enumerate(lines, 1) if "power_factor: 1.4" in line)
    radii_line = next(i for i, line in enumerate(lines, 1) if "radii_m: [500, 200]" in line)
    diag = Diagnostics(_copy(tmp_path, text))
    assert read_feasibility_config(tmp_path, diag) is None
    messages = [str(error) for error in diag.errors]
    assert any(
        m.startswith(f"feasibility/rules.yaml:{pf_line}: power_factor must be a number in (0, 1]")
        for m in messages
    )
    assert any(
        m.startswith(f"feasibility/rules.yaml:{radii_line}: search.radii_m must widen") for m in messages
    )


def test_unknown_and_missing_keys_are_errors(tmp_path: Path) -> None:
    config_dir = _copy(
        tmp_path, "defaults:\n  power_factor: 0.9\n  colour: red\nprovinces:\n  x: {voltage: {}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_feasibility_config(config_dir)
    text = str(caught.value)
    assert "feasibility/rules.yaml:3: unknown key 'colour'" in text
    assert "defaults lacks 'voltage'" in text
    assert "province 'x' needs org_prefixes" in text


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_feasibility_config(tmp_path)
