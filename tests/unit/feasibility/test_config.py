"""feasibility/rules.yaml: defaults, province overrides, and errors naming file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from canonical_model.application import BusinessType, LoadType
from feasibility.config import LoadTypeRules, load_feasibility_config, read_feasibility_config
from ground.errors import ConfigError
from mappings.yamlfile import Diagnostics
from tests.unit.feasibility.builders import ROOT


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
    # No 20 kV network by default: the 20 kV band (up to 20 MVA) is there for a province that has one.
    assert rules.networks_kv == {10, 35, 110}
    assert [(band.voltage_kv, band.max_kva) for band in rules.bands] == [
        (10, 10000),
        (35, 40000),
        (110, 100000),
    ]
    # GB/T 29328: 特级 three sources, two substations; 一级 two substations; 二级 two circuits, one
    # substation may serve both on two bus sections; a dual-source class with no grade still gets two.
    assert rules.grade_sources == {"special": (3, 2), "first": (2, 2), "second": (2, 1)}
    assert rules.class_sources == {"hv_dual_source": (2, 1)}
    assert rules.release_stages == {"withdrawn", "cancelled"}
    assert rules.energised_stages == {"energisation", "archived"}
    # FACTS.md section 2b: the supply scheme holds 3 months at low voltage, 1 year at high voltage.
    assert rules.scheme_validity_days == {"lv": 90, "hv": 365}
    assert rules.capacity_effect(BusinessType.CAPACITY_REDUCTION) == "frees_capacity"
    assert rules.capacity_effect(BusinessType.SUSPENSION) == "frees_capacity"
    assert rules.capacity_effect(BusinessType.NAME_CHANGE) == "no_capacity_check"
    assert rules.capacity_effect(BusinessType.RELOCATION) == "capacity_check"


def test_a_business_type_without_a_capacity_effect_names_file_and_line(tmp_path: Path) -> None:
    text = (ROOT / "feasibility" / "rules.yaml").read_text(encoding="utf-8")
    broken = text.replace("tariff_change]", "]", 1).replace(
        "frees_capacity: [capacity_reduction, suspension]",
        "frees_capacity: [capacity_reduction, suspension, name_change]",
    )
    with pytest.raises(ConfigError) as caught:
        load_feasibility_config(_copy(tmp_path, broken))
    message = str(caught.value)
    assert "business type 'name_change' is both frees_capacity and no_capacity_check" in message
    assert "business_types leave out ['tariff_change']" in message


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


def test_the_shipped_rules_hold_the_planning_practice_of_section_2b() -> None:
    rules = load_feasibility_config(ROOT).default
    assert [rules.n1_policy(name) for name in ("A+", "A", "B", "C", "D", "E")] == [
        "required",
        "required",
        "required",
        "recommended",
        "not_required",
        "not_required",
    ]
    assert rules.n1_policy(None) == "required"  # unclassed equipment: the safe side
    assert {name: radius["mv"] for name, radius in rules.class_radius_m.items()} == {
        "A+": 3000,
        "A": 3000,
        "B": 3000,
        "C": 5000,
        "D": 15000,
        "E": 15000,
    }
    assert [rules.class_radius_m[name]["lv"] for name in ("A", "B", "C", "D")] == [150, 250, 400, 500]
    assert (rules.window_days, rules.simultaneity) == (365, 0.8)


def test_the_demand_factor_takes_the_longest_industry_prefix_then_the_load_type() -> None:
    rules = load_feasibility_config(ROOT).default
    assert rules.demand_factor(False, "C3110") == (0.8, "industry C31")  # ferrous smelting
    assert rules.demand_factor(False, "C3410") == (0.6, "industry C")  # other manufacturing
    assert rules.demand_factor(True, None) == (0.4, "residential")
    assert rules.demand_factor(True, "S") == (0.4, "residential")  # no factor for section S
    assert rules.demand_factor(False, None) == (1.0, "default (load type unknown)")


def test_bad_area_and_demand_settings_are_reported_with_their_line(tmp_path: Path) -> None:
    text = (ROOT / "feasibility" / "rules.yaml").read_text(encoding="utf-8")
    text = text.replace("C: recommended,", "C: optional,").replace("      C17: 0.75", "      c17: 0.75")
    lines = text.splitlines()
    n1_line = next(i for i, line in enumerate(lines, 1) if "C: optional" in line)
    industries_line = next(i for i, line in enumerate(lines, 1) if line.strip().startswith("industries:"))
    diag = Diagnostics(_copy(tmp_path, text))
    assert read_feasibility_config(tmp_path, diag) is None
    messages = [str(error) for error in diag.errors]
    assert any(
        m.startswith(f"feasibility/rules.yaml:{n1_line}: supply_area.n_minus_1.C must be one of")
        for m in messages
    ), messages
    assert any(
        m.startswith(f"feasibility/rules.yaml:{industries_line}: demand.industries keys must be GB/T 4754")
        for m in messages
    ), messages


def test_a_province_with_a_20_kv_network_gets_the_20_kv_band(tmp_path: Path) -> None:
    text = (ROOT / "feasibility" / "rules.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "provinces:\n",
        "provinces:\n  jiangsu:\n    org_prefixes: ['32']\n    voltage: {networks_kv: [10, 20, 35, 110]}\n",
        1,
    )
    config = load_feasibility_config(_copy(tmp_path, text))
    assert [band.voltage_kv for band in config.rules_for("3240101").bands] == [10, 20, 35, 110]
    assert [band.voltage_kv for band in config.default.bands] == [10, 35, 110]


def test_source_needs_and_networks_are_checked_with_their_line(tmp_path: Path) -> None:
    text = (ROOT / "feasibility" / "rules.yaml").read_text(encoding="utf-8")
    broken = text.replace("first: {sources: 2, substations: 2}", "first: {sources: 2, substations: 3}", 1)
    broken = broken.replace("hv_dual_source: {sources: 2", "hv_triple: {sources: 2", 1)
    lines = broken.splitlines()
    diag = Diagnostics()
    assert read_feasibility_config(_copy(tmp_path, broken), diag) is None
    errors = "\n".join(str(error) for error in diag.errors)
    grades_line = next(n for n, line in enumerate(lines, 1) if line.strip().startswith("grades:"))
    classes_line = next(n for n, line in enumerate(lines, 1) if line.strip().startswith("classes:"))
    assert f"rules.yaml:{grades_line}: sources.grades of 'first': 3 substations for 2 sources" in errors
    assert f"rules.yaml:{classes_line}: sources.classes names 'hv_triple'" in errors


def test_networks_that_leave_no_voltage_band_are_an_error(tmp_path: Path) -> None:
    text = (ROOT / "feasibility" / "rules.yaml").read_text(encoding="utf-8")
    broken = text.replace("networks_kv: [10, 35, 110]", "networks_kv: [6]", 1)
    line = next(n for n, row in enumerate(broken.splitlines(), 1) if "networks_kv: [6]" in row)
    diag = Diagnostics()
    assert read_feasibility_config(_copy(tmp_path, broken), diag) is None
    assert [str(error).split("rules.yaml:")[1] for error in diag.errors] == [
        f"{line}: no voltage band is on a network of voltage.networks_kv [6.0]"
    ]


def test_a_load_type_s_own_factor_wins_over_the_industry_and_the_residential_one() -> None:
    rules = load_feasibility_config(ROOT).default
    # ev_charging 0.5 beats both manufacturing's 0.6 (C) and the residential 0.4.
    assert rules.demand_factor(False, "C3410", LoadType.EV_CHARGING) == (0.5, "load type ev_charging")
    assert rules.demand_factor(True, None, LoadType.EV_CHARGING) == (0.5, "load type ev_charging")
    assert rules.demand_factor(True, None, LoadType.HEAT_PUMP) == (0.7, "load type heat_pump")
    # General load has no factor of its own: the industry's and the residential one still apply.
    assert rules.demand_factor(False, "C3410", LoadType.GENERAL) == (0.6, "industry C")
    assert rules.demand_factor(True, None, LoadType.GENERAL) == (0.4, "residential")


def test_an_hourly_profile_is_spread_over_its_four_quarter_hours_peaking_at_one() -> None:
    rules = load_feasibility_config(ROOT).default
    assert set(rules.load_types) == {LoadType.EV_CHARGING, LoadType.HEAT_PUMP}
    ev = rules.load_types[LoadType.EV_CHARGING].profile
    assert len(ev) == 96 and max(ev) == 1.0
    # Hour 21 (21:00-22:00) is the evening peak: points 85-88, indexes 84-87; hour 20 gives 0.95 to 80-83.
    assert ev[84:88] == (1.0, 1.0, 1.0, 1.0) and ev[80:84] == (0.95,) * 4
    assert max(ev[76:92]) == 1.0 and max(ev[:76]) < 1.0  # the peak lies in 19:00-23:00
    heat = rules.load_types[LoadType.HEAT_PUMP].profile
    assert heat.index(1.0) == 24  # 06:00, the morning peak, is point 25


def test_a_province_may_override_a_load_type_s_factor_and_keep_its_profile(tmp_path: Path) -> None:
    text = (ROOT / "feasibility" / "rules.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "      single_phase_max_kw: 12\n",
        "      single_phase_max_kw: 12\n"
        "    load_types: {ev_charging: {demand_factor: 0.35}, heat_pump: {profile: " + _numbers(96) + "}}\n",
    )
    config = load_feasibility_config(_copy(tmp_path, text))
    henan, default = config.provinces["henan"], config.default
    assert henan.demand_factor(True, None, LoadType.EV_CHARGING) == (0.35, "load type ev_charging")
    assert henan.load_types[LoadType.EV_CHARGING].profile == default.load_types[LoadType.EV_CHARGING].profile
    # A 96-point profile is taken as it stands; the heat pump keeps the default factor.
    assert henan.load_types[LoadType.HEAT_PUMP] == LoadTypeRules(0.7, (0.5,) * 95 + (1.0,))
    assert default.load_types[LoadType.HEAT_PUMP].profile != henan.load_types[LoadType.HEAT_PUMP].profile


def _numbers(count: int, peak: float = 1.0) -> str:
    return "[" + ", ".join(["0.5"] * (count - 1) + [f"{peak:g}"]) + "]"


@pytest.mark.parametrize(
    ("profile", "factor", "message"),
    [
        (
            _numbers(23),
            "0.5",
            "load_types.ev_charging.profile must list 96 quarter-hour or 24 hourly values, not 23",
        ),
        (
            _numbers(24, 0.9),
            "0.5",
            "load_types.ev_charging.profile must be normalised to a peak of exactly 1.0",
        ),
        (
            _numbers(96).replace("0.5", "1.2", 1),
            "0.5",
            "ev_charging.profile value 1 must be a number in [0, 1]",
        ),
        (_numbers(24).replace("0.5", "-0.1", 1), "0.5", "value 1 must be a number in [0, 1], not -0.1"),
        (_numbers(24), "0", "load_types.ev_charging.demand_factor must be a number in (0, 1], not 0"),
        (_numbers(24), "1.5", "load_types.ev_charging.demand_factor must be a number in (0, 1], not 1.5"),
    ],
)
def test_a_bad_load_type_is_reported_with_its_line(
    tmp_path: Path, profile: str, factor: str, message: str
) -> None:
    text = (ROOT / "feasibility" / "rules.yaml").read_text(encoding="utf-8")
    start = text.index("    ev_charging:")
    end = text.index("    heat_pump:")
    broken = f"    ev_charging:\n      demand_factor: {factor}\n      profile: {profile}\n"
    text = text[:start] + broken + text[end:]
    lines = text.splitlines()
    key = "demand_factor:" if "demand_factor" in message else "profile:"
    line = next(i for i, text_line in enumerate(lines, 1) if text_line.strip().startswith(key))
    diag = Diagnostics(_copy(tmp_path, text))
    assert read_feasibility_config(tmp_path, diag) is None
    messages = [str(error) for error in diag.errors]
    assert any(m.startswith(f"feasibility/rules.yaml:{line}: ") and message in m for m in messages), messages


def test_a_load_type_without_its_profile_and_an_unknown_one_are_errors(tmp_path: Path) -> None:
    text = (ROOT / "feasibility" / "rules.yaml").read_text(encoding="utf-8")
    start = text.index("    ev_charging:")
    end = text.index("    heat_pump:")
    text = (
        text[:start] + "    ev_charging: {demand_factor: 0.5}\n    tram: {demand_factor: 0.5}\n" + text[end:]
    )
    with pytest.raises(ConfigError) as caught:
        load_feasibility_config(_copy(tmp_path, text))
    message = str(caught.value)
    assert "load_types.ev_charging lacks 'profile'" in message
    assert "unknown key 'load_types.tram'; expected one of ['ev_charging', 'heat_pump']" in message
