"""`yekuo sim dispatch`: write dispatch and metering load files into a folder on a schedule, with faults.

Every interval_s one simulated day passes, starting at `start`: its good files are written (see files.py),
then, with probability fault_rate, one faulty file. Faulty files take the enabled triggers in turn, so
fault_rate 1 over len(faults) days writes each trigger once. A manifest (JSON lines, one per file with the
outcome the hub should reach) can be kept outside the folder the hub reads.
"""

from __future__ import annotations

import functools
import json
import random
import threading
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ground import clock
from ground.errors import ConfigError
from simulators.dispatch.equipment import Equipment, EquipmentKind, pms_equipment, read_pms_equipment
from simulators.dispatch.faults import Fault
from simulators.dispatch.files import WrittenFile
from simulators.dispatch.writer import DEFAULT_OVERSIZE_BYTES, DispatchWriter

# Legacy systems stamp local times in Asia/Shanghai.
DISPATCH_ZONE = ZoneInfo("Asia/Shanghai")


def choose_equipment(
    pms_db: str | None, *, pms_seed: int, feeders: int, transformers: int, seed: int
) -> list[Equipment]:
    """A seeded sample of the feeders and transformers of a PMS database.

    Without a database: of the grid `yekuo sim pms --seed pms_seed` seeds with its default sizes, seeded
    here in memory, so the ids and names are the ones the hub gets from that simulator.
    """
    if pms_db is None:
        sizes = {"feeder_count": feeders, "transformer_count": transformers}
        return pms_equipment(pms_seed=pms_seed, seed=seed, **sizes)
    engine = sa.create_engine(pms_db)
    try:
        return read_pms_equipment(engine, feeder_count=feeders, transformer_count=transformers, seed=seed)
    finally:
        engine.dispose()


def run(
    out_dir: Path,
    seed: int,
    *,
    equipment: Sequence[Equipment] | None = None,
    start: date | None = None,
    days: int | None = None,
    interval_s: float = 10.0,
    faults: Sequence[Fault] = (),
    fault_rate: float = 0.0,
    oversize_bytes: int = DEFAULT_OVERSIZE_BYTES,
    hold_s: float = 5.0,
    manifest: Path | None = None,
    out: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> list[WrittenFile]:
    """Write `days` simulated days of files (None: until stopped) and return what was written.

    equipment: what to measure; by default a seeded sample of the grid `yekuo sim pms` seeds.
    """
    if interval_s < 0 or hold_s < 0 or not 0.0 <= fault_rate <= 1.0:
        raise ConfigError(
            f"interval and hold must not be negative and the fault rate must lie in [0, 1]: "
            f"{interval_s}, {hold_s}, {fault_rate}"
        )
    if fault_rate > 0 and not faults:
        raise ConfigError("a fault rate needs at least one fault trigger (--faults)")
    stop = stop or threading.Event()
    if equipment is None:
        out("dispatch simulator: reading the PMS simulator's grid (seeded, in memory)")
        equipment = pms_equipment(seed=seed)
    writer = DispatchWriter(
        out_dir,
        equipment,
        seed=seed,
        oversize_bytes=oversize_bytes,
        pause=functools.partial(_hold, stop, hold_s),
    )
    rng = random.Random(seed)
    day = start or clock.now().astimezone(DISPATCH_ZONE).date() - timedelta(days=7)
    lines = sum(1 for item in writer.feeders if item.kind is EquipmentKind.FEEDER)
    mains = f"{len(writer.feeders) - lines} main transformers, " if len(writer.feeders) > lines else ""
    out(
        f"dispatch simulator: writing into {out_dir} from {day} (seed {seed}, {lines} feeders, {mains}"
        f"{len(writer.transformers)} transformers); Ctrl-C to stop"
    )
    written: list[WrittenFile] = []
    faulty = 0
    ticks = 0
    while (days is None or ticks < days) and not stop.is_set():
        files = writer.write_day(day)
        if faults and rng.random() < fault_rate:
            files.append(writer.write_fault(faults[faulty % len(faults)], day))
            faulty += 1
        for item in files:
            out(f"wrote {item.name}: {item.rows} rows" + (f" (fault {item.fault})" if item.fault else ""))
        if manifest is not None:
            with manifest.open("a", encoding="utf-8") as file:
                for item in files:
                    file.write(json.dumps(item.as_dict(), ensure_ascii=False) + "\n")
        written += files
        ticks += 1
        day += timedelta(days=1)
        if days is None or ticks < days:
            stop.wait(interval_s)
    return written


def _hold(stop: threading.Event, seconds: float) -> None:
    stop.wait(seconds)
