"""Planning alerts: a forecast peak over the equipment's limit, raised once per crossing.

An alert names the first forecast month whose peak (pipeline included) exceeds the limit, with that
month's intervals and the pipeline's share of the peak. It is published as
cn.yekuo.grid.capacity_forecast_exceeded.v1 through the outbox, in the transaction that keeps it in
forecast_alerts. The next refresh publishes again only when the crossing month or the limit moved: the
same crossing forecast again, month after month, is one alert. A forecast that no longer crosses drops
the kept alert, so a later crossing is raised anew and feasibility checks stop citing it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical_model.events import CAPACITY_FORECAST_EXCEEDED, channel_of, listed
from canonical_model.planning import CapacityForecastAlert, ForecastBand
from forecast.equipment import EquipmentForecast
from forecast.limits import Limit
from pipeline.outbox import stage_event
from pipeline.records import EventDraft
from store.forecast import forecast_alerts

FORECAST_SOURCE = "/hub/forecast"
# A rate compared to a limit: equal within rounding is within the limit, as feasibility counts it.
_TOLERANCE = 1e-9


def crossing_of(
    forecast: EquipmentForecast, kind: str, limit: Limit, *, forecast_at: datetime
) -> CapacityForecastAlert | None:
    """The alert of the first forecast month over the limit, None when no month crosses it."""
    for month in forecast.months:
        if month.peak_kva <= limit.limit_kva * (1 + _TOLERANCE):
            continue
        return CapacityForecastAlert(
            equipment_id=forecast.equipment_id,
            equipment_kind=kind,
            crossing_month=month.month,
            months_ahead=month.months_ahead,
            limit_rule=limit.rule,
            limit_rate=round(limit.rate, 4),
            capacity_kva=round(limit.capacity_kva, 1),
            limit_kva=round(limit.limit_kva, 1),
            peak_kva=month.peak_kva,
            measured_kva=month.measured_kva,
            pipeline_kva=month.pipeline_kva,
            pipeline_share=month.pipeline_share,
            intervals=[
                ForecastBand(level=band.level, lower_kva=band.lower_kva, upper_kva=band.upper_kva)
                for band in month.intervals
            ],
            model=forecast.model,
            province=forecast.province,
            forecast_at=forecast_at,
        )
    return None


@dataclass(frozen=True)
class KeptAlert:
    """What a refresh compares a new crossing with."""

    crossing_month: str
    limit_rate: float


def kept_alerts(conn: Connection, equipment_ids: Collection[str]) -> dict[str, KeptAlert]:
    """The alerts currently raised for the given equipment."""
    table = forecast_alerts
    rows = conn.execute(
        sa.select(table.c.equipment_id, table.c.crossing_month, table.c.limit_rate).where(
            table.c.equipment_id.in_(list(equipment_ids))
        )
    )
    return {row[0]: KeptAlert(row[1], float(row[2])) for row in rows}


def is_new(alert: CapacityForecastAlert, kept: KeptAlert | None) -> bool:
    """Whether the crossing differs from the one already raised (or none was)."""
    return kept is None or (kept.crossing_month, kept.limit_rate) != (alert.crossing_month, alert.limit_rate)


def raise_alert(
    conn: Connection, alert: CapacityForecastAlert, *, exchange: str, correlation_id: str, now: datetime
) -> str:
    """Publish the alert through the outbox and keep it in place of the previous one; the event id."""
    data = alert.model_dump(mode="json")
    event = stage_event(
        conn,
        EventDraft(
            event_type=CAPACITY_FORECAST_EXCEEDED,
            source=FORECAST_SOURCE,
            subject=alert.equipment_id,
            dataschema=listed(CAPACITY_FORECAST_EXCEEDED).dataschema,
            data=data,
            exchange=exchange,
            routing_key=channel_of(CAPACITY_FORECAST_EXCEEDED).key(equipment_kind=alert.equipment_kind),
            time=now,
        ),
        correlation_id=correlation_id,
    )
    conn.execute(forecast_alerts.delete().where(forecast_alerts.c.equipment_id == alert.equipment_id))
    conn.execute(
        forecast_alerts.insert().values(
            equipment_id=alert.equipment_id,
            kind=alert.equipment_kind,
            crossing_month=alert.crossing_month,
            limit_rate=alert.limit_rate,
            document=data,
            event_id=event.id,
            raised_at=now,
        )
    )
    return event.id


def drop_alerts(conn: Connection, equipment_ids: Collection[str]) -> int:
    """Forget the alerts of equipment whose forecast no longer crosses its limit."""
    if not equipment_ids:
        return 0
    table = forecast_alerts
    return conn.execute(table.delete().where(table.c.equipment_id.in_(list(equipment_ids)))).rowcount
