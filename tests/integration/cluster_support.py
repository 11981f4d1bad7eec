"""Several hub processes on one PostgreSQL database and one RabbitMQ vhost, fed through all three sources.

The legacy world is the simulators' (simulators/world.py): a PMS database on SQLite seeded with a small
grid, the marketing simulator serving applications placed on that grid, and the dispatch writer measuring
its feeders and transformers. While the instances run, a stream of rounds changes all three: applications
move on a step (polled, and pushed to the instances in turn, as a load balancer in front of them would),
some run on to the archive, PMS rows change, and each round writes a day of dispatch load files.

Afterwards the checks say, each in its own words, what did not take effect exactly once.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import queue
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx2
import sqlalchemy as sa
import yaml
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from bus import open_bus
from bus.memory import topic_matches
from bus.port import Binding, ExchangeSpec, QueueSpec, Topology
from bus.retry import RetryPolicy
from ground.errors import BusError, SourceRejectedError, SourceUnavailableError
from ground.settings import PROJECT_ROOT, DeliverySettings, PiiSettings
from pipeline.config import load_hub_config
from pipeline.consumers import consumer_topology
from pipeline.sealing import decode_event
from simulators.dispatch.equipment import read_pms_equipment
from simulators.dispatch.writer import DispatchWriter
from simulators.marketing.push import notification, send
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import CLOSED_STATUSES, ApplicationRow, MarketingWorld, status_flow
from simulators.pms.changes import ChangeGenerator
from simulators.world import WorldScale, build_world
from store.crypto import keyring_from_settings, keyring_of
from store.database import create_engine, drop_schema
from store.leases import Lease, list_leases
from store.loads import dispatch_file_log, load_measurements, load_profiles, power_factor_curves
from store.schema import case_events, cases, inbox, outbox, parked
from tests.support.auth import INTEGRATOR_API_KEY
from tests.support.instances import Deployment, HubInstance, logs_of, start_instances, stop_instances
from yekuo.consumers import CONSUMERS

SHANGHAI = ZoneInfo("Asia/Shanghai")
LEGACY_TIME = "%Y-%m-%d %H:%M:%S"
TAP_QUEUE = "yekuo.test-tap"
# Where a legacy change enters the hub: the CloudEvent sources of the three systems' routes.
SOURCE_PREFIXES = ("/marketing/", "/pms/", "/dispatch/")
# A customer record has no change time of its own: the hub stages it again with every application version
# that carries it, so its events are not versions of their own.
CUSTOMER_CHANGED = "cn.yekuo.customer.changed.v1"
# What a process logs when it collides with another in the database or fails on an event: each such line
# is a retry the steady run must not have.
COLLISIONS = re.compile(
    r"deadlock detected|UniqueViolation|duplicate key value|could not serialize|failed on event|"
    r"unexpected failure",
    re.IGNORECASE,
)
_STAGES: dict[str, str] = yaml.safe_load(
    (PROJECT_ROOT / "mappings/codes/marketing/status_code.yaml").read_text(encoding="utf-8")
)["codes"]
# The hub has settled once nothing it stores has changed for this long with every queue empty.
_QUIET_S = 4.0
SETTLE_TIMEOUT_S = 1500.0
# The hub runs on the real clock, so the measured days are recent ones: load bases look back from today.
_LOAD_DAYS_AGO = 30


@dataclass(frozen=True)
class StreamPlan:
    """How much flows: the world's size, and what each round of the stream changes."""

    seed: int = 22
    applications: int = 2000
    substations: int = 3
    feeders: int = 30
    transformers: int = 300
    rounds: int = 10
    advances_per_round: int = 250
    archives_per_round: int = 5
    pms_changes_per_round: int = 10
    # Each grid change and load reading also becomes a projection event, on which the feasibility consumer
    # marks every open application near it due for a re-check: the stream is mostly applications.
    measured_feeders: int = 5
    measured_transformers: int = 20
    round_interval_s: float = 2.0


class LegacyWorld:
    """The three simulated systems of one run, built in work_dir from one seed."""

    def __init__(self, plan: StreamPlan, work_dir: Path) -> None:
        self.pms_url = f"sqlite:///{work_dir / 'pms.db'}"
        self.pms_engine = sa.create_engine(self.pms_url)
        scale = WorldScale(
            customers=plan.applications,
            applications=plan.applications,
            substations=plan.substations,
            feeders=plan.feeders,
            transformers=plan.transformers,
            distinct_customers=True,
        )
        shared = build_world(plan.seed, scale, self.pms_engine)
        self.drop_dir = work_dir / "dispatch"
        measured = read_pms_equipment(
            self.pms_engine,
            feeder_count=plan.measured_feeders,
            transformer_count=plan.measured_transformers,
            seed=plan.seed,
        )
        self.writer = DispatchWriter(self.drop_dir / "incoming", measured, seed=plan.seed)
        self.marketing = MarketingWorld(shared.customers, shared.applications)
        self.server = SimulatorServer(self.marketing)

    @property
    def sources(self) -> dict[str, str]:
        """The environment that declares the three sources to `yekuo run`."""
        return {
            "YEKUO_MARKETING__WSDL_URL": self.server.wsdl_url,
            "YEKUO_MARKETING__PAGE_SIZE": "100",
            "YEKUO_MARKETING__POLL_INTERVAL_S": "0.5",
            "YEKUO_PMS__DB_URL": self.pms_url,
            "YEKUO_PMS__OVERLAP_S": "2",
            "YEKUO_DISPATCH__DROP_DIR": str(self.drop_dir),
            "YEKUO_DISPATCH__STABLE_S": "0",
            "YEKUO_DISPATCH__SCAN_INTERVAL_S": "0.2",
        }

    def files_waiting(self) -> int:
        """Dispatch files not yet finished by the hub."""
        return sum(
            len(os.listdir(folder))
            for folder in (self.drop_dir / "incoming", self.drop_dir / "processing")
            if folder.exists()
        )

    def close(self) -> None:
        self.server.stop()
        self.pms_engine.dispose()


class PushSpreader:
    """The load balancer in front of the instances, for the marketing system's pushes.

    Every change of the marketing world is pushed to the next instance in turn; one that does not take it
    (stopped, paused, restarting) passes it to the next. A change nobody takes within give_up_s is left to
    the polls, as the marketing system's queue would give it up.
    """

    def __init__(
        self, world: MarketingWorld, targets: Callable[[], list[str]], give_up_s: float = 30.0
    ) -> None:
        self._world = world
        self._targets = targets
        self._give_up_s = give_up_s
        self._queue: queue.Queue[ApplicationRow | None] = queue.Queue()
        self._turn = itertools.count()
        self._client = httpx2.Client(timeout=2.0)
        self._thread = threading.Thread(target=self._run, name="push spreader", daemon=True)
        self.sent = 0
        self.given_up = 0

    def start(self) -> PushSpreader:
        self._world.subscribe(self._queue.put)
        self._thread.start()
        return self

    def drained(self) -> bool:
        """Whether every change so far was pushed or given up."""
        return self._queue.unfinished_tasks == 0

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(self._give_up_s + 10)
        self._client.close()

    def _run(self) -> None:
        while (row := self._queue.get()) is not None:
            try:
                self._push(row)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _push(self, row: ApplicationRow) -> None:
        body = notification(row, self._world)
        deadline = time.monotonic() + self._give_up_s
        while time.monotonic() < deadline:
            targets = self._targets()
            for offset in range(len(targets)):
                url = targets[(next(self._turn) + offset) % len(targets)]
                try:
                    send(self._client, url, body, INTEGRATOR_API_KEY)
                except (SourceUnavailableError, SourceRejectedError):
                    continue
                self.sent += 1
                return
            time.sleep(0.5)
        self.given_up += 1


class Stream:
    """The rounds of changes to the three systems, run from a thread while the instances work."""

    def __init__(self, plan: StreamPlan, world: LegacyWorld) -> None:
        self.plan = plan
        self.world = world
        self.rounds_done = 0
        self.advanced = 0
        self.archived: list[str] = []
        self.files_written = 0
        self._rng = random.Random(plan.seed)
        self._pms = ChangeGenerator(world.pms_engine, seed=plan.seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> Stream:
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return not self._thread.is_alive() and self.rounds_done > 0

    def wait_round(self, rounds: int, timeout_s: float = 120.0) -> None:
        """Return once this many rounds were run: "mid-stream" for a fault."""
        deadline = time.monotonic() + timeout_s
        while self.rounds_done < rounds:
            if self.error is not None or time.monotonic() > deadline:
                raise AssertionError(f"the stream did not reach round {rounds}: {self.error!r}")
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        try:
            for number in range(self.plan.rounds):
                if number and self._stop.wait(self.plan.round_interval_s):
                    return
                self._round(number)
                self.rounds_done += 1
        except BaseException as exc:
            self.error = exc
            raise

    def _round(self, number: int) -> None:
        marketing = self.world.marketing
        movable = [row["APP_NO"] for row in marketing.all_applications() if _movable(row)]
        chosen = self._rng.sample(movable, min(len(movable), self.plan.advances_per_round))
        for app_no in chosen[self.plan.archives_per_round :]:
            marketing.advance(app_no)
            self.advanced += 1
        # An archive is the change the issue saw lost: every step of the flow in a burst, up to the last.
        for app_no in chosen[: self.plan.archives_per_round]:
            while _movable(row := marketing.application(app_no) or _missing(app_no)):
                marketing.advance(app_no)
                self.advanced += 1
            self.archived.append(row["APP_NO"])
        self._pms.apply(self.plan.pms_changes_per_round)
        self.files_written += len(self.world.writer.write_day(_first_load_day() + timedelta(days=number)))


def _first_load_day() -> date:
    return datetime.now(SHANGHAI).date() - timedelta(days=_LOAD_DAYS_AGO)


def _movable(row: ApplicationRow) -> bool:
    return row["STATUS_CODE"] not in CLOSED_STATUSES and row["STATUS_CODE"] != status_flow(row)[-1]


def _missing(app_no: str) -> ApplicationRow:
    raise AssertionError(f"application {app_no} vanished from the marketing simulator")


class Tap:
    """A queue bound with `#` to every exchange the hub publishes events on: each message that went out."""

    def __init__(self, bus_url: str) -> None:
        self._bus_url = bus_url
        self.exchanges = event_exchanges()

    def declare(self) -> None:
        bus = open_bus(self._bus_url)
        try:
            bus.declare(
                Topology(
                    exchanges=tuple(ExchangeSpec(name) for name in self.exchanges),
                    queues=(
                        QueueSpec(TAP_QUEUE, bindings=tuple(Binding(name, "#") for name in self.exchanges)),
                    ),
                )
            )
        finally:
            bus.close()

    def message_ids(self) -> list[str]:
        """Take every message from the tap; return their ids, repeats included."""
        bus = open_bus(self._bus_url)
        ids: list[str] = []
        try:
            while deliveries := bus.fetch(TAP_QUEUE, 500, 1.0):
                for delivery in deliveries:
                    ids.append(delivery.message.message_id)
                    bus.ack(delivery)
        finally:
            bus.close()
        return ids


def push_targets(instances: Sequence[HubInstance]) -> list[str]:
    """The push endpoints of the instances that run and serve."""
    return [instance.push_url for instance in instances if instance.alive and instance.api_url]


@functools.cache
def event_exchanges() -> tuple[str, ...]:
    """The hub's event exchanges, as yekuo.hub.Hub declares them (read once: settle asks twice a second)."""
    routed = (route.exchange for route in load_hub_config(PROJECT_ROOT).routes)
    return tuple(sorted({"yekuo.events", *routed}))


def broker_queues() -> list[str]:
    """Every queue the hub declares: consumers', retry delays', parking lots'."""
    topology = consumer_topology(
        event_exchanges(), CONSUMERS, RetryPolicy(tuple(DeliverySettings().retry_delays_ms))
    )
    return [spec.name for spec in topology.queues]


def empty_broker(bus_url: str) -> None:
    """Delete the hub's queues and the tap, so the run starts on a broker without messages of earlier runs."""
    bus = open_bus(bus_url)
    try:
        for name in [*broker_queues(), TAP_QUEUE]:
            bus.delete_queue(name)
    finally:
        bus.close()


def queued(bus_url: str) -> int | None:
    """Messages ready in every queue of the hub; None while the broker cannot be asked."""
    try:
        bus = open_bus(bus_url)
    except BusError:
        return None
    try:
        return sum(bus.queue_depth(name) for name in broker_queues())
    except BusError:
        return None
    finally:
        with contextlib.suppress(BusError):
            bus.close()


@dataclass
class ClusterRun:
    """One run: its deployment, legacy world, instances, stream, the tap and the hub database."""

    deployment: Deployment
    world: LegacyWorld
    instances: list[HubInstance]
    stream: Stream
    spreader: PushSpreader
    tap: Tap
    engine: Engine
    started_s: float

    def fingerprint(self) -> tuple[int, ...]:
        """What the hub has stored so far, in a few numbers that change whenever it does anything."""
        with self.engine.connect() as conn:
            return tuple(
                int(conn.execute(query).scalar_one() or 0)
                for query in (
                    sa.select(sa.func.count()).select_from(outbox),
                    sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None)),
                    sa.select(sa.func.count()).select_from(inbox),
                    sa.select(sa.func.sum(cases.c.event_count)),
                    sa.select(sa.func.count()).select_from(dispatch_file_log),
                )
            )

    def settle(self, timeout_s: float = SETTLE_TIMEOUT_S) -> float:
        """Wait until the stream is done and the hub has taken in all of it; return the seconds since start.

        Settled: the stream finished, every push was sent or given up, no file waits in the drop folder,
        nothing is unsent in the outbox or ready in a queue, and the store stayed unchanged for _QUIET_S.
        """
        deadline = time.monotonic() + timeout_s
        quiet_since: float | None = None
        last: tuple[int, ...] = ()
        while True:
            if self.stream.error is not None:
                raise AssertionError(f"the stream failed: {self.stream.error!r}")
            now = time.monotonic()
            busy = (
                not self.stream.done
                or not self.spreader.drained()
                or self.world.files_waiting() > 0
                or queued(self.deployment.bus_url) != 0
            )
            current = self.fingerprint()
            if busy or current != last or current[1] > 0:
                quiet_since, last = None, current
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= _QUIET_S:
                return now - self.started_s
            if now > deadline:
                # Doubled source versions make work for every consumer: say so when they are why.
                doubled = "; ".join(source_versions_once(read_outbox(self.engine))) or "none doubled"
                raise AssertionError(
                    f"not settled within {timeout_s:.0f} s (source versions: {doubled}): "
                    f"stream rounds {self.stream.rounds_done}, "
                    f"files waiting {self.world.files_waiting()}, queued {queued(self.deployment.bus_url)}, "
                    f"store (outbox, unsent, inbox, case events, files) {current}\n{logs_of(self.instances)}"
                )
            time.sleep(0.5)

    def problems(self, *, steady: bool) -> list[str]:
        """Everything that did not take effect exactly once; in a steady run also collisions and doubles
        on the bus."""
        events = read_outbox(self.engine)
        found = [
            *source_versions_once(events),
            *inboxes_complete(self.engine, events),
            *case_counts_match(self.engine),
            *loads_once(self.engine, events, self.stream.files_written),
            *cases_match_source(self.engine, self.world.marketing),
            *nothing_parked(self.engine),
        ]
        if steady:
            found += published_once(events, self.tap.message_ids())
            found += no_collisions(self.instances)
        return found


@dataclass(frozen=True)
class StagedEvent:
    """An outbox row with its event opened."""

    event_id: str
    type: str
    source: str
    subject: str
    routing_key: str
    version: str
    data: dict[str, object]


def read_outbox(engine: Engine) -> list[StagedEvent]:
    """Every staged event; version is its type, subject and data: one source version gives one version."""
    keyring = functools.partial(keyring_of, engine.dialect)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.routing_key, outbox.c.body).order_by(outbox.c.id)).all()
    staged = []
    for row in rows:
        event = decode_event(row.body, keyring)
        version = json.dumps([event.type, event.subject, event.data], sort_keys=True, default=str)
        staged.append(
            StagedEvent(
                event.id, event.type, event.source, event.subject, row.routing_key, version, event.data
            )
        )
    return staged


def _examples(items: Sequence[object], count: int = 3) -> str:
    return "; ".join(str(item)[:300] for item in items[:count])


def source_versions_once(events: Sequence[StagedEvent]) -> list[str]:
    """Each version of a legacy record staged as one event: two ids for one version no inbox can drop."""
    versions = Counter(
        event.version
        for event in events
        if event.source.startswith(SOURCE_PREFIXES) and event.type != CUSTOMER_CHANGED
    )
    doubled = [(version, count) for version, count in versions.items() if count > 1]
    if not doubled:
        return []
    return [
        f"{len(doubled)} of {len(versions)} source versions were staged more than once "
        f"({sum(count - 1 for _, count in doubled)} extra events), e.g. {_examples(doubled)}"
    ]


def published_once(events: Sequence[StagedEvent], tapped: Sequence[str]) -> list[str]:
    """Every staged event went out on the bus exactly once."""
    counts = Counter(tapped)
    found = []
    if len(tapped) != len(counts):
        repeated = [event_id for event_id, count in counts.items() if count > 1]
        found.append(
            f"{len(tapped)} messages reached the bus for {len(counts)} distinct event ids: "
            f"{len(repeated)} events published more than once, e.g. {_examples(repeated)}"
        )
    unpublished = [event.event_id for event in events if event.event_id not in counts]
    if unpublished:
        found.append(f"{len(unpublished)} staged events never reached the bus, e.g. {_examples(unpublished)}")
    return found


def inboxes_complete(engine: Engine, events: Sequence[StagedEvent]) -> list[str]:
    """Each consumer took in every event it binds (its inbox holds an event id at most once by its key)."""
    with engine.connect() as conn:
        taken: dict[str, set[str]] = {}
        for consumer, event_id in conn.execute(sa.select(inbox.c.consumer, inbox.c.event_id)):
            taken.setdefault(consumer, set()).add(event_id)
    staged = {event.event_id for event in events}
    found = []
    for spec in CONSUMERS:
        mine = taken.get(spec.name, set())
        bound = [e.event_id for e in events if any(topic_matches(t, e.routing_key) for t in spec.topics)]
        missing = [event_id for event_id in bound if event_id not in mine]
        if missing:
            found.append(f"consumer {spec.name} never took {len(missing)} of {len(bound)} events it binds")
        strange = mine - staged
        if strange:
            found.append(f"consumer {spec.name} took {len(strange)} event ids the outbox never staged")
    return found


def case_counts_match(engine: Engine) -> list[str]:
    """A case's event_count is the number of distinct events it was folded from: no fold overwrote another."""
    folded = (
        sa.select(case_events.c.application_no, sa.func.count().label("events"))
        .group_by(case_events.c.application_no)
        .subquery()
    )
    query = sa.select(cases.c.application_no, cases.c.event_count, folded.c.events).join(
        folded, folded.c.application_no == cases.c.application_no, isouter=True
    )
    with engine.connect() as conn:
        wrong = [row for row in conn.execute(query) if row.event_count != (row.events or 0)]
    if not wrong:
        return []
    examples = [f"{row.application_no}: event_count {row.event_count}, events {row.events}" for row in wrong]
    return [
        f"{len(wrong)} cases count other events than they hold (lost updates), e.g. {_examples(examples)}"
    ]


def loads_once(engine: Engine, events: Sequence[StagedEvent], files_written: int) -> list[str]:
    """Each dispatch file published once, each load reading staged once and stored once."""
    with engine.connect() as conn:
        log = conn.execute(sa.select(dispatch_file_log.c.file_name, dispatch_file_log.c.outcome)).all()
        stored = sum(
            int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
            for table in (load_profiles, power_factor_curves, load_measurements)
        )
    found = []
    published = Counter(row.file_name for row in log if row.outcome == "published")
    if len(published) != files_written or set(published.values()) != {1}:
        found.append(
            f"{files_written} dispatch files written, {len(published)} published, "
            f"outcomes {Counter(row.outcome for row in log)}, published twice: "
            f"{[name for name, count in published.items() if count > 1][:3]}"
        )
    readings = {event.version for event in events if event.type.startswith("cn.yekuo.load.")}
    if stored != len(readings):
        found.append(f"{len(readings)} load readings staged, {stored} rows stored")
    return found


def cases_match_source(engine: Engine, world: MarketingWorld) -> list[str]:
    """Every case is in the state its application has in the marketing system."""
    with engine.connect() as conn:
        held = {row.application_no: row for row in conn.execute(sa.select(cases))}
    wrong = []
    for row in world.all_applications():
        case = held.get(row["APP_NO"])
        if case is None:
            wrong.append(f"{row['APP_NO']}: no case")
            continue
        updated = datetime.strptime(row["UPDATE_TIME"], LEGACY_TIME).replace(tzinfo=SHANGHAI)
        application = case.application
        seen = datetime.fromisoformat(str(application["updated_at"]))
        closed = row["STATUS_CODE"] == status_flow(row)[-1] or row["STATUS_CODE"] in CLOSED_STATUSES
        if (
            application.get("legacy_status") != row["STATUS_CODE"]
            or seen != updated
            or case.stage != _STAGES[row["STATUS_CODE"]]
            or (case.status == "closed") != closed
        ):
            wrong.append(
                f"{row['APP_NO']}: source STATUS_CODE {row['STATUS_CODE']} at {row['UPDATE_TIME']}, case "
                f"{case.status}/{case.stage} from {application.get('legacy_status')} at {seen}"
            )
    if not wrong:
        return []
    return [f"{len(wrong)} cases differ from their source, e.g. {_examples(wrong)}"]


def nothing_parked(engine: Engine) -> list[str]:
    """No record or message of a clean world was parked."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(parked.c.kind, parked.c.reason_code, parked.c.record_key)).all()
    if not rows:
        return []
    return [f"{len(rows)} parked: {Counter((row.kind, row.reason_code) for row in rows)}"]


def no_collisions(instances: Sequence[HubInstance]) -> list[str]:
    """No process logged a deadlock, unique violation or failed event: retries a steady run must not need."""
    found = []
    for instance in instances:
        lines = [line for line in instance.log_text().splitlines() if COLLISIONS.search(line)]
        if lines:
            found.append(
                f"{instance.name} logged {len(lines)} collisions or failures, e.g. {_examples(lines)}"
            )
    return found


def source_event_count(events: Sequence[StagedEvent]) -> Counter[str]:
    """Staged events of each legacy system: what the run fed through it."""
    return Counter(event.source.split("/")[1] for event in events if event.source.startswith(SOURCE_PREFIXES))


def hub_engine(db_url: str, deployment: Deployment) -> Engine:
    """The test's own connection to the hub database, with the deployment's key for personal data."""
    keys = {key_id: SecretStr(key) for key_id, key in json.loads(deployment.pii_keys).items()}
    return create_engine(db_url, keyring=keyring_from_settings(PiiSettings(keys=keys)))


@contextmanager
def cluster_run(
    plan: StreamPlan, work_dir: Path, *, db_url: str, bus_url: str, instances: int, lease_ttl_s: float = 3.0
) -> Iterator[ClusterRun]:
    """Empty the hub database and the broker, build the legacy world, start the instances at once.

    The stream is not started: the test starts it (run.stream.start()) and acts on it.
    """
    world = LegacyWorld(plan, work_dir)
    deployment = Deployment(db_url=db_url, bus_url=bus_url, sources=world.sources, lease_ttl_s=lease_ttl_s)
    engine = hub_engine(db_url, deployment)
    drop_schema(engine)
    empty_broker(bus_url)
    tap = Tap(bus_url)
    tap.declare()
    world.server.start()
    started: list[HubInstance] = []
    spreader: PushSpreader | None = None
    stream = Stream(plan, world)
    try:
        started_s = time.monotonic()
        started = start_instances(deployment, work_dir, instances)
        spreader = PushSpreader(world.marketing, functools.partial(push_targets, started)).start()
        yield ClusterRun(deployment, world, started, stream, spreader, tap, engine, started_s)
    finally:
        stream.stop()
        if spreader is not None:
            spreader.stop()
        stop_instances(started)
        world.close()
        engine.dispose()


def leases(engine: Engine) -> dict[str, Lease]:
    """Every duty's lease, by duty."""
    with engine.connect() as conn:
        return {lease.duty: lease for lease in list_leases(conn)}


def holder_of(
    engine: Engine, duty: str, instances: Sequence[HubInstance], timeout_s: float = 30.0
) -> HubInstance:
    """The instance holding a duty, once one does."""
    deadline = time.monotonic() + timeout_s
    by_name = {instance.name: instance for instance in instances}
    while True:
        lease = leases(engine).get(duty)
        if lease is not None and lease.owner in by_name:
            return by_name[lease.owner]
        if time.monotonic() > deadline:
            raise AssertionError(f"nobody holds {duty} after {timeout_s:.0f} s: {lease}")
        time.sleep(0.2)


def wait_taken_over(engine: Engine, duties: Sequence[str], by: HubInstance, timeout_s: float) -> float:
    """Wait until `by` holds every duty under a new fencing token; return the seconds it took."""
    started = time.monotonic()
    before = leases(engine)

    def taken(duty: str, now: dict[str, Lease]) -> bool:
        lease = now.get(duty)
        return lease is not None and lease.owner == by.name and lease.token > before[duty].token

    while not all(taken(duty, now := leases(engine)) for duty in duties):
        if time.monotonic() - started > timeout_s:
            raise AssertionError(
                f"{by.name} did not take over {', '.join(duties)} within {timeout_s:.1f} s: "
                f"{[now.get(duty) for duty in duties]}"
            )
        time.sleep(0.1)
    return time.monotonic() - started
