"""The feasibility consumer under a stream of grid and load changes: its queue's depth, then its drain.

Open applications are seeded on a compact grid (transformers on feeders of two substations, all within a
4 km square, the applications' sites in the same square), each assessed once. Then, for a while, the
bench stores changes as the grid and loads consumers do (a transformer's new peak of the day, or a new
rating) and stages each one's projection notice in the same transaction. The outbox relay publishes the
notices and the feasibility consumer's own results to the benchmark's exchange, and the real feasibility
consumer (its handler, keys and deferred step, InboxConsumer.work_once) applies them from its queue, as
`yekuo run` does, each in its own thread. The feasibility queue's depth is sampled throughout. Once the
changes stop, the clock runs until the queue, the due re-checks and the outbox are all empty.

At the end every open application is re-assessed once more from what is stored, its inputs' fingerprint
cleared first so that none is skipped as unchanged: the applications whose verdict or reservations that
changes say whether the coalesced re-checks left what a fresh evaluation after the last change gives.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench.env import BENCH_EXCHANGE
from bench.feasibility_latency import CENTRE, profile_row, random_point, store_grid_items
from bus.rabbitmq import RabbitMQBus
from canonical_model.application import (
    BusinessType,
    ConnectionApplication,
    CustomerClass,
    SubmissionChannel,
)
from canonical_model.common import GeoPoint, UrbanRural
from canonical_model.events import FEASIBILITY_ASSESSED, PROJECTION_UPDATED, listed
from canonical_model.projection import Projection, ProjectionUpdate
from feasibility.config import load_feasibility_config
from feasibility.consumer import ASSESSING_TYPES, FeasibilityHandler
from feasibility.engine import FEEDER, MAIN_TRANSFORMER, SUBSTATION, TRANSFORMER, Equipment
from feasibility.service import FeasibilityService
from ground.settings import PROJECT_ROOT
from pipeline.consumer import InboxConsumer, KeyedHandler
from pipeline.consumers import ConsumerSpec
from pipeline.outbox import OutboxRelay, pending_count, stage_event
from pipeline.records import EventDraft
from store.feasibility import capacity_reservations, count_due, feasibility_assessments
from store.grid import bump_grid_revision, grid_equipment
from store.loads import load_profiles
from store.schema import outbox
from workflow.projection import routing_key

SHANGHAI = ZoneInfo("Asia/Shanghai")
SPAN_M = 4_000
FEEDERS_PER_SUBSTATION = 6
# A quarter of the changes re-rate a transformer (a grid notice, with its place); the rest are a new peak.
GRID_SHARE = 0.25
SAMPLE_EVERY_S = 0.5


@dataclass(frozen=True)
class BacklogFigures:
    """What one run of the scenario measured."""

    applications: int
    transformers: int
    changes: int
    stream_s: float
    max_queue: int
    mean_queue: float
    drain_s: float | None
    drain_limit_s: float
    handled: int
    assessed: int
    final_changed: int


def compact_grid(transformers: int, seed: int = 17) -> list[Equipment]:
    """Two substations, six feeders each, the transformers spread over the feeders in a 4 km square."""
    rng = random.Random(seed)
    items: list[Equipment] = []
    for s in range(2):
        lon, lat = random_point(rng, within_m=SPAN_M)
        items.append(Equipment(SUBSTATION, f"S{s}", f"S{s}", lon=lon, lat=lat, voltage_kv=110))
        items += [
            Equipment(MAIN_TRANSFORMER, f"S{s}-T{t}", substation_id=f"S{s}", rated_kva=50_000)
            for t in range(2)
        ]
    feeders = 2 * FEEDERS_PER_SUBSTATION
    for f in range(feeders):
        lon, lat = random_point(rng, within_m=SPAN_M)
        items.append(
            Equipment(
                FEEDER,
                f"F{f}",
                f"F{f}",
                lon=lon,
                lat=lat,
                substation_id=f"S{f % 2}",
                voltage_kv=10,
                allowed_current_a=485,
                tie_switches=2,
            )
        )
    for t in range(transformers):
        lon, lat = random_point(rng, within_m=SPAN_M)
        items.append(
            Equipment(
                TRANSFORMER,
                f"T{t}",
                f"T{t}",
                lon=lon,
                lat=lat,
                feeder_id=f"F{t % feeders}",
                substation_id=f"S{t % feeders % 2}",
                rated_kva=rng.choice((315, 400, 630)),
                voltage_kv=10,
            )
        )
    return items


def _capacity(item: Equipment) -> float:
    return item.rated_kva or 1.732 * 10 * (item.allowed_current_a or 0)


def _seed(engine: Engine, service: FeasibilityService, items: list[Equipment], applications: int) -> None:
    """The grid, today's peak of every piece of equipment, and the applications, each assessed once."""
    rng = random.Random(19)
    now = datetime.now(UTC)
    today = now.astimezone(SHANGHAI).date()
    store_grid_items(engine, items)
    rows = [
        profile_row(item.equipment_id, today, round(_capacity(item) * rng.uniform(0.2, 0.6) * 0.9, 1), now)
        for item in items
        if item.kind != SUBSTATION
    ]
    with engine.begin() as conn:
        conn.execute(load_profiles.insert(), rows)
    for start in range(0, applications, 50):
        with engine.begin() as conn:
            for index in range(start, min(start + 50, applications)):
                lon, lat = random_point(rng, within_m=SPAN_M)
                number = f"BL{index:05d}"
                application = ConnectionApplication(
                    application_no=number,
                    business_type=BusinessType.NEW_CONNECTION,
                    customer_no=f"C{number}",
                    requested_capacity_kva=rng.choice((30.0, 50.0, 100.0, 630.0)),
                    customer_class=CustomerClass.LV_NON_RESIDENTIAL,
                    site_location=GeoPoint(lon=lon, lat=lat),
                    channel=SubmissionChannel.ONLINE,
                    submitted_at=now,
                    updated_at=now,
                    stage="acceptance",
                    urban_rural=UrbanRural.URBAN,
                )
                service.assess_application(conn, application, correlation_id=f"seed-{number}")


def _change(engine: Engine, rng: random.Random, transformers: list[Equipment]) -> None:
    """Store one change as the grid or loads consumer would, its notice staged in the same transaction."""
    item = rng.choice(transformers)
    now = datetime.now(UTC)
    if rng.random() < GRID_SHARE:
        rated = rng.choice((315, 400, 630))
        update = ProjectionUpdate(
            projection=Projection.GRID,
            equipment_id=item.equipment_id,
            equipment_kind="transformer",
            location=GeoPoint(lon=item.lon or CENTRE.lon, lat=item.lat or CENTRE.lat),
            source_event_id=str(uuid.uuid4()),
            source_event_type="cn.yekuo.grid.transformer.changed.v1",
        )
    else:
        peak = round(_capacity(item) * rng.uniform(0.2, 0.7) * 0.9, 1)
        update = ProjectionUpdate(
            projection=Projection.LOADS,
            equipment_id=item.equipment_id,
            data_date=now.astimezone(SHANGHAI).date(),
            source_event_id=str(uuid.uuid4()),
            source_event_type="cn.yekuo.load.profile.recorded.v1",
        )
    with engine.begin() as conn:
        if update.projection is Projection.GRID:
            table = grid_equipment
            where = (table.c.kind == TRANSFORMER, table.c.equipment_id == item.equipment_id)
            document = dict(conn.execute(sa.select(table.c.document).where(*where)).scalar_one())
            document["rated_capacity_kva"] = rated
            conn.execute(
                table.update()
                .where(*where)
                .values(document=document, revision=bump_grid_revision(conn), updated_at=now)
            )
        else:
            table = load_profiles
            conn.execute(
                table.update()
                .where(table.c.equipment_id == item.equipment_id, table.c.data_date == update.data_date)
                .values(peak_kw=peak, updated_at=now)
            )
        stage_event(
            conn,
            EventDraft(
                event_type=PROJECTION_UPDATED,
                source=f"/hub/projection/{update.projection.value}",
                subject=item.equipment_id,
                dataschema=listed(PROJECTION_UPDATED).dataschema,
                data=update.model_dump(mode="json", exclude_none=True),
                exchange=BENCH_EXCHANGE,
                routing_key=routing_key(update),
            ),
            correlation_id=str(uuid.uuid4()),
        )


def _assessed(engine: Engine) -> int:
    with engine.connect() as conn:
        query = (
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.event_type == FEASIBILITY_ASSESSED)
        )
        return int(conn.execute(query).scalar_one())


def _outcomes(engine: Engine) -> dict[str, tuple[str, tuple[tuple[str, float], ...]]]:
    """Each open application's verdict and reservations (equipment, kVA)."""
    table = capacity_reservations
    with engine.connect() as conn:
        held: dict[str, list[tuple[str, float]]] = {}
        for row in conn.execute(sa.select(table.c.application_no, table.c.equipment_id, table.c.kva)):
            held.setdefault(row.application_no, []).append((row.equipment_id, float(row.kva)))
        verdicts = conn.execute(
            sa.select(feasibility_assessments.c.application_no, feasibility_assessments.c.verdict).where(
                feasibility_assessments.c.is_open
            )
        ).all()
    return {number: (verdict, tuple(sorted(held.get(number, [])))) for number, verdict in verdicts}


def measure_backlog(
    engine: Engine,
    amqp_url: str,
    spec: ConsumerSpec,
    *,
    applications: int,
    transformers: int,
    stream_s: float,
    changes_per_s: float,
    drain_limit_s: float,
) -> BacklogFigures:
    """Run the scenario on a fresh engine whose queues (spec's) are declared and empty (see the module)."""
    service = FeasibilityService(load_feasibility_config(PROJECT_ROOT), exchange=BENCH_EXCHANGE)
    handler = FeasibilityHandler(service)
    items = compact_grid(transformers)
    _seed(engine, service, items, applications)
    seeded = _assessed(engine)
    stop_changes = threading.Event()
    stop_all = threading.Event()
    failures: list[BaseException] = []
    counts = {"changes": 0, "handled": 0}

    def guarded(step: Any) -> Any:
        def run() -> None:
            try:
                step()
            except BaseException as exc:
                failures.append(exc)
                stop_changes.set()
                stop_all.set()

        return run

    def changes() -> None:
        rng = random.Random(23)
        grid = [item for item in items if item.kind == TRANSFORMER]
        started = time.monotonic()
        while not stop_changes.is_set():
            due = started + counts["changes"] / changes_per_s
            pause = due - time.monotonic()
            if pause > 0:
                stop_changes.wait(pause)
                continue
            _change(engine, rng, grid)
            counts["changes"] += 1

    def relay() -> None:
        with RabbitMQBus(amqp_url) as bus:
            relaying = OutboxRelay(engine, bus)
            while not stop_all.is_set():
                if not relaying.relay_batches():
                    stop_all.wait(0.05)

    def consume() -> None:
        keyed = KeyedHandler(handler, handler.keys, alone_types=ASSESSING_TYPES)
        with RabbitMQBus(amqp_url) as bus:
            consumer = InboxConsumer(
                engine, bus, queue=spec.queue, name=spec.name, handler=keyed, deferred=handler.drain
            )
            while not stop_all.is_set():
                consumer.work_once()
            counts["handled"] = consumer.stats.handled

    threads = [threading.Thread(target=guarded(step)) for step in (changes, relay, consume)]
    depths: list[int] = []
    drained_after: float | None = None
    with RabbitMQBus(amqp_url) as sampler:
        for thread in threads:
            thread.start()
        started = time.monotonic()
        while time.monotonic() - started < stream_s and not failures:
            depths.append(sampler.queue_depth(spec.queue))
            time.sleep(SAMPLE_EVERY_S)
        stop_changes.set()
        threads[0].join()
        stopped = time.monotonic()
        while not failures and time.monotonic() - stopped < drain_limit_s:
            depth = sampler.queue_depth(spec.queue)
            depths.append(depth)
            with engine.connect() as conn:
                idle = depth == 0 and count_due(conn) == 0 and pending_count(conn) == 0
            if idle:
                drained_after = time.monotonic() - stopped
                break
            time.sleep(0.1)
        stop_all.set()
        for thread in threads[1:]:
            thread.join(timeout=60)
    if failures:
        raise RuntimeError(f"the backlog scenario failed: {failures[0]!r}") from failures[0]
    settled = _assessed(engine)
    outcomes = _outcomes(engine)
    with engine.begin() as conn:
        # Without its fingerprint each application is evaluated afresh: reassess would skip those whose
        # fingerprint is unchanged, and an input the fingerprint misses could then never show here.
        conn.execute(
            feasibility_assessments.update()
            .where(feasibility_assessments.c.is_open.is_(True))
            .values(inputs_fingerprint=None)
        )
        service.reassess(conn, list(outcomes), correlation_id="bench-final")
    final = _outcomes(engine)
    final_changed = sum(1 for number, outcome in outcomes.items() if final.get(number) != outcome)
    assessed = settled - seeded
    return BacklogFigures(
        applications=applications,
        transformers=transformers,
        changes=counts["changes"],
        stream_s=stream_s,
        max_queue=max(depths, default=0),
        mean_queue=statistics.fmean(depths) if depths else 0.0,
        drain_s=drained_after,
        drain_limit_s=drain_limit_s,
        handled=counts["handled"],
        assessed=assessed,
        final_changed=final_changed,
    )
