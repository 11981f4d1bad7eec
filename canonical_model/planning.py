"""The hub's planning alert: an equipment's forecast peak crosses its load-rate limit."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from canonical_model.common import CanonicalModel


class ForecastBand(CanonicalModel):
    """A prediction interval of the crossing month's peak."""

    level: int = Field(ge=1, le=99, description="coverage in percent")
    lower_kva: float
    upper_kva: float


class CapacityForecastAlert(CanonicalModel):
    """The first forecast month whose peak exceeds what the equipment may carry under the feasibility
    rules (load-rate limit, or N-1 limit where required), with the pipeline's part in it."""

    equipment_id: str = Field(min_length=1, description="PMS id of the equipment (设备编号)")
    equipment_kind: str = Field(min_length=1, description="transformer, feeder or substation")
    crossing_month: str = Field(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM, first month over")
    months_ahead: int = Field(ge=1, description="1: the month after the forecast's current month")
    limit_rule: str = Field(description="the feasibility rule of the limit, e.g. feeder_n_minus_1")
    limit_rate: float = Field(gt=0, description="the load rate the equipment may reach")
    capacity_kva: float = Field(gt=0, description="rated (or allowed-current) capacity")
    limit_kva: float = Field(gt=0, description="capacity_kva x limit_rate")
    peak_kva: float = Field(description="the forecast peak of the crossing month, pipeline included")
    measured_kva: float = Field(description="the part forecast from the measured history")
    pipeline_kva: float = Field(ge=0, description="the part the applications not yet energised add")
    pipeline_share: float = Field(description="pipeline_kva / peak_kva")
    intervals: list[ForecastBand] = Field(description="the prediction intervals of the crossing month")
    model: str = Field(description="the model that forecast the measured part")
    province: str = Field(description="rule set of the limits and the power factor")
    forecast_at: datetime = Field(description="when the forecast was made")
