"""Start-up configuration check over the real repository and over deliberately broken copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from ground.errors import ConfigError
from ground.settings import PROJECT_ROOT
from pipeline.config import HubConfig, load_hub_config
from pipeline.records import RawRecord
from tests.unit.mappings.samples import application_record
from tests.unit.routes.config_copy import replace
from yekuo.config import check_config

APPLICATION = "mappings/marketing/application.yaml"


def test_the_repository_configuration_is_valid() -> None:
    assert [str(e) for e in check_config(PROJECT_ROOT)] == []


def test_load_hub_config_wires_codes_mappings_routes_and_router() -> None:
    config = load_hub_config(PROJECT_ROOT)
    assert isinstance(config, HubConfig)
    assert config.config_dir == PROJECT_ROOT
    assert sorted(m for m in config.mappings if m.startswith("marketing/")) == [
        "marketing/application",
        "marketing/customer",
    ]
    assert "marketing/volt_code" in config.codes
    assert [r.name for r in config.routes if r.source_system == "marketing"] == [
        "marketing-application",
        "marketing-customer",
    ]
    raw = RawRecord(system="marketing", record_type="application", key="1", payload=application_record())
    [event] = config.router.route(raw)
    assert event.subject == "2611200001234"


def test_a_copy_is_valid_until_it_is_broken(config_dir: Path) -> None:
    assert check_config(config_dir) == []


def test_a_broken_mapping_is_reported_with_its_file_and_line(config_dir: Path) -> None:
    line = replace(config_dir / APPLICATION, "codes: marketing/volt_code}", "codes: marketing/volt_codes}")
    errors = check_config(config_dir)
    assert [(e.file, e.line) for e in errors] == [(APPLICATION, line)]
    assert str(errors[0]) == (
        f"{APPLICATION}:{line}: unknown code table 'marketing/volt_codes' "
        "(expected mappings/codes/marketing/volt_codes.yaml)"
    )
    with pytest.raises(ConfigError) as caught:
        load_hub_config(config_dir)
    assert (caught.value.file, caught.value.line) == (APPLICATION, line)


def test_a_mapping_with_broken_yaml_does_not_also_fail_its_route(config_dir: Path) -> None:
    line = replace(
        config_dir / APPLICATION,
        "customer_no: {from: CONS_NO, required: true}",
        "customer_no: {from: CONS_NO",
    )
    errors = check_config(config_dir)
    assert len(errors) == 1
    assert errors[0].file == APPLICATION
    assert errors[0].line is not None and line <= errors[0].line <= line + 1
    assert "invalid YAML" in str(errors[0])


def test_every_broken_file_is_reported(config_dir: Path) -> None:
    volt = config_dir / "mappings/codes/marketing/volt_code.yaml"
    volt_line = replace(volt, "AC00101: 10", "AC00101: -10")
    customer = config_dir / "mappings/marketing/customer.yaml"
    customer_line = replace(customer, "name: {from: CONS_NAME", "nam: {from: CONS_NAME")
    routes = config_dir / "routes/marketing.yaml"
    route_line = replace(routes, "cn.yekuo.application.changed.v1", "application.changed")
    errors = check_config(config_dir)
    found = {(e.file, e.line) for e in errors}
    assert ("mappings/codes/marketing/volt_code.yaml", volt_line) in found
    assert ("mappings/marketing/customer.yaml", customer_line) in found
    assert ("routes/marketing.yaml", route_line) in found
    assert all(str(e).startswith(f"{e.file}:{e.line}: ") for e in errors)
    with pytest.raises(ConfigError, match=r"\d+ configuration errors"):
        load_hub_config(config_dir)


def test_the_new_source_needs_only_a_mapping_and_a_route(config_dir: Path) -> None:
    (config_dir / "mappings/codes/gis").mkdir()
    (config_dir / "mappings/codes/gis/flag.yaml").write_text(
        'table: gis/flag\ncodes: {"1": true, "0": false}\n', encoding="utf-8"
    )
    (config_dir / "mappings/gis").mkdir()
    (config_dir / "mappings/gis/cons.yaml").write_text(
        "mapping: gis/cons\n"
        "source: {system: gis, record: cons}\n"
        "target: Customer\n"
        "fields:\n"
        "  customer_no: {from: YHBH, required: true}\n"
        "  name: {from: YHMC, required: true}\n"
        "  category: {constant: other}\n"
        "  contract_capacity_kva: {from: RL, unit: MVA}\n",
        encoding="utf-8",
    )
    (config_dir / "routes/gis.yaml").write_text(
        "routes:\n"
        "  - name: gis-cons\n"
        "    source: {system: gis, record: cons}\n"
        "    mapping: gis/cons\n"
        "    event_type: cn.yekuo.customer.changed.v1\n"
        "    exchange: yekuo.events\n"
        "    routing_key: customer.changed.{category}\n"
        "    subject: '{customer_no}'\n",
        encoding="utf-8",
    )
    config = load_hub_config(config_dir)
    raw = RawRecord(system="gis", record_type="cons", key="9", payload={"YHBH": "9", "YHMC": "x", "RL": 1.25})
    [event] = config.router.route(raw)
    assert event.data == {
        "customer_no": "9",
        "name": "x",
        "category": "other",
        "contract_capacity_kva": 1250.0,
        "contacts": [],
        "source_refs": [],
    }
    assert (event.routing_key, event.source) == ("customer.changed.other", "/gis/cons")


def test_missing_folders_are_reported(tmp_path: Path) -> None:
    errors = check_config(tmp_path)
    assert [str(e) for e in errors] == [
        "mappings/codes: the code table folder is missing",
        "mappings: the mapping folder is missing",
        "routes: the route folder is missing",
        "workflow: the workflow folder is missing",
        "feasibility/rules.yaml: cannot read the file: [Errno 2] No such file or directory: "
        f"'{tmp_path / 'feasibility' / 'rules.yaml'}'",
        "forecast/forecast.yaml: cannot read the file: [Errno 2] No such file or directory: "
        f"'{tmp_path / 'forecast' / 'forecast.yaml'}'",
        "forecast/demand.yaml: cannot read the file: [Errno 2] No such file or directory: "
        f"'{tmp_path / 'forecast' / 'demand.yaml'}'",
        "knowledge/default: no folder default/: every province starts from the default entries",
    ]
