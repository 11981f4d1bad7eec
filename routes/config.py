"""Start-up configuration: code tables, mappings and routes loaded and cross-checked from one folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assistant.knowledge import read_knowledge_config
from feasibility.config import read_feasibility_config
from forecast.config import read_forecast_config
from forecast.demand_config import read_demand_config
from ground.errors import ConfigError
from mappings.codes import CodeTables, read_code_tables
from mappings.engine import Mapping
from mappings.loader import CODES_FOLDER, read_mappings
from mappings.yamlfile import Diagnostics
from pipeline.routing import Router
from routes.table import Route, read_routes
from workflow.config import read_workflow_config
from workflow.consistency_config import WORKFLOW_FOLDER, read_consistency_config

MAPPINGS_FOLDER = "mappings"
ROUTES_FOLDER = "routes"


@dataclass(frozen=True)
class HubConfig:
    """Everything the hub needs to turn raw records into routed canonical events."""

    config_dir: Path
    codes: CodeTables
    mappings: dict[str, Mapping]
    routes: tuple[Route, ...]
    router: Router


def _read(config_dir: Path, diag: Diagnostics) -> tuple[CodeTables, dict[str, Mapping], tuple[Route, ...]]:
    mappings_dir = config_dir / MAPPINGS_FOLDER
    codes = read_code_tables(mappings_dir / CODES_FOLDER, diag)
    mappings, broken = read_mappings(mappings_dir, codes, diag)
    routes = read_routes(config_dir / ROUTES_FOLDER, mappings, diag, broken)
    return codes, mappings, routes


def check_config(config_dir: Path) -> list[ConfigError]:
    """Every problem in config_dir's mappings/, routes/, workflow/, feasibility/, forecast/ and knowledge/,
    with file and line."""
    diag = Diagnostics(config_dir)
    codes, _, _ = _read(config_dir, diag)
    read_workflow_config(config_dir, diag, codes)
    read_feasibility_config(config_dir, diag)
    read_forecast_config(config_dir, diag)
    read_demand_config(config_dir, diag)
    read_knowledge_config(config_dir, diag)
    if (config_dir / WORKFLOW_FOLDER).is_dir():  # a missing folder is reported by the stage model
        read_consistency_config(config_dir, diag)
    return list(diag.errors)


def load_hub_config(config_dir: Path) -> HubConfig:
    """Load and validate config_dir's mappings/ and routes/; raise ConfigError if anything is wrong."""
    diag = Diagnostics(config_dir)
    codes, mappings, routes = _read(config_dir, diag)
    diag.raise_if_any()
    return HubConfig(
        config_dir=config_dir,
        codes=codes,
        mappings=mappings,
        routes=routes,
        router=Router(routes, mappings),
    )
