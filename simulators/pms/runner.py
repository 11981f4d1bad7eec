"""`yekuo sim pms`: seed a PMS database at a URL, then keep changing it like its users do."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable

import sqlalchemy as sa

from ground.errors import ConfigError
from simulators.pms.changes import ChangeGenerator
from simulators.pms.schema import create_pms_schema, drop_pms_schema, substations
from simulators.pms.seed import seed_database


def run(
    db_url: str,
    seed: int,
    *,
    substation_count: int = 100,
    feeder_count: int = 2000,
    transformer_count: int = 50000,
    reset: bool = False,
    interval_s: float = 5.0,
    changes_per_tick: int = 20,
    ticks: int | None = None,
    out: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> int:
    """Seed the database if its PMS tables are empty (or reset), then change it every interval_s.

    Runs until interrupted, or for `ticks` rounds of changes; returns how many rows it changed.
    """
    if interval_s < 0 or changes_per_tick < 0:
        raise ConfigError(
            f"interval and changes per tick must not be negative: {interval_s}, {changes_per_tick}"
        )
    engine = sa.create_engine(db_url, pool_pre_ping=True)
    stop = stop or threading.Event()
    try:
        if reset:
            drop_pms_schema(engine)
        create_pms_schema(engine)
        with engine.connect() as conn:
            seeded = conn.execute(sa.select(sa.func.count()).select_from(substations)).scalar_one() > 0
        if seeded:
            out(f"PMS simulator: keeping the data already in {engine.url.render_as_string()}")
        else:
            seed_database(
                engine,
                seed=seed,
                substation_count=substation_count,
                feeder_count=feeder_count,
                transformer_count=transformer_count,
                progress=out,
            )
        out(f"PMS simulator: database {engine.url.render_as_string()} (seed {seed}); Ctrl-C to stop")
        generator = ChangeGenerator(engine, seed=seed)
        changed = 0
        tick = 0
        with contextlib.suppress(KeyboardInterrupt):
            while ticks is None or tick < ticks:
                if tick and stop.wait(interval_s):
                    break
                tick += 1
                rows = min(changes_per_tick, generator.untouched)
                if rows == 0:
                    out("PMS simulator: every seeded transformer has been changed once; stopping")
                    break
                done = generator.apply(rows)
                changed += sum(len(change.keys) for change in done)
                kinds = Counter(change.kind.value for change in done for _ in change.keys)
                out(f"tick {tick}: " + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())))
        return changed
    finally:
        engine.dispose()
