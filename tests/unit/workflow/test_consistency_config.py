"""The consistency rule file: loaded from the configuration folder, every mistake reported with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ground.errors import ConfigError
from ground.settings import PROJECT_ROOT
from workflow.consistency import KINDS
from workflow.consistency_config import load_consistency_config


def _write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "workflow"
    folder.mkdir()
    (folder / "consistency.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_the_shipped_rules_cover_every_kind_and_are_enabled() -> None:
    rules = load_consistency_config(PROJECT_ROOT).rules
    assert {rule.kind for rule in rules} == set(KINDS)
    assert all(rule.enabled and rule.category == "information_error" for rule in rules)


def test_a_bad_rule_file_is_reported_with_file_and_line(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        "rules:\n"
        "  - name: trade\n"
        "    kind: industry_code_mismatch\n"
        "    message: 'codes {application_code} / {phone}'\n"
        "    params:\n"
        "      compare_chars: 9\n"
        "  - name: nearby\n"
        "    kind: no_such_kind\n"
        "    message: x\n"
        "  - name: radius\n"
        "    kind: site_outside_supply_radius\n"
        "    category: typo\n"
        "    message: x\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_consistency_config(root)
    text = str(caught.value)
    assert "workflow/consistency.yaml:4: rule 'trade': 'message' names {phone}" in text
    assert (
        "workflow/consistency.yaml:6: rule 'trade': parameter 'compare_chars' must be a whole number" in text
    )
    assert "workflow/consistency.yaml:8: rule 'nearby': 'kind' must be one of" in text
    assert "workflow/consistency.yaml:12: rule 'radius': 'category' must be one of" in text
    assert "workflow/consistency.yaml:10: rule 'radius' needs parameter 'radius_m'" in text


def test_a_rule_defined_twice_or_an_unknown_key_is_an_error(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        "rules:\n"
        "  - {name: trade, kind: industry_code_mismatch, message: x}\n"
        "  - {name: trade, kind: industry_code_mismatch, message: x, colour: red}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_consistency_config(root)
    assert "consistency.yaml:3: unknown key 'colour' in a rule" in str(caught.value)


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "workflow").mkdir()
    with pytest.raises(ConfigError, match=r"workflow/consistency\.yaml: cannot read the file"):
        load_consistency_config(tmp_path)
