"""docker-compose.yml parses, every service command is a real `yekuo` command and every setting is real.

There is no Docker engine in the test environment, so the file is checked for what a run would need: the
commands parse, the settings exist and load, the services agree on URLs and the drop folder, every mounted
file and named volume exists, and the scenario the compose file runs is a valid scenario file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel
from ruamel.yaml import YAML

from ground.settings import PROJECT_ROOT, Settings
from simulators.scenario.loader import load_scenario
from store.audit import chain_key_from_settings
from yekuo.cli import build_parser
from yekuo.serve import production_keyring

COMPOSE = PROJECT_ROOT / "docker-compose.yml"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def _hub_services() -> dict[str, Any]:
    return {name: service for name, service in _compose()["services"].items() if service.get("build")}


def test_every_hub_image_command_parses_as_a_yekuo_command() -> None:
    services = _hub_services()
    assert {"hub", "simulators", "scenario"} <= set(services)
    for name, service in services.items():
        try:
            build_parser().parse_args(service["command"])
        except SystemExit as exc:
            pytest.fail(f"service {name}: {service['command']} is not a yekuo command ({exc})")


def _model_of(annotation: Any) -> Any:
    """The settings model of a field, also when it is optional (DispatchSettings | None)."""
    models = [arg for arg in get_args(annotation) if isinstance(arg, type) and issubclass(arg, BaseModel)]
    return models[0] if models else annotation


def test_every_yekuo_setting_in_the_compose_file_exists() -> None:
    for name, service in _hub_services().items():
        for variable in service.get("environment", {}):
            assert variable.startswith("YEKUO_"), f"{name}: {variable}"
            path = variable.removeprefix("YEKUO_").lower().split("__")
            model: Any = Settings
            for part in path:
                assert part in model.model_fields, f"service {name}: {variable} is not a setting"
                model = _model_of(model.model_fields[part].annotation)
        # The settings must load from exactly this environment.
        env = {key: str(value) for key, value in service.get("environment", {}).items()}
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            Settings()


def test_services_have_healthchecks_and_the_hub_waits_for_them() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        assert "healthcheck" in service, name
    assert set(services["hub"]["depends_on"]) == {"rabbitmq", "postgres", "simulators"}
    assert all(
        condition == {"condition": "service_healthy"}
        for service in services.values()
        for condition in service.get("depends_on", {}).values()
    )
    assert "15672:15672" in services["rabbitmq"]["ports"]  # the management UI


def test_the_dockerfile_copies_every_package() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text(encoding="utf-8")
    # Tests and benchmarks run from a checkout; the image carries what the hub and the simulators run.
    packages = {path.parent.name for path in PROJECT_ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    copied = {
        line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ") and "/" not in line
    }
    assert packages <= copied, packages - copied
    assert Path(PROJECT_ROOT / "pyproject.toml").is_file()


def _options(command: list[str]) -> Any:
    return build_parser().parse_args(command)


def test_the_simulators_and_the_hub_agree_on_every_address_and_folder() -> None:
    services = _compose()["services"]
    simulators = _options(services["simulators"]["command"])
    assert (simulators.command, simulators.system) == ("sim", "all")
    hub = services["hub"]["environment"]
    assert hub["YEKUO_MARKETING__WSDL_URL"] == f"http://simulators:{simulators.port}/marketing?wsdl"
    assert f"{simulators.port}:{simulators.port}" in services["simulators"]["ports"]
    assert hub["YEKUO_PMS__DB_URL"] == simulators.pms_db_url
    assert simulators.dispatch_out == f"{hub['YEKUO_DISPATCH__DROP_DIR']}/incoming"
    for name in ("simulators", "hub"):
        assert f"dispatch:{hub['YEKUO_DISPATCH__DROP_DIR']}" in services[name]["volumes"], name


def test_every_database_a_service_names_is_created_by_postgres() -> None:
    compose = _compose()
    services = compose["services"]
    init_sql = ""
    for mount in services["postgres"]["volumes"]:
        source, target = mount.split(":")[:2]
        assert (PROJECT_ROOT / source).is_file(), source
        assert target.startswith("/docker-entrypoint-initdb.d/")
        init_sql += (PROJECT_ROOT / source).read_text(encoding="utf-8")
    created = {services["postgres"]["environment"]["POSTGRES_DB"]} | set(
        re.findall(r"CREATE DATABASE (\w+);", init_sql)
    )
    urls = [
        _options(services["simulators"]["command"]).pms_db_url,
        _options(services["scenario"]["command"]).db_url,
        services["hub"]["environment"]["YEKUO_DB_URL"],
        services["hub"]["environment"]["YEKUO_PMS__DB_URL"],
    ]
    for url in urls:
        assert url.startswith("postgresql+psycopg://postgres@postgres:5432/"), url
        assert url.rsplit("/", 1)[1] in created, url
    declared = set(compose["volumes"])
    for service in services.values():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert source.startswith("./") or source in declared, source


def test_the_compose_file_runs_the_normal_day_scenario_from_the_image() -> None:
    services = _compose()["services"]
    options = _options(services["scenario"]["command"])
    assert (options.command, options.scenario_command) == ("scenario", "run")
    assert options.file == "scenarios/normal-day.yaml"
    assert load_scenario(PROJECT_ROOT / options.file).name == "normal-day"
    copied = (PROJECT_ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    assert "COPY scenarios scenarios" in copied


def test_the_hub_service_holds_what_yekuo_run_refuses_to_start_without() -> None:
    hub = _hub_services()["hub"]
    env = {key: str(value) for key, value in hub["environment"].items()}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        keyring = production_keyring(Settings())
        chain_key = chain_key_from_settings(Settings().audit, allow_development=False)
    assert (keyring.active_kid, keyring.development) == ("compose-dev", False)
    assert not chain_key.development
