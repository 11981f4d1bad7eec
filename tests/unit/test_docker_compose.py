"""docker-compose.yml parses, every service command is a real `yekuo` command and every setting is real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from yekuo.cli import build_parser
from yekuo.settings import PROJECT_ROOT, Settings

COMPOSE = PROJECT_ROOT / "docker-compose.yml"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def _hub_services() -> dict[str, Any]:
    return {name: service for name, service in _compose()["services"].items() if service.get("build")}


def test_every_hub_image_command_parses_as_a_yekuo_command() -> None:
    services = _hub_services()
    assert {"hub", "marketing-sim"} <= set(services)
    for name, service in services.items():
        try:
            build_parser().parse_args(service["command"])
        except SystemExit as exc:
            pytest.fail(f"service {name}: {service['command']} is not a yekuo command ({exc})")


def test_every_yekuo_setting_in_the_compose_file_exists() -> None:
    for name, service in _hub_services().items():
        for variable in service.get("environment", {}):
            assert variable.startswith("YEKUO_"), f"{name}: {variable}"
            path = variable.removeprefix("YEKUO_").lower().split("__")
            model: Any = Settings
            for part in path:
                assert part in model.model_fields, f"service {name}: {variable} is not a setting"
                model = model.model_fields[part].annotation
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
    assert set(services["hub"]["depends_on"]) == {"rabbitmq", "postgres", "marketing-sim"}


def test_the_dockerfile_copies_every_package() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text(encoding="utf-8")
    # Tests and benchmarks run from a checkout; the image carries what the hub and the simulators run.
    packages = {path.parent.name for path in PROJECT_ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    copied = {
        line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ") and "/" not in line
    }
    assert packages <= copied, packages - copied
    assert Path(PROJECT_ROOT / "pyproject.toml").is_file()
