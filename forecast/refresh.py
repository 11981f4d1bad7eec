"""The forecast refresh: every feeder, distribution transformer and substation forecast and kept, and
the planning alerts raised.

Equipment is read in chunks (settings.forecast.chunk_size): one query for the chunk's daily peaks, one
for its pipeline, one for its alerts, and one transaction that replaces the chunk's forecasts and stages
its alerts, so a refresh interrupted half-way keeps what it finished. A history that cannot carry a
forecast is kept as such with the reason, never estimated. After a whole refresh, the forecasts and
alerts of equipment no longer in the grid are dropped.

ForecastLoop runs it as a hub duty: at the hub's start, then every refresh_interval_s.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from feasibility.config import FeasibilityConfig, Rules, load_feasibility_config
from feasibility.engine import FEEDER, SUBSTATION, TRANSFORMER, GridArea
from feasibility.grid_cache import GridCache
from forecast.alerts import crossing_of, drop_alerts, is_new, kept_alerts, raise_alert
from forecast.config import ForecastConfig, load_forecast_config
from forecast.equipment import InsufficientHistoryError, build_forecast, pipeline_applications
from forecast.history import month_of
from forecast.inputs import daily_peaks_of, pipeline_rows_of
from forecast.limits import limit_of
from forecast.model import ForecastError
from ground import clock
from ground.errors import ConfigError
from ground.settings import Settings
from store.forecast import FORECAST, INSUFFICIENT_HISTORY, equipment_forecasts, forecast_alerts

log = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
MODEL_ERROR = "model_error"
# A piece of equipment is forecast once even if two kinds carry its id; the wider one wins.
KINDS = (SUBSTATION, FEEDER, TRANSFORMER)


@dataclass
class RefreshReport:
    """What one refresh did."""

    equipment: int = 0
    forecast: int = 0
    insufficient: int = 0
    failed: int = 0
    no_limit: int = 0
    raised: int = 0
    unchanged: int = 0
    cleared: int = 0
    rows_read: int = 0
    interrupted: bool = False

    def describe(self) -> str:
        """One line for the log and the command line."""
        text = (
            f"{self.equipment} equipment: {self.forecast} forecast, {self.insufficient} with too little "
            f"history, {self.failed} the model could not fit, {self.no_limit} without a known capacity; "
            f"alerts: {self.raised} raised, {self.unchanged} unchanged, {self.cleared} cleared; "
            f"{self.rows_read} daily peaks read"
        )
        return text + (" (interrupted)" if self.interrupted else "")


@dataclass(frozen=True)
class RefreshSettings:
    """What a refresh needs besides the database and the time."""

    rules: FeasibilityConfig
    config: ForecastConfig
    exchange: str
    province: str | None = None
    chunk_size: int = 500


def refresh_settings(settings: Settings, *, province: str | None = None) -> RefreshSettings:
    """The refresh the hub settings describe: the configured rules and forecaster settings, and the
    province given (default: settings.forecast.province); ConfigError for a province without rules."""
    rules = load_feasibility_config(settings.config_dir)
    chosen = province if province is not None else settings.forecast.province
    if chosen is not None and chosen not in rules.provinces:
        raise ConfigError(
            f"forecast province {chosen!r} has no rule set in feasibility/rules.yaml; "
            f"known: {sorted(rules.provinces)}"
        )
    return RefreshSettings(
        rules=rules,
        config=load_forecast_config(settings.config_dir),
        exchange=settings.exchange,
        province=chosen,
        chunk_size=settings.forecast.chunk_size,
    )


def equipment_to_forecast(area: GridArea) -> list[tuple[str, str]]:
    """(kind, id) of every live substation, feeder and distribution transformer, by id."""
    found: dict[str, str] = {}
    groups = {SUBSTATION: area.substations, FEEDER: area.feeders, TRANSFORMER: area.transformers}
    for kind in KINDS:
        for equipment_id in groups[kind]:
            found.setdefault(equipment_id, kind)
    return sorted(((kind, equipment_id) for equipment_id, kind in found.items()), key=lambda item: item[1])


def _chunks(items: Sequence[tuple[str, str]], size: int) -> Iterator[Sequence[tuple[str, str]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _ChunkRefresh:
    """One chunk's reads, forecasts and alerts, inside its transaction."""

    def __init__(
        self,
        conn: Connection,
        settings: RefreshSettings,
        rule_set: Rules,
        area: GridArea,
        *,
        now: datetime,
        correlation_id: str,
        report: RefreshReport,
    ) -> None:
        self.conn = conn
        self.settings = settings
        self.rule_set = rule_set
        self.area = area
        self.now = now
        self.today = now.astimezone(SHANGHAI).date()
        self.correlation_id = correlation_id
        self.report = report

    def run(self, chunk: Sequence[tuple[str, str]]) -> None:
        config = self.settings.config
        ids = [equipment_id for _, equipment_id in chunk]
        days = daily_peaks_of(self.conn, ids, min_good_points=config.min_good_points)
        pipelines = pipeline_rows_of(self.conn, ids, now=self.now)
        kept = kept_alerts(self.conn, ids)
        self.report.rows_read += sum(len(found) for found in days.values())
        rows: list[dict[str, Any]] = []
        cleared: list[str] = []
        for kind, equipment_id in chunk:
            row: dict[str, Any] = {
                "equipment_id": equipment_id,
                "kind": kind,
                "computed_at": self.now,
                "reason": None,
                "model": None,
                "document": None,
            }
            rows.append(row)
            self.report.equipment += 1
            try:
                pipeline = pipeline_applications(
                    pipelines.get(equipment_id, []), self.settings.rules, config, month_of(self.today)
                )
                forecast = build_forecast(
                    equipment_id,
                    days.get(equipment_id, []),
                    pipeline,
                    today=self.today,
                    rules=self.rule_set,
                    config=config,
                )
            except (InsufficientHistoryError, ForecastError) as exc:
                insufficient = isinstance(exc, InsufficientHistoryError)
                row.update(status=INSUFFICIENT_HISTORY if insufficient else MODEL_ERROR, reason=str(exc))
                self.report.insufficient += insufficient
                self.report.failed += not insufficient
                if equipment_id in kept:
                    cleared.append(equipment_id)
                continue
            self.report.forecast += 1
            row.update(status=FORECAST, model=forecast.model, document=forecast.model_dump(mode="json"))
            limit = limit_of(self.area, self.rule_set, kind, equipment_id)
            self.report.no_limit += limit is None
            alert = crossing_of(forecast, kind, limit, forecast_at=self.now) if limit else None
            if alert is None:
                if equipment_id in kept:
                    cleared.append(equipment_id)
            elif is_new(alert, kept.get(equipment_id)):
                raise_alert(
                    self.conn,
                    alert,
                    exchange=self.settings.exchange,
                    correlation_id=self.correlation_id,
                    now=self.now,
                )
                self.report.raised += 1
            else:
                self.report.unchanged += 1
        table = equipment_forecasts
        self.conn.execute(table.delete().where(table.c.equipment_id.in_(ids)))
        self.conn.execute(table.insert(), rows)
        self.report.cleared += drop_alerts(self.conn, cleared)


def refresh_forecasts(
    engine: Engine,
    settings: RefreshSettings,
    *,
    now: datetime | None = None,
    stopping: Callable[[], bool] = lambda: False,
) -> RefreshReport:
    """Forecast every piece of equipment at `now` (default: the hub clock) and raise its alerts.

    Stops between two chunks once stopping() is true (the report says it was interrupted); the forecasts
    of equipment gone from the grid are dropped only after a whole refresh.
    """
    moment = now or clock.now()
    report = RefreshReport()
    rule_set = settings.rules.rules_for(province=settings.province)
    # Every alert of one refresh is traced to it.
    correlation_id = str(uuid.uuid4())
    with engine.connect() as conn:
        area = GridCache().area(conn)
    items = equipment_to_forecast(area)
    for chunk in _chunks(items, settings.chunk_size):
        if stopping():
            report.interrupted = True
            return report
        with engine.begin() as conn:
            _ChunkRefresh(
                conn, settings, rule_set, area, now=moment, correlation_id=correlation_id, report=report
            ).run(chunk)
    with engine.begin() as conn:
        conn.execute(equipment_forecasts.delete().where(equipment_forecasts.c.computed_at < moment))
        kept = sa.select(equipment_forecasts.c.equipment_id)
        conn.execute(forecast_alerts.delete().where(forecast_alerts.c.equipment_id.not_in(kept)))
    return report


class ForecastLoop:
    """A hub loop step: refreshes every forecast at its first call, then every interval_s seconds."""

    def __init__(
        self,
        engine: Engine,
        settings: RefreshSettings,
        interval_s: float,
        *,
        timer: Callable[[], float] = time.monotonic,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._interval_s = interval_s
        self._timer = timer
        self._stopping = stopping
        self._due: float | None = None
        self.last_report: RefreshReport | None = None

    def step(self) -> bool:
        """Refresh if it is time; never busy, so the hub idles between calls."""
        moment = self._timer()
        if self._due is not None and moment < self._due:
            return False
        self._due = moment + self._interval_s
        self.last_report = refresh_forecasts(self._engine, self._settings, stopping=self._stopping)
        log.info("forecast refresh: %s", self.last_report.describe())
        return False
