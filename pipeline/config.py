"""The pipeline's start-up configuration: code tables, mappings and routes loaded and cross-checked from one
folder. yekuo/config.py checks the rest of the folder (workflow, feasibility, forecast, knowledge) as well."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mappings.codes import CodeTables, read_code_tables
from mappings.engine import Mapping
from mappings.loader import CODES_FOLDER, read_mappings
from mappings.yamlfile import Diagnostics
from pipeline.routing import Router
from routes.table import Route, read_routes

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


def read_pipeline_config(
    config_dir: Path, diag: Diagnostics
) -> tuple[CodeTables, dict[str, Mapping], tuple[Route, ...]]:
    """config_dir's code tables, mappings and routes, each problem noted in diag with file and line."""
    mappings_dir = config_dir / MAPPINGS_FOLDER
    codes = read_code_tables(mappings_dir / CODES_FOLDER, diag)
    mappings, broken = read_mappings(mappings_dir, codes, diag)
    routes = read_routes(config_dir / ROUTES_FOLDER, mappings, diag, broken)
    return codes, mappings, routes


def load_hub_config(config_dir: Path) -> HubConfig:
    """Load and validate config_dir's mappings/ and routes/; raise ConfigError if anything is wrong."""
    diag = Diagnostics(config_dir)
    codes, mappings, routes = read_pipeline_config(config_dir, diag)
    diag.raise_if_any()
    return HubConfig(
        config_dir=config_dir,
        codes=codes,
        mappings=mappings,
        routes=routes,
        router=Router(routes, mappings),
    )
