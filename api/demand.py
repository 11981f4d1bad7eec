"""Demand forecast and the study's analyses: applications and kVA per month by supply unit, industry and load
type; a summer-only load's share of a group's peak from its curves; the growth of EV-charging demand.

They are served here rather than printed by the CLI because they are data a planner's tool or the
dashboard reads (months, profiles, intervals), under the same permission as the equipment forecast.
Each answer is computed on request from what the hub holds now; a history too short for an answer is
answered as such (409), never estimated.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query

from api.context import Context, Database
from api.problems import problem, problem_responses
from canonical_model.application import LoadType
from forecast.applied import demand_history
from forecast.curves import day_curves
from forecast.demand import DemandFilter, DemandForecast, InsufficientDemandHistoryError, forecast_demand
from forecast.demand_config import DemandConfig, load_demand_config
from forecast.ev_growth import EvGrowth, InsufficientEvHistoryError, ev_growth
from forecast.load_share import InsufficientCurvesError, LoadShare, load_share
from ground import clock
from ground.settings import Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_EQUIPMENT = 500  # ids in one query string; a larger group is a planning study, not a request


@cache
def _configured() -> DemandConfig:
    return load_demand_config(Settings().config_dir)


def _demand_config(context: Context) -> DemandConfig:
    return context.demand or _configured()


Demand = Annotated[DemandConfig, Depends(_demand_config)]


router = APIRouter(prefix="/v1/forecast", tags=["forecast"])


@router.get(
    "/demand",
    response_model=DemandForecast,
    responses=problem_responses("insufficient-application-history", "invalid-parameter"),
    summary="Applications and requested kVA per month, by supply unit, GB/T 4754 section and load type",
)
def read_demand(
    engine: Database,
    config: Demand,
    unit: Annotated[str | None, Query(max_length=16, description="supply unit (ORG_NO)")] = None,
    section: Annotated[
        str | None, Query(pattern=r"^[A-T]$", description="GB/T 4754 section, the trade code's letter")
    ] = None,
    load_type: Annotated[LoadType | None, Query(description="load type")] = None,
    months: Annotated[int | None, Query(ge=1, description="months ahead; the configured default")] = None,
) -> DemandForecast:
    """The history of the matching applications per month and the forecast of the next months (month 1
    is the calendar month after the current one), with intervals and the models that made them."""
    settings = config.demand
    ahead = months or settings.default_months
    if ahead > settings.max_months:
        raise problem("invalid-parameter", f"months must be at most {settings.max_months}, not {ahead}")
    with engine.connect() as conn:
        history = demand_history(conn, settings.business_types)
    today = clock.now().astimezone(SHANGHAI).date()
    try:
        return forecast_demand(
            history, DemandFilter(unit, section, load_type), today=today, months=ahead, settings=settings
        )
    except InsufficientDemandHistoryError as exc:
        raise problem("insufficient-application-history", str(exc)) from None


@router.get(
    "/analyses/load-share",
    response_model=LoadShare,
    responses=problem_responses("insufficient-load-history"),
    summary="Share of the summer-only load (air conditioning) in a group's summer peak, and its hours",
)
def read_load_share(
    engine: Database,
    config: Demand,
    equipment: Annotated[
        list[str], Query(min_length=1, max_length=MAX_EQUIPMENT, description="the group's equipment ids")
    ],
) -> LoadShare:
    """The summer working-day profile minus the shoulder seasons', summed over the group: its share at
    the summer peak and the hours it concentrates in (forecast/load_share.py says why)."""
    settings = config.load_share
    with engine.connect() as conn:
        try:
            return load_share(day_curves(conn, set(equipment)), settings)
        except InsufficientCurvesError as exc:
            raise problem("insufficient-load-history", str(exc)) from None


@router.get(
    "/analyses/ev-growth",
    response_model=EvGrowth,
    responses=problem_responses("insufficient-application-history"),
    summary="EV-charging applications and kVA per year, their growth rate and a projection",
)
def read_ev_growth(engine: Database, settings: Demand) -> EvGrowth:
    """The complete years' EV-charging applications, the yearly growth and the next years' projection
    with intervals, from the application history."""
    with engine.connect() as conn:
        history = demand_history(conn, settings.demand.business_types)
    this_year = clock.now().astimezone(SHANGHAI).year
    try:
        return ev_growth(history, this_year=this_year, settings=settings.ev_growth)
    except InsufficientEvHistoryError as exc:
        raise problem("insufficient-application-history", str(exc)) from None
