"""Running a scenario: the three simulators on one seeded world, the hub against them, faults, then checks.

Simulated time is compressed: the day's applications reach the marketing simulator evenly over
`day_seconds` of wall time, and faults fire at their second of that day (or once it has settled). A
scenario with a history first replays the drawn lives of earlier applications (history.py): every
status change at its own legacy time, in listing order, and never a second change of an application before
the hub's poll has taken in its previous one, as a poll sees only an application's latest state. The hub
runs in-process with every source (marketing, PMS, dispatch drop folder) and every consumer, on SQLite and
the in-process bus unless a database or bus URL is given. The run ends once the hub has settled: every
release and fault done, nothing in the outbox or any queue, every loop healthy and the store unchanged
for QUIET_S seconds. The expectations are then checked against the hub's store.
"""

from __future__ import annotations

import functools
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.dispatch.wiring import dispatch_parts
from adapters.marketing.source import SYSTEM as MARKETING
from adapters.marketing.source import MarketingCheckpoint
from adapters.marketing.wiring import MarketingAdapter, build_marketing
from adapters.pms.source import PmsSource
from bus import open_bus
from bus.memory import topic_matches
from bus.retry import RetryPolicy
from ground import clock
from ground.errors import ConfigError
from ground.settings import (
    DISPATCH_DROPFOLDER,
    DeliverySettings,
    DispatchSettings,
    MarketingSettings,
    PmsSettings,
    Settings,
    SourceSettings,
)
from pipeline.config import HubConfig, load_hub_config
from pipeline.consumers import ConsumerSpec, consumer_topology
from pipeline.records import PollingSource, SourceParts
from pipeline.status import HubStatus, LoopHealth
from simulators.dispatch.writer import DispatchWriter
from simulators.marketing.faults import FaultPlan
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import (
    CANCELLED_STATUS,
    LEGACY_TIME_FORMAT,
    WITHDRAWN_STATUS,
    ApplicationRow,
    MarketingWorld,
    status_flow,
)
from simulators.pms.faults import bulk_rerating
from simulators.pms.schema import drop_pms_schema, transformers
from simulators.scenario.checks import CheckResult, RunFacts, evaluate, verdicts
from simulators.scenario.history import HistoryPlan, Release, plan_history
from simulators.scenario.model import DispatchFaultSpec, FaultSpec, MarketingFaultSpec, PmsFaultSpec, Scenario
from simulators.world import build_world, dispatch_equipment
from store.checkpoints import load_checkpoint
from store.database import create_engine, create_schema, drop_schema
from store.feasibility import feasibility_assessments
from store.parking import count_parked
from store.schema import cases, consistency_findings, inbox, outbox, parked
from workflow.workdays import WorkingCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY_STARTS_AT = clock_time(8, 30)
# The hub's clock stands here when a run starts: after every application of the day was entered.
DAY_ENDS_AT = clock_time(18, 0)
QUIET_S = 1.5
_PROGRESS_EVERY_S = 1.0


class RunningHub(Protocol):
    """What a run needs of the hub it drives (yekuo.hub.Hub is one)."""

    settings: Settings
    engine: Engine
    consumers: tuple[ConsumerSpec, ...]
    retry: RetryPolicy
    health: dict[str, LoopHealth]

    @property
    def event_exchanges(self) -> list[str]: ...

    def prepare(self) -> None: ...

    def purge_queues(self) -> None: ...

    def start(self) -> None: ...

    def stop(self, timeout_s: float = ...) -> None: ...

    def status(self) -> HubStatus: ...


class HubFactory(Protocol):
    """Builds the hub of a run from its settings, sources, database and configuration (yekuo.hub.Hub)."""

    def __call__(
        self,
        settings: Settings,
        *,
        sources: Sequence[PollingSource | SourceParts] | None = ...,
        engine: Engine | None = ...,
        config: HubConfig | None = ...,
    ) -> RunningHub: ...


@dataclass(frozen=True)
class RunOptions:
    """Where a run keeps its state; None: SQLite in a temporary folder and a private in-process bus."""

    db_url: str | None = None
    bus_url: str | None = None
    work_dir: Path | None = None


@dataclass
class RunResult:
    """The outcome of one run: every check, and how long the run took."""

    scenario: str
    checks: list[CheckResult]
    settled: bool
    elapsed_s: float
    notes: list[str] = field(default_factory=list)
    # The history replayed: per application, the (STATUS_CODE, RETURN_REASON_CODE) it was given, in order,
    # its appearance first.
    replayed: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    # Applications whose mistyped survey record staff put right because the hub flagged it.
    corrected: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """Whether the run settled and every expectation held."""
        return self.settled and all(check.passed for check in self.checks)


@dataclass(frozen=True)
class _Action:
    """Something that happens at_s seconds into the simulated day."""

    at_s: float
    fire: Callable[[], None]


def run_scenario(
    scenario: Scenario,
    hub: HubFactory,
    options: RunOptions | None = None,
    *,
    say: Callable[[str], None] = print,
) -> RunResult:
    """Run the scenario end to end against a hub that hub builds, and check its expectations; say() gets the
    progress lines. The wiring hands in the hub (yekuo.hub.Hub): the runner drives it and knows it only as
    a RunningHub."""
    chosen = options or RunOptions()
    started = time.monotonic()
    if chosen.work_dir is not None:
        chosen.work_dir.mkdir(parents=True, exist_ok=True)
        return _run_in(scenario, hub, chosen, chosen.work_dir, say, started)
    with tempfile.TemporaryDirectory(prefix="yekuo-scenario-") as folder:
        return _run_in(scenario, hub, chosen, Path(folder), say, started)


def _run_in(
    scenario: Scenario,
    hub: HubFactory,
    options: RunOptions,
    work: Path,
    say: Callable[[str], None],
    started: float,
) -> RunResult:
    # The whole run, simulators and hub alike, lives on the scenario's day, so its seeded dates, load files
    # and deadlines agree with one another on whatever day the scenario is run.
    day_clock = clock.RunningClock(datetime.combine(scenario.day, DAY_ENDS_AT, tzinfo=SHANGHAI))
    with clock.use(day_clock), _Run.started(scenario, hub, options, work, say) as run:
        return run.play(started)


def _days_earlier(legacy_time: str, days: int) -> str:
    moment = datetime.strptime(legacy_time, LEGACY_TIME_FORMAT) - timedelta(days=days)
    return moment.strftime(LEGACY_TIME_FORMAT)


def _shifted(row: ApplicationRow, days: int) -> ApplicationRow:
    """The application as if it had been handled and last changed `days` days earlier."""
    moved = ApplicationRow(**row)
    moved["HANDLE_TIME"] = _days_earlier(row["HANDLE_TIME"], days)
    moved["UPDATE_TIME"] = _days_earlier(row["UPDATE_TIME"], days)
    return moved


def _entered_today(row: ApplicationRow) -> ApplicationRow:
    """The application as it is first entered: handled when it appears, at the first step of its process."""
    fresh = ApplicationRow(**row)
    fresh["HANDLE_TIME"] = row["UPDATE_TIME"]
    fresh["STATUS_CODE"] = status_flow(row)[0]
    return fresh


def _local_today() -> date:
    return clock.now().astimezone(SHANGHAI).date()


class _Run:
    """The simulators and the hub of one run, and the schedule that drives them."""

    def __init__(
        self,
        scenario: Scenario,
        pms_engine: Engine,
        simulator: SimulatorServer,
        writer: DispatchWriter,
        hub: RunningHub,
        marketing: MarketingAdapter,
        drop_dir: Path,
        backlog: list[ApplicationRow],
        held_back: list[ApplicationRow],
        history: HistoryPlan | None,
        say: Callable[[str], None],
    ) -> None:
        self.scenario = scenario
        self.pms_engine = pms_engine
        self.simulator = simulator
        self.writer = writer
        self.hub = hub
        self.marketing = marketing
        self.drop_dir = drop_dir
        self.backlog = backlog
        self.held_back = held_back
        self.history = history
        self.replayed: dict[str, list[tuple[str, str | None]]] = {}
        # Applications whose mistyped record was put right because the hub flagged it.
        self.corrected: list[str] = []
        self.say = say
        self.released = 0
        self.notes: list[str] = []
        self._rng = random.Random(scenario.seed)

    @classmethod
    @contextmanager
    def started(
        cls,
        scenario: Scenario,
        build_hub: HubFactory,
        options: RunOptions,
        work: Path,
        say: Callable[[str], None],
    ) -> Iterator[_Run]:
        scale = scenario.scale
        pms_engine = sa.create_engine(f"sqlite:///{work / 'pms.db'}")
        hub_engine: Engine | None = None
        simulator: SimulatorServer | None = None
        hub: RunningHub | None = None
        try:
            # A work folder may be reused: the world is seeded afresh and the drop folder emptied every run.
            drop_pms_schema(pms_engine)
            drop_dir = work / "dispatch"
            shutil.rmtree(drop_dir, ignore_errors=True)
            start = datetime.combine(scenario.day, DAY_STARTS_AT)
            world = build_world(scenario.seed, scenario.world_scale(), pms_engine, start=start)
            backlog = scale.backlog.applications if scale.backlog else 0
            earlier = scenario.history.applications if scenario.history else 0
            days_ago = scale.backlog.days_ago if scale.backlog else 0
            # In listing order, so each release lands after everything a poller has read.
            ordered = sorted(world.applications, key=lambda row: (row["UPDATE_TIME"], row["APP_NO"]))
            simulator = SimulatorServer(
                MarketingWorld(world.customers, []),
                faults=FaultPlan.parse(
                    [fault.spec() for fault in scenario.faults if isinstance(fault, MarketingFaultSpec)]
                ),
            ).start()
            writer = DispatchWriter(
                drop_dir / "incoming", dispatch_equipment(pms_engine, scenario.seed), seed=scenario.seed
            )
            today = _local_today()
            for offset in range(scale.load_days, 0, -1):
                writer.write_day(today - timedelta(days=offset - 1))
            drop = DispatchSettings(drop_dir=drop_dir, stable_s=0.2, scan_interval_s=0.1)
            settings = Settings(
                bus_url=options.bus_url or f"memory://scenario-{uuid.uuid4()}",
                db_url=options.db_url or f"sqlite:///{work / 'hub.db'}",
                # The day is played in seconds, so the call backoffs and the breaker shrink with it.
                marketing=MarketingSettings(
                    wsdl_url=simulator.wsdl_url,
                    poll_interval_s=0.2,
                    timeout_s=5.0,
                    retry_initial_s=0.1,
                    retry_max_s=0.2,
                    breaker_reset_s=1.0,
                ),
                pms=PmsSettings(db_url=str(pms_engine.url), overlap_s=5.0),
                delivery=DeliverySettings(retry_delays_ms=[200, 500, 1000]),
                dispatch=drop,
            )
            hub_engine = create_engine(settings.db_url)
            # Counts must speak of this run only.
            drop_schema(hub_engine)
            create_schema(hub_engine)
            marketing = build_marketing(settings.marketing, hub_engine)
            hub = _hub(build_hub, settings, hub_engine, marketing, drop)
            history = (
                plan_history(scenario.history, ordered[:earlier], start, scenario.seed, WorkingCalendar())
                if scenario.history is not None
                else None
            )
            if scenario.history is not None and history is not None:
                say(
                    f"history: {earlier} applications over {scenario.history.days} days before the day, "
                    f"process {scenario.history.process}, {len(history.releases)} changes to replay; "
                    f"{_lives_summary(history)}"
                )
            say(
                f"scenario {scenario.name}: seed {scenario.seed}, {len(world.customers)} customers, "
                f"{backlog} backlog + {len(world.applications) - backlog - earlier} applications over "
                f"{scenario.day_seconds:g} s, grid {scale.substations}/{scale.feeders}/{scale.transformers}, "
                f"{scale.load_days} days of load files"
            )
            hub.start()
            yield cls(
                scenario,
                pms_engine,
                simulator,
                writer,
                hub,
                marketing,
                drop_dir,
                [_shifted(row, days_ago) for row in ordered[:backlog]],
                [_entered_today(row) for row in ordered[backlog + earlier :]],
                history,
                say,
            )
        finally:
            if hub is not None:
                hub.stop()
            if simulator is not None:
                simulator.stop()
            if hub_engine is not None:
                hub_engine.dispose()
            pms_engine.dispose()

    def play(self, started: float) -> RunResult:
        """Settle the seeded grid and loads, play the day, settle, fire the settled faults, settle, check."""
        deadline = started + self.scenario.timeout_s
        settled = self._settle("the seeded grid and loads", deadline)
        verdicts_before: dict[str, str] | None = None
        if settled and self.history is not None:
            settled = self._replay(self.history, deadline) and self._settle("the history", deadline)
        if settled:
            self._play_day()
            settled = self._settle("the day", deadline)
        late = [fault for fault in self.scenario.faults if fault.after_settled]
        if settled and late:
            with self.hub.engine.connect() as conn:
                verdicts_before = verdicts(conn)
            # Each settled fault waits for the effects of the one before it.
            for fault in late:
                if settled:
                    self._fire(fault)
                    settled = self._settle(_label(fault), deadline)
        if not settled:
            self.notes.append(f"not settled within {self.scenario.timeout_s:g} s: {self._progress()}")
        facts = RunFacts(
            day=self.scenario.day,
            source_failures={
                **{name: health.failures for name, health in self.hub.health.items()},
                # Counted at the adapter: its own retries may hide a short outage from the poll loop.
                "marketing": self.marketing.client.breaker.status().failed_calls,
            },
            drop_dir=self.drop_dir,
            verdicts_before=verdicts_before,
        )
        with self.hub.engine.connect() as conn:
            checks = evaluate(conn, self.scenario.expect, facts)
        return RunResult(
            self.scenario.name,
            checks,
            settled,
            time.monotonic() - started,
            self.notes,
            self.replayed,
            tuple(self.corrected),
        )

    def _replay(self, plan: HistoryPlan, deadline: float) -> bool:
        """Release the history in order; False when the hub did not keep up before the deadline.

        A poll reads an application's latest state only, so before a second change of an application whose
        previous change the hub has not taken in, wait until its poll has read past everything released.
        The poller commits its watermark with the events it staged, so a watermark past a change means that
        version is on its way to the cases. Where staff act on findings, a mistyped record waits for the
        hub's checks; when they flag it, the rest of the application's life is the corrected one.
        """
        pending = list(plan.releases)
        self.say(f"replaying {len(pending)} changes of the history ...")
        waiting: set[str] = set()
        newest: tuple[str, str] | None = None
        next_progress = time.monotonic() + _PROGRESS_EVERY_S
        number = 0
        while number < len(pending):
            release = pending[number]
            number += 1
            if release.app_no in waiting:
                assert newest is not None, "a waiting application was released before"
                if not self._polled_past(newest, deadline):
                    self.notes.append(f"the history's replay stopped at change {number} of {len(pending)}")
                    return False
                waiting.clear()
            row = self._apply(release)
            if release.edit is None:
                self.replayed.setdefault(release.app_no, []).append(
                    (row["STATUS_CODE"], row["RETURN_REASON_CODE"])
                )
            waiting.add(release.app_no)
            newest = (row["UPDATE_TIME"], row["APP_NO"])
            corrected = plan.corrected.get(release.app_no)
            if release.mistyped and corrected is not None:
                flagged = self._flagged(release, deadline)
                if flagged is None:
                    self.notes.append(f"the hub did not check {release.app_no}'s mistyped record in time")
                    return False
                if flagged:
                    self.corrected.append(release.app_no)
                    later = [item for item in pending[number:] if item.app_no != release.app_no]
                    pending[number:] = sorted([*later, *corrected], key=lambda item: (item.at, item.app_no))
            if time.monotonic() >= next_progress:
                self.say(f"  history: {number}/{len(pending)} changes released  {self._progress()}")
                next_progress += _PROGRESS_EVERY_S
        if plan.corrected:
            self.say(
                f"  history: staff corrected {len(self.corrected)} of {len(plan.corrected)} mistyped survey"
                " records as soon as the hub flagged them"
            )
        return True

    def _flagged(self, release: Release, deadline: float) -> bool | None:
        """Whether the hub's checks flag the application once its case holds the release; None: no answer."""
        released_at = release.at.replace(tzinfo=SHANGHAI)
        while time.monotonic() < deadline:
            with self.hub.engine.connect() as conn:
                document = conn.execute(
                    sa.select(cases.c.application).where(cases.c.application_no == release.app_no)
                ).scalar()
                standing = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(consistency_findings)
                    .where(
                        consistency_findings.c.application_no == release.app_no,
                        consistency_findings.c.cleared_at.is_(None),
                    )
                ).scalar_one()
            if standing:
                return True
            if document is not None and datetime.fromisoformat(document["updated_at"]) >= released_at:
                return False
            time.sleep(0.05)
        return None

    def _apply(self, release: Release) -> ApplicationRow:
        """Make one release's change in the marketing simulator, through the world's own operations."""
        world = self.simulator.world
        change = release.change
        if release.edit is not None:
            return world.apply_change(release.app_no, release.edit, at=release.at)
        if change is None:
            world.add_application(release.row)
            return release.row
        if change.status == WITHDRAWN_STATUS:
            return world.withdraw(release.app_no, at=change.at)
        if change.status == CANCELLED_STATUS:
            return world.cancel(release.app_no, at=change.at)
        current = world.application(release.app_no)
        assert current is not None, "an application is released before it changes"
        flow = status_flow(current)
        if flow.index(change.status) < flow.index(current["STATUS_CODE"]):
            return world.send_back(release.app_no, change.status, change.cause, at=change.at)
        moved = world.advance(release.app_no, at=change.at)
        if moved["STATUS_CODE"] != release.status:
            raise ConfigError(
                f"history of {release.app_no}: the marketing simulator moved it to {moved['STATUS_CODE']}, "
                f"the process to {release.status}"
            )
        return moved

    def _polled_past(self, newest: tuple[str, str], deadline: float) -> bool:
        """Wait until the marketing poller's watermark reaches newest (UPDATE_TIME, APP_NO)."""
        while time.monotonic() < deadline:
            with self.hub.engine.connect() as conn:
                watermark = MarketingCheckpoint.from_dict(load_checkpoint(conn, MARKETING)).watermark
            if watermark is not None and (watermark.changed_at, watermark.key) >= newest:
                return True
            time.sleep(0.05)
        return False

    def _schedule(self) -> list[_Action]:
        # The backlog arrives first, once grid and loads are in, so its assessments see the whole grid.
        add = self.simulator.world.add_application
        actions = [_Action(0.0, functools.partial(add, row)) for row in self.backlog]
        count = len(self.held_back)
        for index, row in enumerate(self.held_back):
            at = self.scenario.day_seconds * (index + 1) / count
            actions.append(_Action(at, functools.partial(self._release, row)))
        for fault in self.scenario.faults:
            if fault.after_settled or isinstance(fault, MarketingFaultSpec):
                continue  # marketing faults live in the simulator's own plan
            at = fault.at_s or 0.0
            actions.append(_Action(at, functools.partial(self._fire, fault)))
        return sorted(actions, key=lambda action: action.at_s)

    def _play_day(self) -> None:
        for fault in self.scenario.faults:
            if isinstance(fault, MarketingFaultSpec):
                self.say(f"fault plan: {_label(fault)} (times from the start of the day)")
        self.simulator.faults.restart_clock()
        day_start = time.monotonic()
        next_progress = day_start
        for action in self._schedule():
            while (wait := day_start + action.at_s - time.monotonic()) > 0:
                if time.monotonic() >= next_progress:
                    self.say(f"t+{time.monotonic() - day_start:4.1f}s  {self._progress()}")
                    next_progress += _PROGRESS_EVERY_S
                time.sleep(min(wait, 0.1))
            action.fire()
        windows = [
            (fault.at_s or 0.0) + (fault.for_s or 0.0)
            for fault in self.scenario.faults
            if isinstance(fault, MarketingFaultSpec) and fault.for_s is not None
        ]
        # A time-boxed outage must have ended before the hub can settle.
        while time.monotonic() < day_start + max(windows, default=0.0):
            time.sleep(0.1)
        self.say(f"t+{time.monotonic() - day_start:4.1f}s  day played: {self._progress()}")

    def _release(self, row: ApplicationRow) -> None:
        self.simulator.world.add_application(row)
        self.released += 1

    def _fire(self, fault: FaultSpec) -> None:
        self.say(f"fault: {_label(fault)}")
        if isinstance(fault, DispatchFaultSpec):
            trigger = fault.fault
            for _ in range(fault.count):
                if trigger is None:
                    self.writer.write_day(_local_today())
                else:
                    self.writer.write_fault(trigger, _local_today())
        elif isinstance(fault, PmsFaultSpec):
            with self.pms_engine.connect() as conn:
                keys = list(
                    conn.execute(
                        sa.select(transformers.c.OBJ_ID)
                        .where(transformers.c.YXZT == "20")
                        .order_by(transformers.c.OBJ_ID)
                    ).scalars()
                )
            chosen = (
                keys
                if fault.transformers == "all"
                else self._rng.sample(keys, min(fault.transformers, len(keys)))
            )
            bulk_rerating(self.pms_engine, chosen, fault.rated_kva)

    def _settle(self, what: str, deadline: float) -> bool:
        self.say(f"settling {what} ...")
        bus = open_bus(self.hub.settings.bus_url, self.hub.settings.bus_namespace)
        queues = [
            queue.name
            for queue in consumer_topology(
                self.hub.event_exchanges, self.hub.consumers, self.hub.retry
            ).queues
        ]
        try:
            last: tuple[object, ...] | None = None
            quiet_since = time.monotonic()
            next_progress = time.monotonic() + _PROGRESS_EVERY_S
            while time.monotonic() < deadline:
                status = self.hub.status()
                depth = sum(bus.queue_depth(queue) for queue in queues)
                busy_files = sum(
                    1 for folder in ("incoming", "processing") for _ in (self.drop_dir / folder).glob("*")
                )
                undelivered = self._undelivered()
                fingerprint = (
                    *self._counts(),
                    status.records,
                    depth,
                    status.pending,
                    busy_files,
                    undelivered,
                )
                idle = status.pending == 0 and depth == 0 and busy_files == 0 and undelivered == 0
                healthy = all(health.ok for health in status.loops.values())
                if fingerprint != last or not (idle and healthy):
                    last = fingerprint
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since >= QUIET_S:
                    self.say(f"settled: {self._progress()}")
                    return True
                if time.monotonic() >= next_progress:
                    self.say(f"  {self._progress()}")
                    next_progress += _PROGRESS_EVERY_S
                time.sleep(0.1)
            return False
        finally:
            bus.close()

    def _undelivered(self) -> int:
        """Deliveries of sent events that no consumer has applied or parked yet.

        Ready messages show in the queue depth, but a batch a consumer has fetched and not yet committed
        shows nowhere else: each sent event is owed once to every consumer whose topics match its key.
        """
        with self.hub.engine.connect() as conn:
            sent = conn.execute(
                sa.select(outbox.c.routing_key, sa.func.count())
                .where(outbox.c.sent_at.is_not(None))
                .group_by(outbox.c.routing_key)
            ).all()
            applied = int(conn.execute(sa.select(sa.func.count()).select_from(inbox)).scalar_one())
            parked_by_consumers = int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(parked)
                    .where(sa.or_(parked.c.kind == "dead", parked.c.source_system.is_(None)))
                ).scalar_one()
            )
        owed = sum(
            int(count)
            for key, count in sent
            for consumer in self.hub.consumers
            if any(topic_matches(topic, key) for topic in consumer.topics)
        )
        return max(0, owed - applied - parked_by_consumers)

    def _counts(self) -> tuple[int, int, str]:
        with self.hub.engine.connect() as conn:
            assessed = int(
                conn.execute(sa.select(sa.func.count()).select_from(feasibility_assessments)).scalar_one()
            )
            stamps = conn.execute(sa.select(sa.func.max(feasibility_assessments.c.assessed_at))).scalar_one()
            # The newest assessment time moves when a re-assessment lands, even if the count does not.
            return assessed, count_parked(conn), str(stamps)

    def _progress(self) -> str:
        status = self.hub.status()
        with self.hub.engine.connect() as conn:
            assessed = int(
                conn.execute(sa.select(sa.func.count()).select_from(feasibility_assessments)).scalar_one()
            )
        degraded = sorted(name for name, health in status.loops.items() if not health.ok)
        note = f"  degraded: {', '.join(degraded)}" if degraded else ""
        return (
            f"released {self.released}/{len(self.held_back)}  tracked {status.cases}  assessed {assessed}  "
            f"records {status.records}  in outbox {status.pending}  parked {status.rejected}{note}"
        )


def _lives_summary(history: HistoryPlan) -> str:
    """The drawn lives in figures, changes after the day included, to compare with what the hub measures."""
    lives = history.lives
    returned = sum(1 for life in lives if life.returns)
    closed = sum(1 for life in lives if life.outcome != "energised")
    days = [
        (powered - life.accepted_at).total_seconds() / 86400
        for life in lives
        if (powered := life.powered_at()) is not None
    ]
    mean = f"{sum(days) / len(days):.1f}" if days else "-"
    return (
        f"their whole lives: {returned} returned at least once, {closed} withdrawn or cancelled, "
        f"{mean} days from acceptance to power on average"
    )


def _hub(
    build_hub: HubFactory,
    settings: Settings,
    engine: Engine,
    marketing: MarketingAdapter,
    drop: DispatchSettings,
) -> RunningHub:
    config = load_hub_config(settings.config_dir)
    # The run's own three sources, never what YEKUO_SOURCES declares for the machine's real hub (the runner
    # keeps its own handle on the marketing adapter).
    dispatch = SourceSettings(name="dispatch", kind=DISPATCH_DROPFOLDER, settings=drop.model_dump())
    sources: list[PollingSource | SourceParts] = [
        marketing.source,
        PmsSource(config.routes, state_engine=engine, settings=settings.pms),
        dispatch_parts(dispatch, engine, config.routes),
    ]
    hub = build_hub(settings, sources=sources, engine=engine, config=config)
    hub.prepare()
    # On a shared broker, messages of an earlier run must not count toward this one.
    hub.purge_queues()
    return hub


def _label(fault: FaultSpec) -> str:
    when = "once settled" if fault.after_settled else f"at {fault.at_s or 0:g} s"
    if isinstance(fault, MarketingFaultSpec):
        return f"marketing {fault.spec()}"
    if isinstance(fault, DispatchFaultSpec):
        return f"dispatch {fault.trigger} x{fault.count} {when}"
    return f"pms bulk_rerating of {fault.transformers} transformers to {fault.rated_kva:g} kVA {when}"
