"""The hub process: wires sources, the ingest pipeline, the outbox relay and the workflow consumer.

Every legacy system is built the same way, from its declared entry (Settings.declared_sources) through the
registry of adapter kinds (yekuo/sources.py); what it is built into decides its loop: a polled source is
polled from its checkpoint, a file feed has its files ingested one at a time.

Several hub instances may share one database and one vhost. The duties that must run once per cluster
(each source's poller, the outbox relay, the parked-message drainer, the monitor, the webhook dispatcher and
the singleton workers) run only while this instance holds their lease (pipeline/leases.py), and write
with its fencing token; the consumers, the file intake and the marketing writer run on every instance (their
queues, claims and inboxes already share the work).

Each loop runs in its own thread with its own bus connection (a Bus is not thread-safe). Transient
failures of a legacy source or of the broker are retried with exponential backoff and jitter; the
loop reports itself degraded meanwhile and resumes from the committed checkpoint or outbox.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence

import sqlalchemy as sa
import tenacity
from sqlalchemy.engine import Engine

from bus import open_bus
from bus.port import Bus
from bus.retry import RetryPolicy
from ground.errors import BusError, SourceUnavailableError
from ground.logs import redact
from ground.settings import Settings
from pipeline.config import HubConfig, load_hub_config
from pipeline.consumer import InboxConsumer
from pipeline.consumers import ConsumerSpec, consumer_topology
from pipeline.drainer import ParkingDrainer
from pipeline.files import FileIngestor
from pipeline.ingest import Ingestor
from pipeline.leases import LeaseKeeper
from pipeline.outbox import OutboxRelay, pending_count
from pipeline.records import PollingSource, SourceParts
from pipeline.status import HubStatus, LoopHealth
from store.crypto import keyring_from_settings
from store.database import create_engine, create_schema
from store.leases import Fence
from store.parking import count_parked
from subscriptions.settings import subscription_settings
from subscriptions.webhooks import WebhookDispatcher
from workflow.monitor import MonitorLoop
from workflow.queries import count_cases
from yekuo.audit import record_config_loaded
from yekuo.consumers import CONSUMERS
from yekuo.sources import SOURCE_KINDS, AdapterKind, build_sources

log = logging.getLogger(__name__)

TRANSIENT = (SourceUnavailableError, BusError)
# The pause of a loop that found nothing, by the loop's kind (the part of its name before ':').
_IDLE_S = {"drain": 1.0, "write": 1.0}


class Hub:
    """A running hub: call start(), then stop(); status() at any time."""

    def __init__(
        self,
        settings: Settings,
        *,
        sources: Sequence[PollingSource | SourceParts] | None = None,
        engine: Engine | None = None,
        config: HubConfig | None = None,
        consumers: Sequence[ConsumerSpec] = CONSUMERS,
        workers: Sequence[tuple[str, Callable[[], bool]]] = (),
        singletons: Sequence[tuple[str, Callable[[], bool]]] = (),
        kinds: Mapping[str, AdapterKind] = SOURCE_KINDS,
    ) -> None:
        """sources None: every declared source, built by its adapter kind from kinds. Given, these instead
        (a bare polling source is polled at the marketing system's interval). workers run on every
        instance, singletons on the one holding the lease of their name."""
        self.settings = settings
        self.engine = engine or create_engine(settings.db_url, keyring=keyring_from_settings(settings.pii))
        self.config = config or load_hub_config(settings.config_dir)
        if sources is None:
            self.sources = build_sources(settings.declared_sources(), self.engine, self.config.routes, kinds)
        else:
            self.sources = [
                source
                if isinstance(source, SourceParts)
                else SourceParts(source.name, poll=source, idle_s=settings.marketing.poll_interval_s)
                for source in sources
            ]
        self.consumers = tuple(consumers)
        # Further loops by name, e.g. ("write:marketing", writer.step): each step says whether it was busy.
        self.workers = tuple(workers)
        self.singletons = tuple(singletons)
        self.leases = LeaseKeeper(self.engine, settings.cluster.instance_name, settings.cluster.lease_ttl_s)
        self.retry = RetryPolicy(tuple(settings.delivery.retry_delays_ms))
        self.ingestor = Ingestor(self.engine, self.config.router)
        self.health: dict[str, LoopHealth] = {}
        self._stop = threading.Event()
        self._wakes: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []
        self._relays: list[OutboxRelay] = []
        self._buses: list[Bus] = []

    def prepare(self) -> None:
        """Create the hub tables and declare the bus topology."""
        create_schema(self.engine)
        bus = open_bus(self.settings.bus_url, self.settings.bus_namespace)
        try:
            bus.declare(consumer_topology(self.event_exchanges, self.consumers, self.retry))
        finally:
            bus.close()

    def purge_queues(self) -> None:
        """Empty every consumer's queue and parking lot, so a rehearsal on a shared broker starts clean."""
        bus = open_bus(self.settings.bus_url, self.settings.bus_namespace)
        try:
            for consumer in self.consumers:
                bus.purge(consumer.queue)
                bus.purge(consumer.parking_queue)
        finally:
            bus.close()

    @property
    def event_exchanges(self) -> list[str]:
        """The hub's own event exchange and every exchange a route publishes to."""
        return sorted({self.settings.exchange, *(route.exchange for route in self.config.routes)})

    def start(self) -> None:
        """Start every loop in its own thread, once the free duties' leases are taken."""
        self.prepare()
        record_config_loaded(self.engine, self.settings.config_dir)
        for parts in self.sources:
            self._spawn_source(parts)
        self._spawn("relay", self.leases.singleton("relay", self._relay_loop_factory()))
        for consumer in self.consumers:
            self._spawn(f"consume:{consumer.name}", self._consumer_loop_factory(consumer))
        self._spawn("drain", self.leases.singleton("drain", self._drainer_loop_factory()))
        monitor = MonitorLoop.for_engine(self.engine, stopping=self.stopping_duty("monitor"))
        self._spawn_singleton("monitor", monitor.step)
        # Signed webhooks from the event feed, and the feed's retention.
        dispatcher = WebhookDispatcher(self.engine, subscription_settings(), webhooks=self.settings.webhooks)
        self._spawn_singleton("write:subscriptions", dispatcher.step)
        for name, worker_step in self.workers:
            self._spawn(name, worker_step)
        for name, singleton_step in self.singletons:
            self._spawn_singleton(name, singleton_step)
        # Before the loops start, so that a lone instance's duties run from their first step.
        self.leases.keep()
        self._spawn("leases", self.leases.keep, idle_s=self.leases.interval_s)
        for thread in self._threads:
            thread.start()

    def stopping_duty(self, duty: str) -> Callable[[], bool]:
        """For a long singleton step: true once the hub stops or the duty is no longer held here, so a
        step that writes unfenced ends between its chunks instead of overlapping with the new holder's."""
        return lambda: self._stop.is_set() or not self.leases.holds(duty)

    def wake(self, loop: str) -> None:
        """Cut a loop's idle pause short: a push was just stored for a poller, say (no-op for other names)."""
        event = self._wakes.get(loop)
        if event is not None:
            event.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask every loop to stop and wait for it."""
        self._stop.set()
        for event in self._wakes.values():
            event.set()
        for thread in self._threads:
            thread.join(timeout_s)
        stuck = [thread.name for thread in self._threads if thread.is_alive()]
        if stuck:
            # Their connections go back to the pool only when they end; the caller should know.
            log.error("hub loops still running %.0f s after the stop: %s", timeout_s, ", ".join(stuck))
        # A stuck loop's late write is refused by its fence once another instance took the duty over.
        self.leases.release_all()
        for parts in self.sources:
            if parts.poll is not None:
                parts.poll.close()
        for bus in list(self._buses):
            self._close_quietly(bus)

    def status(self) -> HubStatus:
        """Current counts from the database, so they survive restarts."""
        with self.engine.connect() as conn:
            return HubStatus(
                cases=count_cases(conn),
                published=sum(relay.published for relay in self._relays),
                pending=pending_count(conn),
                rejected=count_parked(conn),
                records=self.ingestor.stats.records,
                loops=dict(self.health),
            )

    def readiness(self) -> dict[str, bool]:
        """Each dependency as up or down, for /ready."""
        checks = {"database": self._database_up()}
        checks.update({name: health.ok for name, health in self.health.items()})
        return checks

    def _database_up(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return False
        return True

    def _open_bus(self) -> Bus:
        bus = open_bus(self.settings.bus_url, self.settings.bus_namespace)
        self._buses.append(bus)
        return bus

    def _spawn_source(self, parts: SourceParts) -> None:
        """A source's loop (polling it, or ingesting its feed's files) and its further loops."""
        step: Callable[[], bool] | None = None
        if parts.poll is not None:
            name = f"poll:{parts.poll.name}"
            step = self.leases.singleton(name, functools.partial(self.ingestor.poll_source, parts.poll))
        elif parts.feed is not None:
            intake = FileIngestor(
                self.engine, self.config.router, parts.feed, progress_every_rows=parts.progress_every_rows
            )
            name, step = f"intake:{intake.name}", intake.step
        if step is not None:
            if parts.around_step is not None:
                step = parts.around_step(step)
            self._spawn(name, step, idle_s=parts.idle_s)
        for loop_name, loop_step in parts.loops:
            self._spawn(loop_name, loop_step)

    def _relay_loop_factory(self) -> Callable[[Fence], bool]:
        state: dict[str, OutboxRelay] = {}

        def step(fence: Fence) -> bool:
            if "relay" not in state:
                relay = OutboxRelay(self.engine, self._open_bus(), instance_uri=self.settings.instance_uri)
                state["relay"] = relay
                self._relays.append(relay)
            try:
                return state["relay"].relay_batches(fence, lambda: self.leases.fence("relay") == fence) > 0
            except BusError:
                broken = state.pop("relay")
                self._close_quietly(broken.bus)
                raise

        return step

    def _consumer_loop_factory(self, spec: ConsumerSpec) -> Callable[[], bool]:
        state: dict[str, InboxConsumer] = {}

        def step() -> bool:
            if "consumer" not in state:
                consumer = InboxConsumer(
                    self.engine,
                    self._open_bus(),
                    queue=spec.queue,
                    name=spec.name,
                    handler=spec.handler,
                    retry=self.retry,
                    deferred=spec.deferred,
                )
                state["consumer"] = consumer
            try:
                return state["consumer"].work_once()
            except BusError:
                broken = state.pop("consumer")
                self._close_quietly(broken.bus)
                raise

        return step

    def _drainer_loop_factory(self) -> Callable[[Fence], bool]:
        state: dict[str, ParkingDrainer] = {}
        queues = [(consumer.queue, consumer.parking_queue) for consumer in self.consumers]

        def step(fence: Fence) -> bool:
            if "drainer" not in state:
                state["drainer"] = ParkingDrainer(self.engine, self._open_bus(), queues)
            try:
                return state["drainer"].drain_once(fence=fence) > 0
            except BusError:
                self._close_quietly(state.pop("drainer").bus)
                raise

        return step

    def _close_quietly(self, bus: Bus) -> None:
        if bus in self._buses:
            self._buses.remove(bus)
        try:
            bus.close()
        except BusError:
            log.debug("closing a broken bus connection failed", exc_info=True)

    def _spawn_singleton(self, duty: str, step: Callable[[], bool]) -> None:
        """A loop whose step writes nothing fenced: it runs while the duty is held, as the others do.

        The monitor's decisions are unique per stage visit, and the webhook dispatcher leases each
        subscription, so a late step of theirs after a take-over repeats nothing; the workers' runs
        (an audit anchor, a forecast refresh) are whole and safe to repeat."""
        self._spawn(duty, self.leases.singleton(duty, lambda _fence: step()))

    def _spawn(self, name: str, step: Callable[[], bool], *, idle_s: float | None = None) -> None:
        """A loop of its own for step, started by start(); idle_s: its pause when a step found nothing (None:
        by its kind)."""
        health = self.health.setdefault(name, LoopHealth())
        self._wakes[name] = threading.Event()
        pause = idle_s if idle_s is not None else _IDLE_S.get(name.split(":")[0], 0.05)
        thread = threading.Thread(
            target=self._run_loop, args=(name, step, health, pause), name=name, daemon=True
        )
        self._threads.append(thread)

    def _pause(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _run_loop(self, name: str, step: Callable[[], bool], health: LoopHealth, idle_s: float) -> None:
        def on_retry(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            health.ok = False
            health.failures += 1
            # Shown to operators without pii:read: an error quoting a record must not show its identity.
            health.last_error = redact(str(error))
            log.warning("%s: transient failure #%d, backing off: %s", name, state.attempt_number, error)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TRANSIENT),
            wait=tenacity.wait_exponential_jitter(multiplier=0.2, max=10.0, jitter=0.2),
            stop=tenacity.stop_when_event_set(self._stop),
            sleep=self._pause,
            before_sleep=on_retry,
            reraise=True,
        )
        while not self._stop.is_set():
            try:
                busy = retrying(step)
            except TRANSIENT:
                break  # only reached when stopping during a backoff
            except Exception:
                log.exception("%s: unexpected failure; the loop keeps running", name)
                health.ok = False
                self._stop.wait(1.0)
                continue
            health.ok = True
            if not busy:
                wake = self._wakes[name]
                wake.wait(idle_s)
                wake.clear()
