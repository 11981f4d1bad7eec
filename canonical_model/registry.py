"""Which canonical models exist, under which versioned schema name, and where their JSON Schemas live."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from canonical_model.application import ConnectionApplication
from canonical_model.case import Case, CaseAlert, StageReport, StageTransition, SurveyAssignment
from canonical_model.consistency import ConsistencyFinding
from canonical_model.customer import Customer
from canonical_model.envelope import CloudEvent
from canonical_model.feasibility import FeasibilityAssessment
from canonical_model.grid import (
    DistributionTransformer,
    EquipmentDeletion,
    Feeder,
    GridEquipment,
    MainTransformer,
    Substation,
)
from canonical_model.load import LoadProfile, Measurement, PowerFactorProfile
from canonical_model.planning import CapacityForecastAlert
from canonical_model.projection import ProjectionUpdate

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
SCHEMA_URI_PREFIX = "urn:yekuo:schema:"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

# Model name as written in mapping files -> (model class, versioned schema name).
MODELS: dict[str, tuple[type[BaseModel], str]] = {
    "Customer": (Customer, "customer.v1"),
    "ConnectionApplication": (ConnectionApplication, "application.v1"),
    "CloudEvent": (CloudEvent, "envelope.v1"),
    "Substation": (Substation, "substation.v1"),
    "MainTransformer": (MainTransformer, "main_transformer.v1"),
    "Feeder": (Feeder, "feeder.v1"),
    "DistributionTransformer": (DistributionTransformer, "distribution_transformer.v1"),
    "GridEquipment": (GridEquipment, "grid_equipment.v1"),
    "EquipmentDeletion": (EquipmentDeletion, "equipment_deletion.v1"),
    "StageReport": (StageReport, "stage_report.v1"),
    "Case": (Case, "case.v1"),
    "StageTransition": (StageTransition, "stage_transition.v1"),
    "CaseAlert": (CaseAlert, "case_alert.v1"),
    "ConsistencyFinding": (ConsistencyFinding, "consistency_finding.v1"),
    "SurveyAssignment": (SurveyAssignment, "survey_assignment.v1"),
    "LoadProfile": (LoadProfile, "load_profile.v1"),
    "Measurement": (Measurement, "measurement.v1"),
    "PowerFactorProfile": (PowerFactorProfile, "power_factor_profile.v1"),
    "FeasibilityAssessment": (FeasibilityAssessment, "feasibility_assessment.v1"),
    "ProjectionUpdate": (ProjectionUpdate, "projection_update.v1"),
    "CapacityForecastAlert": (CapacityForecastAlert, "capacity_forecast_alert.v1"),
}


def schema_uri(schema_name: str) -> str:
    """The URI that identifies a schema, used as its $id and as an event's dataschema."""
    return f"{SCHEMA_URI_PREFIX}{schema_name}"


def schema_name_of(model: type[BaseModel]) -> str:
    """The versioned schema name of a registered model."""
    for cls, name in MODELS.values():
        if cls is model:
            return name
    raise KeyError(f"{model.__name__} is not a registered canonical model")


def build_schema(model: type[BaseModel], schema_name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a model, as published."""
    body = model.model_json_schema(mode="validation")
    return {"$schema": DRAFT_2020_12, "$id": schema_uri(schema_name), **body}


def build_all() -> dict[str, dict[str, Any]]:
    """Every published schema by versioned name."""
    return {name: build_schema(model, name) for model, name in MODELS.values()}


def render(schema: dict[str, Any]) -> str:
    """The exact text committed for a schema, so that drift is a plain text comparison."""
    return json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def export(target: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema to target/<name>.json and return the paths written."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in build_all().items():
        path = target / f"{name}.json"
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


def load_published(schema_name: str, source: Path = SCHEMA_DIR) -> dict[str, Any]:
    """A committed schema by versioned name."""
    loaded: dict[str, Any] = json.loads((source / f"{schema_name}.json").read_text(encoding="utf-8"))
    return loaded
