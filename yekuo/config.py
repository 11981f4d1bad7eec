"""The whole configuration folder checked at once: what `yekuo check-config` and start-up report."""

from __future__ import annotations

from pathlib import Path

from assistant.knowledge import read_knowledge_config
from feasibility.config import read_feasibility_config
from forecast.config import read_forecast_config
from forecast.demand_config import read_demand_config
from ground.errors import ConfigError
from mappings.yamlfile import Diagnostics
from pipeline.config import read_pipeline_config
from workflow.config import read_workflow_config
from workflow.consistency_config import WORKFLOW_FOLDER, read_consistency_config


def check_config(config_dir: Path) -> list[ConfigError]:
    """Every problem in config_dir's mappings/, routes/, workflow/, feasibility/, forecast/ and knowledge/,
    with file and line."""
    diag = Diagnostics(config_dir)
    codes, _, _ = read_pipeline_config(config_dir, diag)
    read_workflow_config(config_dir, diag, codes)
    read_feasibility_config(config_dir, diag)
    read_forecast_config(config_dir, diag)
    read_demand_config(config_dir, diag)
    read_knowledge_config(config_dir, diag)
    if (config_dir / WORKFLOW_FOLDER).is_dir():  # a missing folder is reported by the stage model
        read_consistency_config(config_dir, diag)
    return list(diag.errors)
