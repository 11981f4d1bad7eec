"""Forecast API: an equipment's monthly peak forecast for the next months, computed on request.

Each answer reads the equipment's complete days and its pipeline as they are stored now, so a new day or
reservation shows in the next answer; nothing is cached, as a forecast of one piece of equipment takes
well under a second. A history too short or too stale for a forecast is answered as such
(insufficient-load-history, with the counts), never estimated.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from api.context import Context, Database, FeasibilityRules
from api.problems import problem, problem_responses
from forecast.config import ForecastConfig, load_forecast_config
from forecast.equipment import EquipmentForecast, InsufficientHistoryError, forecast_equipment
from ground import clock
from ground.settings import Settings
from workflow.grid import get_equipment

SHANGHAI = ZoneInfo("Asia/Shanghai")
KINDS = ("substation", "feeder", "transformer")

Province = Annotated[
    str | None, Query(max_length=64, description="rule set of the power factor; defaults when left out")
]


@cache
def _configured_settings() -> ForecastConfig:
    return load_forecast_config(Settings().config_dir)


router = APIRouter(prefix="/v1/forecast", tags=["forecast"])


@router.get(
    "/equipment/{equipment_id}",
    response_model=EquipmentForecast,
    responses=problem_responses("equipment-not-found", "insufficient-load-history", "unknown-province"),
    summary="Monthly peak forecast of a substation, feeder or transformer, with the pipeline's share",
)
def read_equipment_forecast(
    equipment_id: str,
    engine: Database,
    feasibility: FeasibilityRules,
    context: Context,
    province: Province = None,
) -> EquipmentForecast:
    """The peak of each of the next months (kVA), with its prediction intervals, the model that made
    it, and what the applications not yet energised on the equipment add from their expected date."""
    forecaster = context.forecast or _configured_settings()
    if province is not None and province not in feasibility.provinces:
        raise problem(
            "unknown-province",
            f"province {province[:64]!r} has no rule set; known: {sorted(feasibility.provinces)}",
        )
    now = clock.now()
    with engine.connect() as conn:
        if all(get_equipment(conn, kind, equipment_id) is None for kind in KINDS):
            raise problem("equipment-not-found", f"equipment {equipment_id[:64]} is not known")
        try:
            return forecast_equipment(
                conn,
                equipment_id,
                now=now,
                today=now.astimezone(SHANGHAI).date(),
                rules=feasibility,
                province=province,
                config=forecaster,
            )
        except InsufficientHistoryError as exc:
            raise problem(
                "insufficient-load-history", f"equipment {equipment_id[:64]} cannot be forecast: {exc}"
            ) from None
