"""`yekuo sim all`: the marketing, PMS and dispatch simulators together on one seeded world.

The PMS database is seeded first (or kept, if it holds a grid); the marketing system's customers are
placed on that grid (simulators/world.py) and served over SOAP; the dispatch simulator writes load files
for the same feeders and transformers. PMS and dispatch keep changing in background threads; the marketing
simulator serves in the foreground until interrupted.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from ground.webserver import base_url_of, bind_socket, serve_forever
from simulators.dispatch import runner as dispatch_runner
from simulators.dispatch.faults import Fault as DispatchFault
from simulators.marketing.app import ENDPOINT_PATH, create_app
from simulators.marketing.faults import FaultPlan
from simulators.marketing.world import MarketingWorld
from simulators.pms import runner as pms_runner
from simulators.pms.schema import drop_pms_schema
from simulators.world import WorldScale, build_world, dispatch_equipment


@dataclass(frozen=True)
class SuiteOptions:
    """Everything `yekuo sim all` takes; see its --help."""

    host: str
    port: int
    seed: int
    scale: WorldScale
    pms_db_url: str
    reset: bool
    pms_interval_s: float
    pms_changes: int
    dispatch_out: Path
    dispatch_interval_s: float
    dispatch_days: int | None
    dispatch_start: date | None
    dispatch_faults: Sequence[DispatchFault]
    dispatch_fault_rate: float
    marketing_faults: Sequence[str]


def run_suite(options: SuiteOptions, *, out: Callable[[str], None] = print) -> None:
    """Seed the world, start PMS and dispatch in threads, serve the marketing system until interrupted."""
    plan = FaultPlan.parse(options.marketing_faults)
    url = sa.engine.make_url(options.pms_db_url)
    if url.get_backend_name() == "sqlite" and url.database:
        # The default sqlite:///var/pms.db works from a fresh checkout.
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, pool_pre_ping=True)
    try:
        if options.reset:
            drop_pms_schema(engine)
        world = build_world(options.seed, options.scale, engine)
        equipment = dispatch_equipment(engine, options.seed)
    finally:
        engine.dispose()
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=pms_runner.run,
            args=(options.pms_db_url, options.seed),
            kwargs={
                "interval_s": options.pms_interval_s,
                "changes_per_tick": options.pms_changes,
                "out": lambda line: out(f"pms: {line}"),
                "stop": stop,
            },
            name="pms simulator",
            daemon=True,
        ),
        threading.Thread(
            target=dispatch_runner.run,
            args=(options.dispatch_out, options.seed),
            kwargs={
                "equipment": equipment,
                "start": options.dispatch_start,
                "days": options.dispatch_days,
                "interval_s": options.dispatch_interval_s,
                "faults": options.dispatch_faults,
                "fault_rate": options.dispatch_fault_rate,
                "out": lambda line: out(f"dispatch: {line}"),
                "stop": stop,
            },
            name="dispatch simulator",
            daemon=True,
        ),
    ]
    options.dispatch_out.mkdir(parents=True, exist_ok=True)
    sock = bind_socket(options.host, options.port)
    out(
        f"one world, seed {options.seed}: {len(world.customers)} customers and {len(world.applications)} "
        f"applications on {options.scale.substations} substations, {options.scale.feeders} feeders and "
        f"{options.scale.transformers} transformers"
    )
    out(f"marketing WSDL: {base_url_of(sock)}{ENDPOINT_PATH}?wsdl")
    out(f"PMS database: {options.pms_db_url}")
    out(f"dispatch files: {options.dispatch_out}")
    for thread in threads:
        thread.start()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            serve_forever(create_app(MarketingWorld(world.customers, world.applications), faults=plan), sock)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10.0)
