"""The hub's gauges measured when /metrics is scraped, exposed together with ground/metrics.py's counters.

Gauges that describe shared state (outbox lag, parked messages, queue depths) are read from the
database and the broker at scrape time by HubMetrics, so every hub process reports the same truth and
the numbers survive restarts. A dependency that cannot be read at scrape time makes its gauges absent
and sets yekuo_scrape_dependency_up{dependency} to 0; the scrape itself still succeeds.

The process gauges (yekuo_process_*) are the figures of workflow/process.py over the cases energised in a
trailing window (YEKUO_PROCESS__WINDOW_DAYS, 90 days by default) up to the scrape, per customer class and
supply unit: four classes and the utility's supply units (ORG_NO) keep the label sets bounded. Days to
power are in working days (quantile 0.5 and 0.9) and in calendar days. A group without a measured case has
no duration or ratio samples. They read every case of the window, so a process recomputes them at most
every YEKUO_PROCESS__REFRESH_S seconds and serves the last figures in between.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from bus.port import Bus
from ground.errors import BusError, ConfigError
from ground.metrics import REGISTRY
from ground.settings import ProcessSettings
from pipeline.outbox import pending_backlog
from store.database import Connection, DatabaseError, Engine, utcnow
from store.parking import parked_by_kind
from workflow.process import ANY_CAUSE, ProcessFilter, Spread, findings, grouped_figures

__all__ = [
    "HubMetrics",
    "OutboxBacklog",
    "QueueDepth",
    "WatchedQueue",
    "watched_queues",
]

log = logging.getLogger(__name__)

BusOpener = Callable[[], Bus]


@dataclass(frozen=True)
class WatchedQueue:
    """A queue whose depth is reported as consumer lag, with the consumer it belongs to."""

    consumer: str
    queue: str


@dataclass(frozen=True)
class QueueDepth:
    """Messages ready in a watched queue when it was read."""

    consumer: str
    queue: str
    messages: int


@dataclass(frozen=True)
class OutboxBacklog:
    """Events not yet confirmed by the broker, the oldest one's age, and parked messages by kind."""

    pending: int
    oldest_age_s: float
    parked: dict[str, int]


class ConsumerQueues(Protocol):
    """What watched_queues() needs of a consumer (yekuo.consumers.ConsumerSpec has it)."""

    @property
    def name(self) -> str: ...

    @property
    def queue(self) -> str: ...

    @property
    def parking_queue(self) -> str: ...


def watched_queues(consumers: Iterable[ConsumerQueues]) -> list[WatchedQueue]:
    """Each consumer's own queue and its parking queue."""
    return [
        WatchedQueue(consumer.name, queue)
        for consumer in consumers
        for queue in (consumer.queue, consumer.parking_queue)
    ]


class HubMetrics:
    """A prometheus_client collector of the scrape-time gauges, plus the text exposition of everything."""

    def __init__(
        self,
        engine: Engine,
        open_bus: BusOpener,
        queues: Sequence[WatchedQueue] = (),
        *,
        registry: CollectorRegistry = REGISTRY,
        clock: Callable[[], datetime] = utcnow,
        process: ProcessSettings | None = None,
    ) -> None:
        """process sets the process gauges' window."""
        self._engine = engine
        self._open_bus = open_bus
        self._queues = tuple(queues)
        self._registry = registry
        self._clock = clock
        self._process = process or ProcessSettings()
        self._process_cache: tuple[float, list[Metric]] | None = None

    def exposition(self) -> bytes:
        """The counters of the registry and the gauges measured now, in Prometheus text format."""
        return generate_latest(_Both(self._registry, self))

    def collect(self) -> Iterator[Metric]:
        """Measure the database and the broker now."""
        up = GaugeMetricFamily(
            "yekuo_scrape_dependency_up",
            "Whether the scrape could read a dependency (its gauges are absent when 0).",
            labels=["dependency"],
        )
        database = self._database_gauges()
        up.add_metric(["database"], 0.0 if database is None else 1.0)
        yield from database or ()
        queues = self._queue_gauges()
        up.add_metric(["bus"], 0.0 if queues is None else 1.0)
        yield from queues or ()
        yield up

    def outbox_backlog(self) -> OutboxBacklog:
        """The outbox's unsent events and the parked messages waiting for an operator, read now.

        Raises DatabaseError (store.database) when the database cannot be read.
        """
        with self._engine.connect() as conn:
            return self._backlog(conn)

    def _backlog(self, conn: Connection) -> OutboxBacklog:
        pending, oldest = pending_backlog(conn)
        age = max((self._clock() - oldest).total_seconds(), 0.0) if oldest else 0.0
        return OutboxBacklog(pending=pending, oldest_age_s=age, parked=parked_by_kind(conn))

    def _database_gauges(self) -> list[Metric] | None:
        try:
            with self._engine.connect() as conn:
                backlog = self._backlog(conn)
                process = self._cached_process_gauges(conn)
        except DatabaseError as exc:
            log.warning("metrics scrape could not read the database: %s", exc)
            return None
        lag = GaugeMetricFamily(
            "yekuo_outbox_pending_events",
            "Events committed to the outbox and not yet confirmed by the broker.",
        )
        lag.add_metric([], float(backlog.pending))
        age = GaugeMetricFamily(
            "yekuo_outbox_oldest_pending_age_seconds",
            "Age of the oldest unsent outbox event (0 when the outbox is drained).",
        )
        age.add_metric([], backlog.oldest_age_s)
        parked_gauge = GaugeMetricFamily(
            "yekuo_parked_messages",
            "Messages waiting for an operator (status parked), by kind: dead letters and invalid input.",
            labels=["kind"],
        )
        for kind, count in sorted(backlog.parked.items()):
            parked_gauge.add_metric([kind], float(count))
        return [lag, age, parked_gauge, *process]

    def _cached_process_gauges(self, conn: Connection) -> list[Metric]:
        """The process gauges, recomputed when older than refresh_s: they read every case of the window."""
        cached = self._process_cache
        if cached is not None and time.monotonic() - cached[0] < self._process.refresh_s:
            return cached[1]
        gauges = self._process_gauges(conn)
        self._process_cache = (time.monotonic(), gauges)
        return gauges

    def _process_gauges(self, conn: Connection) -> list[Metric]:
        """The process figures over the cases energised in the trailing window, per class and unit."""
        now = self._clock()
        window = self._process.window_days
        where = ProcessFilter(basis="energised", period_from=now - timedelta(days=window), period_to=now)
        groups = grouped_figures(
            conn,
            where=where,
            groupings=("overall", "class_unit"),
            target_days=self._process.target_working_days,
        )
        labels = ["customer_class", "unit"]
        scope = f"cases energised in the last {window} days"
        energised = GaugeMetricFamily(
            "yekuo_process_energised_cases", f"Cases energised ({scope}).", labels=labels
        )
        working = GaugeMetricFamily(
            "yekuo_process_days_to_power",
            f"Working days from submission to power, by quantile ({scope}).",
            labels=[*labels, "quantile"],
        )
        calendar_days = GaugeMetricFamily(
            "yekuo_process_calendar_days_to_power",
            f"Calendar days from submission to power, by quantile ({scope}).",
            labels=[*labels, "quantile"],
        )
        commitment = GaugeMetricFamily(
            "yekuo_process_within_commitment_ratio",
            f"Share energised by the end-to-end commitment deadline ({scope}).",
            labels=labels,
        )
        target = GaugeMetricFamily(
            "yekuo_process_within_target_ratio",
            f"Share energised within {self._process.target_working_days} working days of submission"
            f" ({scope}).",
            labels=labels,
        )
        for group in groups["class_unit"]:
            values = [group.customer_class or "", group.unit or "unknown"]
            energised.add_metric(values, float(group.energised))
            _quantiles(working, values, group.working_days)
            _quantiles(calendar_days, values, group.calendar_days)
            if group.within_commitment is not None:
                commitment.add_metric(values, group.within_commitment)
            if group.within_target is not None:
                target.add_metric(values, group.within_target)
        rework = GaugeMetricFamily(
            "yekuo_process_rework_ratio",
            f"Share of cases with at least one return to an earlier stage, by cause ({scope}).",
            labels=["cause"],
        )
        [overall] = groups["overall"]
        if overall.cases:
            for cause, figures in overall.rework.items():
                if cause != ANY_CAUSE and figures.share is not None:
                    rework.add_metric([cause], figures.share)
        found = GaugeMetricFamily(
            "yekuo_process_findings_total",
            f"Consistency findings found in the last {window} days, by category.",
            labels=["category"],
        )
        for category, count in findings(conn, where).by_category.items():
            found.add_metric([category], float(count))
        return [energised, working, calendar_days, commitment, target, rework, found]

    def queue_depths(self) -> list[QueueDepth] | None:
        """The depth of every watched queue, read from the broker now; None when the bus cannot be read.

        A queue not declared yet is left out; the others still count.
        """
        if not self._queues:
            return []
        try:
            bus = self._open_bus()
        except (BusError, ConfigError) as exc:
            log.warning("metrics scrape could not open the bus: %s", exc)
            return None
        depths = []
        try:
            for watched in self._queues:
                try:
                    count = bus.queue_depth(watched.queue)
                except ConfigError as exc:
                    log.warning("metrics scrape skipped queue %s: %s", watched.queue, exc)
                    continue
                depths.append(QueueDepth(watched.consumer, watched.queue, count))
        except BusError as exc:
            log.warning("metrics scrape lost the bus: %s", exc)
            return None
        finally:
            try:
                bus.close()
            except BusError:
                log.debug("closing the scrape's bus connection failed", exc_info=True)
        return depths

    def _queue_gauges(self) -> list[Metric] | None:
        depths = self.queue_depths()
        if depths is None:
            return None
        if not self._queues:
            return []
        depth = GaugeMetricFamily(
            "yekuo_consumer_lag_messages",
            "Messages ready in a consumer's queue (or, for its .parking queue, waiting for the drainer).",
            labels=["consumer", "queue"],
        )
        for found in depths:
            depth.add_metric([found.consumer, found.queue], float(found.messages))
        return [depth]


def _quantiles(family: GaugeMetricFamily, labels: list[str], spread: Spread) -> None:
    for quantile, value in (("0.5", spread.p50), ("0.9", spread.p90)):
        if value is not None:
            family.add_metric([*labels, quantile], value)


class _Both:
    """Two collectors exposed as one, so a scrape is one document without registering per-app collectors."""

    def __init__(self, *collectors: CollectorRegistry | HubMetrics) -> None:
        self._collectors = collectors

    def collect(self) -> Iterable[Metric]:
        for collector in self._collectors:
            yield from collector.collect()
