"""Hub tables of the forecast refresh: the latest forecast of every piece of equipment, and its alert.

equipment_forecasts holds one row per equipment: its forecast document, or why its history could not
carry one (status insufficient_history, reason), so a refresh that skipped it says so instead of leaving
the previous forecast standing. forecast_alerts holds the alert currently raised for an equipment whose
forecast crosses its limit: a refresh raises the event again only when the crossing month or the limit
changes, and drops the row when the forecast no longer crosses.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical_model.planning import CapacityForecastAlert
from store.schema import KEY, UtcDateTime, metadata

FORECAST = "forecast"
INSUFFICIENT_HISTORY = "insufficient_history"

equipment_forecasts = sa.Table(
    "equipment_forecasts",
    metadata,
    sa.Column("equipment_id", KEY, primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False, comment="transformer, feeder or substation"),
    sa.Column("status", sa.String(32), nullable=False, comment="forecast | insufficient_history"),
    sa.Column("reason", sa.Text, nullable=True, comment="why the history cannot carry a forecast"),
    sa.Column("model", sa.String(128), nullable=True),
    sa.Column("document", sa.JSON, nullable=True, comment="the EquipmentForecast"),
    sa.Column("computed_at", UtcDateTime(), nullable=False),
)

forecast_alerts = sa.Table(
    "forecast_alerts",
    metadata,
    sa.Column("equipment_id", KEY, primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("crossing_month", sa.String(7), nullable=False, comment="YYYY-MM"),
    sa.Column("limit_rate", sa.Float, nullable=False),
    sa.Column("document", sa.JSON, nullable=False, comment="the CapacityForecastAlert published"),
    sa.Column("event_id", KEY, nullable=False, comment="the capacity_forecast_exceeded event"),
    sa.Column("raised_at", UtcDateTime(), nullable=False),
    sa.Index("ix_forecast_alerts_month", "crossing_month", "equipment_id"),
)


def stored_alerts(
    conn: Connection, equipment_ids: Collection[str] | None = None
) -> list[CapacityForecastAlert]:
    """The alerts raised (of the given equipment, or all), by crossing month then equipment id."""
    table = forecast_alerts
    query = sa.select(table.c.document).order_by(table.c.crossing_month, table.c.equipment_id)
    if equipment_ids is not None:
        query = query.where(table.c.equipment_id.in_(list(equipment_ids)))
    return [CapacityForecastAlert.model_validate(row[0]) for row in conn.execute(query)]
