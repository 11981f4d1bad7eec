"""The equipment peak forecast: measured monthly peaks forecast by the model, plus the pipeline.

Every figure is apparent power (kVA), as capacities and reservations are: the measured peaks (kW) are
divided by the rule set's configured power factor, and each pipeline application adds its reserved kVA x
its demand factor (feasibility.engine.increment_of, the same increment the feasibility check counts) from
the month of its expected energisation on. The pipeline is added to the forecast mean and to both ends of
every interval: its size is known, its timing is the case's commitment.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from canonical_model.application import ConnectionApplication
from feasibility.config import FeasibilityConfig, Rules
from feasibility.engine import increment_of
from feasibility.service import request_of
from forecast.config import ForecastConfig
from forecast.history import MonthlyHistory, add_months, month_of, monthly_peaks, months_between
from forecast.inputs import PipelineRow, daily_peaks, pipeline_rows
from forecast.model import forecast_series

KVA_DECIMALS = 1


class InsufficientHistoryError(Exception):
    """The equipment's measured history cannot carry a forecast: too short, or stale. The message says
    which and by how much."""


class PeakInterval(BaseModel):
    """A prediction interval of the month's peak."""

    level: int = Field(description="coverage in percent")
    lower_kva: float
    upper_kva: float


class ForecastMonth(BaseModel):
    """One forecast month."""

    month: str = Field(description="YYYY-MM")
    months_ahead: int = Field(ge=1, description="1: the month after the current one")
    measured_kva: float = Field(description="the peak forecast from the measured history alone")
    pipeline_kva: float = Field(ge=0, description="what the pipeline's applications add by this month")
    peak_kva: float = Field(description="measured_kva + pipeline_kva")
    pipeline_share: float = Field(description="pipeline_kva / peak_kva, 0 when peak_kva is not positive")
    intervals: list[PeakInterval]


class PipelineApplication(BaseModel):
    """An application not yet energised that will load the equipment."""

    application_no: str
    reserved_kva: float = Field(description="kVA its reservation holds on the equipment")
    demand_factor: float = Field(description="share of the reserved kVA counted on the grid (需要系数)")
    factor_source: str = Field(description="where the factor came from (load type, industry, residential)")
    increment_kva: float = Field(description="reserved_kva x demand_factor")
    expected_energisation: date | None = Field(
        description="the case's end-to-end deadline; null when paused or not tracked"
    )
    counted_from: str = Field(description="YYYY-MM, the first forecast month it is counted in")


class EquipmentForecast(BaseModel):
    """An equipment's monthly peak forecast with intervals, the model and the pipeline's share."""

    equipment_id: str
    province: str = Field(description="the rule set of the power factor; 'default' for the defaults")
    model: str = Field(description="the model that made the measured part, e.g. MSTL(12)+ETS(A,Ad,N)")
    power_factor: float = Field(description="measured kW / power_factor = kVA")
    history_from: str = Field(description="YYYY-MM, first month of the history used")
    history_to: str = Field(description="YYYY-MM, last month of the history used")
    history_months: int
    months: list[ForecastMonth]
    pipeline: list[PipelineApplication]


def _month_text(month: date) -> str:
    return f"{month:%Y-%m}"


def _check_history(history: MonthlyHistory, config: ForecastConfig, current: date) -> date:
    """The history's last month, or InsufficientHistoryError saying why it cannot be used."""
    last = history.last_month
    needed = config.min_history_months
    if last is None:
        raise InsufficientHistoryError(
            f"no month has {config.min_days_per_month} complete days; {needed} consecutive months are needed"
        )
    if months_between(last, current) > config.max_stale_months:
        raise InsufficientHistoryError(
            f"the latest complete month is {_month_text(last)}, more than {config.max_stale_months} "
            f"months before {_month_text(current)}"
        )
    if len(history.peaks) < needed:
        raise InsufficientHistoryError(
            f"{len(history.peaks)} consecutive complete months up to {_month_text(last)}; "
            f"{needed} are needed (a month is complete with {config.min_days_per_month} complete days)"
        )
    return last


def pipeline_applications(
    rows: Sequence[PipelineRow], rules: FeasibilityConfig, config: ForecastConfig, current: date
) -> list[PipelineApplication]:
    """Each reservation as the increment it adds and the forecast month it counts from."""
    found = []
    for row in rows:
        application = ConnectionApplication.model_validate(row.application)
        rule_set: Rules = rules.rules_for(application.org_no, province=row.province)
        increment, factor, source = increment_of(request_of(application), rule_set, row.reserved_kva)
        ahead = config.undated_month
        if row.expected_energisation is not None:
            # A date already passed, or in the current month, is counted as undated: it is due at once.
            ahead = max(months_between(current, row.expected_energisation), 0) or config.undated_month
        found.append(
            PipelineApplication(
                application_no=row.application_no,
                reserved_kva=row.reserved_kva,
                demand_factor=factor,
                factor_source=source,
                increment_kva=round(increment, 3),
                expected_energisation=row.expected_energisation,
                counted_from=_month_text(add_months(current, ahead)),
            )
        )
    return found


def build_forecast(
    equipment_id: str,
    days: Sequence[tuple[date, float]],
    pipeline: Sequence[PipelineApplication],
    *,
    today: date,
    rules: Rules,
    config: ForecastConfig,
) -> EquipmentForecast:
    """The forecast of months 1..horizon after today's month from the complete days' peaks (kW)."""
    current = month_of(today)
    history = monthly_peaks(days, before=today, min_days=config.min_days_per_month)
    last = _check_history(history, config, current)
    assert history.first_month is not None, "a history with a last month has a first"
    horizon = config.horizon_months
    # The model steps on from the history's last month, so a month or two not yet complete are skipped.
    steps = months_between(last, current) + horizon
    peaks_kva = [peak / rules.power_factor for peak in history.peaks]
    forecast = forecast_series(
        peaks_kva,
        steps,
        season_lengths=(config.season_months,),
        levels=config.interval_levels,
        trend=config.trend,
    )
    months = []
    for ahead in range(1, horizon + 1):
        month = add_months(current, ahead)
        step = steps - horizon + ahead - 1
        added = sum(item.increment_kva for item in pipeline if item.counted_from <= _month_text(month))
        measured = float(forecast.mean[step])
        peak = measured + added
        months.append(
            ForecastMonth(
                month=_month_text(month),
                months_ahead=ahead,
                measured_kva=round(measured, KVA_DECIMALS),
                pipeline_kva=round(added, KVA_DECIMALS),
                peak_kva=round(peak, KVA_DECIMALS),
                pipeline_share=round(added / peak, 4) if peak > 0 else 0.0,
                intervals=[
                    PeakInterval(
                        level=level,
                        lower_kva=round(float(band.lower[step]) + added, KVA_DECIMALS),
                        upper_kva=round(float(band.upper[step]) + added, KVA_DECIMALS),
                    )
                    for level, band in sorted(forecast.bands.items())
                ],
            )
        )
    return EquipmentForecast(
        equipment_id=equipment_id,
        province=rules.province,
        model=forecast.model,
        power_factor=rules.power_factor,
        history_from=_month_text(history.first_month),
        history_to=_month_text(last),
        history_months=len(history.peaks),
        months=months,
        pipeline=list(pipeline),
    )


def forecast_equipment(
    conn: Connection,
    equipment_id: str,
    *,
    now: datetime,
    today: date,
    rules: FeasibilityConfig,
    province: str | None,
    config: ForecastConfig,
) -> EquipmentForecast:
    """Read the equipment's history and pipeline and forecast it; InsufficientHistoryError when the
    history cannot carry a forecast. today: the local calendar day of now."""
    days = daily_peaks(conn, equipment_id, min_good_points=config.min_good_points)
    pipeline = pipeline_applications(
        pipeline_rows(conn, equipment_id, now=now), rules, config, month_of(today)
    )
    return build_forecast(
        equipment_id,
        days,
        pipeline,
        today=today,
        rules=rules.rules_for(province=province),
        config=config,
    )
