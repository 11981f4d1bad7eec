"""docker-compose.yml parses, every service command is a real `yekuo` command and every setting is real.

There is no Docker engine in the test environment, so the file is checked for what a run would need: the
commands parse, the settings exist and load, the services agree on URLs and the drop folder, every mounted
file and named volume exists, the scenario the compose file runs is a valid scenario file, the brokers form
one cluster, and the two hub instances sit behind one API port.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel
from ruamel.yaml import YAML

from bus.factory import node_urls
from ground.settings import PROJECT_ROOT, Settings
from simulators.scenario.loader import load_scenario
from store.audit import chain_key_from_settings
from yekuo.cli import build_parser
from yekuo.serve import production_keyring

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
HUBS = ("hub-1", "hub-2")
BROKERS = ("rabbitmq-1", "rabbitmq-2", "rabbitmq-3")


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def _hub_services() -> dict[str, Any]:
    return {name: service for name, service in _compose()["services"].items() if service.get("build")}


def test_every_hub_image_command_parses_as_a_yekuo_command() -> None:
    services = _hub_services()
    assert {*HUBS, "migrate", "simulators", "scenario"} <= set(services)
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


def test_services_have_healthchecks_and_the_hubs_wait_for_them() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        assert "healthcheck" in service, name
    for hub in HUBS:
        # A copy: the two hubs share one mapping through their YAML anchor.
        depends_on = dict(services[hub]["depends_on"])
        assert set(depends_on) == {"migrate", "postgres", "simulators", *BROKERS}, hub
        # The schema is upgraded once, before either instance starts (a one-shot service).
        assert depends_on.pop("migrate") == {"condition": "service_completed_successfully"}
        assert all(condition == {"condition": "service_healthy"} for condition in depends_on.values())
    assert _options(services["migrate"]["command"]).db_command == "upgrade"
    # The load balancer starts with the hubs and finds out itself which of them is ready.
    assert services["api"]["depends_on"] == {hub: {"condition": "service_started"} for hub in HUBS}
    assert all(
        condition == {"condition": "service_healthy"}
        for name, service in services.items()
        if name not in (*HUBS, "api")
        for condition in service.get("depends_on", {}).values()
    )
    assert "15672:15672" in services["rabbitmq-1"]["ports"]  # the management UI


def test_the_broker_is_a_cluster_of_three_nodes_that_find_each_other() -> None:
    services = _compose()["services"]
    cookies = {services[node]["environment"]["RABBITMQ_ERLANG_COOKIE"] for node in BROKERS}
    assert len(cookies) == 1, "one Erlang cookie for every node"
    peers: set[str] = set()
    for node in BROKERS:
        service = services[node]
        assert service["image"].startswith("rabbitmq:3.13"), node
        # The node name is rabbit@<hostname>: the names the peer list gives.
        assert service["hostname"] == node
        (config,) = [mount for mount in service["volumes"] if mount.startswith("./")]
        source, target = config.split(":")[:2]
        assert target.startswith("/etc/rabbitmq/conf.d/"), node
        settings = dict(
            line.split(" = ", 1)
            for line in (PROJECT_ROOT / source).read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")
        )
        assert settings["cluster_formation.peer_discovery_backend"] == "classic_config"
        peers = {
            value for key, value in settings.items() if key.startswith("cluster_formation.classic_config.")
        }
        # Each node keeps its own data, so a restarted node comes back as the same member.
        assert f"{node}:/var/lib/rabbitmq" in service["volumes"]
    assert peers == {f"rabbit@{node}" for node in BROKERS}
    # The others join the first once it runs, rather than each forming a cluster of its own at once.
    for node in BROKERS[1:]:
        assert services[node]["depends_on"] == {"rabbitmq-1": {"condition": "service_healthy"}}


def test_each_hub_lists_every_broker_node_and_has_its_own_instance_name() -> None:
    services = _compose()["services"]
    environments = [services[hub]["environment"] for hub in HUBS]
    for environment in environments:
        nodes = node_urls(environment["YEKUO_BUS_URL"])
        assert sorted(nodes) == [f"amqp://guest:guest@{node}:5672/" for node in BROKERS]
    names = [environment["YEKUO_CLUSTER__INSTANCE_NAME"] for environment in environments]
    assert names == list(HUBS)
    for hub, environment in zip(HUBS, environments, strict=True):
        with pytest.MonkeyPatch.context() as patch:
            for key, value in environment.items():
                patch.setenv(key, str(value))
            assert Settings().cluster.instance_name == hub
    # Otherwise one hub, twice: the same database, sources, keys and secrets.
    shared = [
        {
            key: value
            for key, value in environment.items()
            if key not in ("YEKUO_BUS_URL", "YEKUO_CLUSTER__INSTANCE_NAME")
        }
        for environment in environments
    ]
    assert shared[0] == shared[1]
    assert {services[hub]["command"][0] for hub in HUBS} == {"run"}


def test_one_api_port_leads_to_both_hubs_through_a_load_balancer_that_checks_ready() -> None:
    services = _compose()["services"]
    published = {name: mapping for name, service in services.items() for mapping in service.get("ports", [])}
    assert [name for name, mapping in published.items() if mapping.split(":")[-1] == "8000"] == ["api"]
    assert all("ports" not in services[hub] for hub in HUBS)
    api = services["api"]
    assert api["ports"] == ["8000:8000"]
    (mount,) = api["volumes"]
    source = mount.split(":")[0]
    config = [line.strip() for line in (PROJECT_ROOT / source).read_text(encoding="utf-8").splitlines()]
    assert "bind :8000" in config
    assert "option httpchk GET /ready" in config
    assert "http-check expect status 200" in config
    servers = [line.split()[1:3] for line in config if line.startswith("server ")]
    assert servers == [[hub, f"{hub}:{services[hub]['environment']['YEKUO_API_PORT']}"] for hub in HUBS]
    for hub in HUBS:
        assert services[hub]["environment"]["YEKUO_API_HOST"] == "0.0.0.0"  # reachable from the balancer


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
    assert f"{simulators.port}:{simulators.port}" in services["simulators"]["ports"]
    for name in HUBS:
        hub = services[name]["environment"]
        assert hub["YEKUO_MARKETING__WSDL_URL"] == f"http://simulators:{simulators.port}/marketing?wsdl"
        assert hub["YEKUO_PMS__DB_URL"] == simulators.pms_db_url
        assert simulators.dispatch_out == f"{hub['YEKUO_DISPATCH__DROP_DIR']}/incoming"
        # One drop folder for both instances and the simulator that fills it.
        for service in ("simulators", name):
            assert f"dispatch:{hub['YEKUO_DISPATCH__DROP_DIR']}" in services[service]["volumes"], service


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
        services["migrate"]["environment"]["YEKUO_DB_URL"],
        *(services[hub]["environment"][key] for hub in HUBS for key in ("YEKUO_DB_URL", "YEKUO_PMS__DB_URL")),
    ]
    assert {services[hub]["environment"]["YEKUO_DB_URL"] for hub in HUBS} == {
        services["migrate"]["environment"]["YEKUO_DB_URL"]
    }
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


@pytest.mark.parametrize("name", HUBS)
def test_each_hub_service_holds_what_yekuo_run_refuses_to_start_without(name: str) -> None:
    hub = _hub_services()[name]
    env = {key: str(value) for key, value in hub["environment"].items()}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        keyring = production_keyring(Settings())
        chain_key = chain_key_from_settings(Settings().audit, allow_development=False)
    assert (keyring.active_kid, keyring.development) == ("compose-dev", False)
    assert not chain_key.development
