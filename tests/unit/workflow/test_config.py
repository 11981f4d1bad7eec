"""The stage model and roster: flows chosen per application, and every configuration error with file:line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from canonical_model.application import ConnectionApplication
from canonical_model.case import CaseOutcome
from ground.errors import ConfigError
from ground.settings import PROJECT_ROOT
from tests.unit.routes.config_copy import copy_config
from workflow.config import WorkflowConfig, load_workflow_config
from yekuo.config import check_config


def _application(**overrides: object) -> ConnectionApplication:
    document: dict[str, object] = {
        "application_no": "A1",
        "business_type": "new_connection",
        "customer_no": "4130012345",
        "requested_capacity_kva": 630.0,
        "customer_class": "hv_single_source",
        "channel": "online",
        "submitted_at": "2026-11-20T09:13:05+08:00",
        "updated_at": "2026-11-20T09:13:05+08:00",
    }
    document.update(overrides)
    return ConnectionApplication.model_validate(document)


@pytest.mark.parametrize(
    ("overrides", "flow", "stages"),
    [
        ({"customer_class": "lv_residential", "requested_capacity_kva": 8}, "lv_residential_2_step", 2),
        # 177 kVA x 0.9 = 159.3 kW <= 160 kW in a city: low voltage, 三零.
        (
            {"customer_class": "lv_non_residential", "requested_capacity_kva": 177, "urban_rural": "urban"},
            "lv_zero_visit_2_step",
            2,
        ),
        # 160 kVA x 0.9 = 144 kW > 100 kW in a rural area: high voltage, as the engine says.
        (
            {"customer_class": "lv_non_residential", "requested_capacity_kva": 160, "urban_rural": "rural"},
            "hv_single_source_4_step",
            4,
        ),
        ({"customer_class": "lv_non_residential", "requested_capacity_kva": 80}, "lv_zero_visit_2_step", 2),
        # 630 kVA declared residential is 567 kW: high voltage.
        ({"customer_class": "lv_residential"}, "hv_single_source_4_step", 4),
        # 50 kVA that asks for a valid 10 kV is supplied at 10 kV: the high-voltage flow.
        (
            {
                "customer_class": "lv_non_residential",
                "requested_capacity_kva": 50,
                "requested_voltage_kv": 10,
            },
            "hv_single_source_4_step",
            4,
        ),
        ({"customer_class": "hv_single_source"}, "hv_single_source_4_step", 4),
        ({"customer_class": "hv_dual_source"}, "hv_dual_source_4_step", 4),
        ({"customer_class": "hv_dual_source", "importance_grade": "first"}, "full_chain_hv_dual_source", 8),
        # An important grade that needs two sources is high voltage whatever its size.
        (
            {"customer_class": "lv_residential", "importance_grade": "second", "requested_capacity_kva": 8},
            "full_chain_hv_dual_source",
            8,
        ),
        (
            {
                "customer_class": "lv_residential",
                "importance_grade": "temporary",
                "requested_capacity_kva": 8,
            },
            "full_chain_lv_residential",
            8,
        ),
    ],
)
def test_the_reformed_flows_and_the_full_chain(
    config: WorkflowConfig, overrides: dict[str, object], flow: str, stages: int
) -> None:
    chosen = config.flow_for(_application(**overrides))
    assert chosen.name == flow
    # The reformed step counts exclude the terminal archive stage.
    assert len(chosen.steps) - 1 == stages
    if flow.startswith("full_chain"):
        assert {"design_review", "mid_inspection"} <= {step.stage for step in chosen.steps}


def test_limits_follow_the_domain_defaults_and_provinces_override_them(config: WorkflowConfig) -> None:
    single = config.flow_for(_application())
    dual = config.flow_for(_application(customer_class="hv_dual_source"))
    assert config.limit_days(single, "scheme_reply", None) == 15
    assert config.limit_days(dual, "scheme_reply", None) == 25
    assert config.limit_days(single, "archived", None) is None
    henan = config.province_for("41401")
    assert henan is not None and henan.name == "河南"
    assert config.province_for("51001") is None
    assert config.at_risk_days(henan) == 1


def _workspace(tmp_path: Path) -> Path:
    root = tmp_path / "config"
    shutil.copytree(
        PROJECT_ROOT / "workflow", root / "workflow", ignore=shutil.ignore_patterns("*.py", "__pycache__")
    )
    return root


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _line_of(path: Path, needle: str) -> int:
    return next(
        n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("{stage: scheme_reply, limit_days: 30}", "{stage: scheme_reply, limit_days: 0}", "at least 1"),
        ("{stage: scheme_reply, limit_days: 30}", "{stage: scheme_reply}", "needs 'limit_days'"),
        (
            "{stage: scheme_reply, limit_days: 30}",
            "{stage: scheme_reply, limit_days: 30, sla: 3}",
            "unknown key 'sla'",
        ),
        (
            "{stage: scheme_reply, limit_days: 30}",
            "{stage: scheme_replay, limit_days: 30}",
            "'scheme_replay' is not defined",
        ),
        ("{stage: design_review, limit_days: 10}", "{stage: acceptance, limit_days: 10}", "appears twice"),
        (
            "when: {classes: [hv_dual_source], important: true}",
            "when: {classes: [hv_triple_source], important: true}",
            "'hv_triple_source'",
        ),
        (
            "withdrawn: {name: 撤销, outcome: withdrawn}",
            "withdrawn: {name: 撤销, outcome: energised}",
            "'outcome' must be one of: withdrawn, cancelled, got 'energised'",
        ),
        (
            "{stage: contract, limit_days: 5}",
            "{stage: cancelled, limit_days: 5}",
            "stage 'cancelled' closes a case \\(cancelled\\) from any stage and cannot be a step",
        ),
        (
            'org_prefixes: ["41"]\n    limits: {}',
            'org_prefixes: ["41"]\n    limits: {hv_single_source_4_step: {archived: 3}}',
            "'archived' is not a timed stage",
        ),
    ],
)
def test_a_broken_stage_model_is_reported_with_file_and_line(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    root = _workspace(tmp_path)
    stages = root / "workflow" / "stages.yaml"
    _replace(stages, old, new)
    line = _line_of(stages, new.splitlines()[-1])
    with pytest.raises(ConfigError, match=message) as caught:
        load_workflow_config(root)
    assert caught.value.file == "workflow/stages.yaml"
    assert caught.value.line == line


def test_a_class_without_a_flow_is_an_error(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    _replace(
        root / "workflow" / "stages.yaml",
        "when: {classes: [hv_dual_source], important: false}",
        "when: {classes: [hv_single_source], important: false}",
    )
    with pytest.raises(ConfigError) as caught:
        load_workflow_config(root)
    text = str(caught.value)
    assert "no flow takes ordinary hv_dual_source applications" in text
    assert "flow 'hv_dual_source_4_step' can never be chosen" in text


def test_a_terminal_stage_with_a_limit_is_an_error(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    stages = root / "workflow" / "stages.yaml"
    text = stages.read_text(encoding="utf-8").replace(
        "- {stage: archived}", "- {stage: archived, limit_days: 1}", 1
    )
    stages.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="terminal stage 'archived' closes the case"):
        load_workflow_config(root)


def test_roster_errors_name_the_roster_line(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    roster = root / "workflow" / "roster.yaml"
    _replace(roster, "capacity: 6}", "capacity: none}")
    _replace(roster, "[new_connection, temporary_supply]", "[new_connection, moving_house]")
    with pytest.raises(ConfigError) as caught:
        load_workflow_config(root)
    text = str(caught.value)
    assert f"workflow/roster.yaml:{_line_of(roster, 'capacity: none')}: " in text
    assert "'capacity' must be a whole number" in text
    assert "'moving_house'; expected one of" in text


def test_check_config_covers_the_workflow_files_and_the_status_code_table(tmp_path: Path) -> None:
    root = copy_config(tmp_path / "config")
    assert check_config(root) == []
    table = root / "mappings" / "codes" / "marketing" / "status_code.yaml"
    _replace(table, '"09": energisation', '"09": energised')
    _replace(root / "workflow" / "stages.yaml", "interval_s: 30", "interval_s: -1")
    errors = [str(error) for error in check_config(root)]
    assert errors == [
        f"workflow/stages.yaml:{_line_of(root / 'workflow' / 'stages.yaml', 'interval_s: -1')}: "
        "monitoring: 'interval_s' must be a positive number, got -1",
        f"mappings/codes/marketing/status_code.yaml:{_line_of(table, 'energised')}: "
        "code '09' maps to 'energised', not a stage of workflow/stages.yaml",
    ]


@pytest.mark.parametrize(
    ("overrides", "commitment"),
    [
        ({"customer_class": "lv_residential", "requested_capacity_kva": 8}, 5),
        ({"customer_class": "lv_non_residential", "requested_capacity_kva": 80}, 6),
        ({"customer_class": "lv_non_residential", "requested_capacity_kva": 400}, 22),
        ({"customer_class": "hv_single_source"}, 22),
        ({"customer_class": "hv_dual_source"}, 32),
    ],
)
def test_the_reformed_flows_add_up_within_the_state_grid_commitments(
    config: WorkflowConfig, overrides: dict[str, object], commitment: int
) -> None:
    flow = config.flow_for(_application(**overrides))
    assert config.commitment_days(flow, None) == commitment
    # Summed here from the steps, customer works left out, not with the config's own helper.
    counted = [step.limit_days or 0 for step in flow.steps if not step.customer_works]
    assert sum(counted) <= commitment


def test_a_flow_over_its_commitment_is_refused_with_file_and_line(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    stages = root / "workflow" / "stages.yaml"
    _replace(
        stages,
        "{stage: energisation, limit_days: 5}\n      - {stage: archived}\n\n  # 2 + 15",
        "{stage: energisation, limit_days: 7}\n      - {stage: archived}\n\n  # 2 + 15",
    )
    with pytest.raises(ConfigError) as caught:
        load_workflow_config(root)
    assert caught.value.file == "workflow/stages.yaml"
    assert caught.value.line == _line_of(stages, "lv_zero_visit_2_step:")
    assert "flow 'lv_zero_visit_2_step': its stage limits add up to 8 working days, over its " in str(
        caught.value
    )
    assert "commitment of 6" in str(caught.value)


def test_a_province_override_over_its_commitment_is_refused_and_a_raised_commitment_lets_it_through(
    tmp_path: Path,
) -> None:
    root = _workspace(tmp_path)
    stages = root / "workflow" / "stages.yaml"
    _replace(stages, "limits: {}", "limits: {hv_dual_source_4_step: {scheme_reply: 30}}")
    with pytest.raises(ConfigError, match="in province 'henan': its stage limits add up to 37") as caught:
        load_workflow_config(root)
    assert caught.value.line == _line_of(stages, "henan:")
    _replace(stages, "limits: {hv", "commitments: {hv_dual_source: 37}\n    limits: {hv")
    config = load_workflow_config(root)
    henan = config.province_for("41401")
    dual = config.flow_for(_application(customer_class="hv_dual_source"))
    assert config.commitment_days(dual, henan) == 37
    assert config.commitment_days(dual, None) == 32


def test_a_class_without_a_commitment_is_an_error(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    stages = root / "workflow" / "stages.yaml"
    _replace(stages, "  hv_dual_source: 32\n", "")
    with pytest.raises(ConfigError, match="'commitments' needs 'hv_dual_source'") as caught:
        load_workflow_config(root)
    assert caught.value.line == _line_of(stages, "commitments:")


def test_the_late_december_day_is_read_and_checked(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    stages = root / "workflow" / "stages.yaml"
    assert load_workflow_config(root).late_december_from == 15
    _replace(stages, "late_december_from: 15", "late_december_from: 40")
    with pytest.raises(ConfigError, match="'late_december_from' is a day of December, got 40") as caught:
        load_workflow_config(root)
    assert caught.value.line == _line_of(stages, "late_december_from: 40")


@pytest.mark.parametrize(
    ("overrides", "flow"),
    [
        ({"customer_class": "hv_single_source", "industry_code": "C3120"}, "full_chain_hv_single_source"),
        ({"customer_class": "hv_dual_source", "industry_code": "C3216"}, "full_chain_hv_dual_source"),
        (
            {"customer_class": "lv_non_residential", "special_load": True, "requested_capacity_kva": 80},
            "full_chain_lv_non_residential",
        ),
        ({"customer_class": "hv_single_source", "industry_code": "C3130"}, "hv_single_source_4_step"),
        ({"customer_class": "hv_single_source", "industry_code": "C1312"}, "hv_single_source_4_step"),
    ],
)
def test_special_loads_take_the_full_chain(
    config: WorkflowConfig, overrides: dict[str, object], flow: str
) -> None:
    chosen = config.flow_for(_application(**overrides))
    assert chosen.name == flow
    full = {"design_review", "mid_inspection"} <= {step.stage for step in chosen.steps}
    assert full == flow.startswith("full_chain")


def test_a_special_load_industry_code_outside_gb_t_4754_is_an_error(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    stages = root / "workflow" / "stages.yaml"
    _replace(stages, 'industry_codes: ["C3120", "C3140", "C3216"]', 'industry_codes: ["C3120", "3140"]')
    with pytest.raises(ConfigError, match="industry code '3140' is not GB/T 4754") as caught:
        load_workflow_config(root)
    assert caught.value.line == _line_of(stages, '"3140"]')


def test_the_closing_stages_are_withdrawn_and_cancelled_outside_every_flow(config: WorkflowConfig) -> None:
    assert config.closing_stages == {"withdrawn": CaseOutcome.WITHDRAWN, "cancelled": CaseOutcome.CANCELLED}
    assert all(flow.position(stage) is None for flow in config.flows for stage in config.closing_stages)
