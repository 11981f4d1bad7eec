"""Benchmark of the dispatch file intake: time, rows/s and peak RSS for 10k, 100k and 1M-row files.

Usage: .venv/bin/python bench/file_feed.py [--quick] [--sizes 10000,100000] [--formats cime,csv]
                                          [--workdir DIR] [--db-url URL] [--keep] [--json OUT]

For each format and size it writes a file (streamed, so writing takes no memory either), then runs the
intake on it in a fresh Python process against a fresh hub database (SQLite in the work folder unless
--db-url is given), so each peak RSS is that of one intake run alone. The CIM/E file is a telemetry dump
(<Analog::南阳> rows, GBK); the CSV file holds 96-point daily curves (one LoadProfile per row), the heavier
of the two per row. The intake logs its progress while it reads. --quick runs 10k and 40k rows only.
--json writes every run's figures to OUT as {"runs": [{format, rows, seconds, peak_rss_mib, ...}]}, which
`python -m bench` reads into its table.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 40_000)
FORMATS = ("cime", "csv")
EQUIPMENT = 50_000
_VARIANTS = 64


def _cime_lines(rows: int) -> Iterator[str]:
    rng = random.Random(1)
    start = datetime(2026, 11, 20)
    yield "<! System=D5000 Version=1.0 Code=GBK Data=1.0 Type=Analog Time='2026-11-21 00:00:00' !>\n"
    yield "<Analog::南阳>\n"
    yield "@\tNum\tmRID\tname\tequipment\tmeasurementType\tvalue\tunit\tquality\ttime\n"
    yield "//\t序号\t标识\t名称\t所属设备\t量测类型\t值\t单位\t质量码\t时标\n"
    values = [f"{rng.uniform(0.5, 9.5):.4f}" for _ in range(_VARIANTS)]
    for n in range(rows):
        feeder = f"XL{n % EQUIPMENT:06d}"
        moment = start + timedelta(minutes=15 * (n // EQUIPMENT))
        quality = "0" if n % 97 else "128"
        yield (
            f"#\t{n + 1}\t{feeder}-P\t10kV卧龙{n % EQUIPMENT}线有功\t{feeder}\tP\t{values[n % _VARIANTS]}\tMW"
            f"\t{quality}\t'{moment:%Y-%m-%d %H:%M:%S}'\n"
        )
    yield "</Analog::南阳>\n"


def _csv_lines(rows: int) -> Iterator[str]:
    rng = random.Random(2)
    first = date(2026, 1, 1)
    yield "ID,DATA_DATE,DATA_TYPE," + ",".join(f"P{n}" for n in range(1, 97)) + "\n"
    curves = [",".join(f"{rng.uniform(20, 400):.3f}" for _ in range(96)) for _ in range(_VARIANTS)]
    for n in range(rows):
        day = first + timedelta(days=n // EQUIPMENT)
        yield f"PB{n % EQUIPMENT:07d},{day.isoformat()},1,{curves[n % _VARIANTS]}\n"


def write_file(path: Path, file_format: str, rows: int) -> None:
    """Write a benchmark file of `rows` data rows."""
    lines = _cime_lines(rows) if file_format == "cime" else _csv_lines(rows)
    encoding = "gbk" if file_format == "cime" else "utf-8"
    with path.open("w", encoding=encoding, newline="") as file:
        file.writelines(lines)


def child(path: Path, db_url: str, progress_every: int) -> None:
    """Run the intake on one file in this process and print one JSON line of figures."""
    from adapters.dispatch.dropfolder import DropFolder
    from adapters.dispatch.intake import DispatchFeed
    from ground.logs import configure
    from ground.settings import PROJECT_ROOT
    from pipeline.config import load_hub_config
    from pipeline.files import FileIngestor
    from store.database import create_engine, create_schema

    configure(logging.INFO)
    engine = create_engine(db_url)
    create_schema(engine)
    folder = DropFolder(path.parent.parent, stable_s=0.0)
    feed = DispatchFeed(folder, max_file_bytes=1 << 40)
    intake = FileIngestor(
        engine, load_hub_config(PROJECT_ROOT).router, feed, progress_every_rows=progress_every
    )
    claim = folder.claim(path.name)
    if claim is None:
        raise SystemExit(f"could not claim {path}")
    started = time.perf_counter()
    outcome = intake.take(feed.open(claim))
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "outcome": outcome.outcome,
                "rows": outcome.rows,
                "events": outcome.events,
                "invalid": outcome.invalid,
                "bytes": outcome.size_bytes,
                "seconds": round(elapsed, 2),
                "peak_rss_mib": round(peak_kib / 1024, 1),
                "reason": outcome.reason,
            }
        ),
        flush=True,
    )
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10k and 40k rows only")
    parser.add_argument("--sizes", help="comma-separated row counts (overrides --quick)")
    parser.add_argument("--formats", default=",".join(FORMATS), help="cime, csv or both")
    parser.add_argument("--workdir", help="where files and databases go (default: a temporary folder)")
    parser.add_argument("--db-url", help="hub database (default: a fresh SQLite file per run)")
    parser.add_argument("--keep", action="store_true", help="keep the files and databases")
    parser.add_argument("--json", help="also write the figures of every run to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--progress-every", type=int, default=100_000, help="log progress every N rows")
    args = parser.parse_args(argv)
    if args.child:
        child(Path(args.child), args.db_url, args.progress_every)
        return 0
    sizes = (
        tuple(int(size) for size in args.sizes.split(","))
        if args.sizes
        else (QUICK_SIZES if args.quick else SIZES)
    )
    formats = [name.strip() for name in args.formats.split(",") if name.strip()]
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="yekuo-bench-"))
    results = []
    try:
        for file_format in formats:
            for rows in sizes:
                run_dir = work / f"{file_format}-{rows}"
                shutil.rmtree(run_dir, ignore_errors=True)
                incoming = run_dir / "drop" / "incoming"
                incoming.mkdir(parents=True)
                path = incoming / f"bench_{rows}.{'cime' if file_format == 'cime' else 'csv'}"
                print(f"writing {path} ...", file=sys.stderr, flush=True)
                write_file(path, file_format, rows)
                db_url = args.db_url or f"sqlite:///{run_dir / 'hub.db'}"
                command = [sys.executable, __file__, "--child", str(path), "--db-url", db_url]
                command += ["--progress-every", str(args.progress_every)]
                finished = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
                figures = json.loads(finished.stdout.strip().splitlines()[-1])
                figures.update({"format": file_format, "size": rows})
                results.append(figures)
                if figures["outcome"] != "published":
                    print(f"unexpected outcome: {figures}", file=sys.stderr)
                if not args.keep:
                    shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results}, indent=2), encoding="utf-8")
    print(
        f"{'format':<6} {'rows':>9} {'MB':>8} {'seconds':>9} {'rows/s':>9} {'events':>9} {'peak RSS MiB':>13}"
    )
    for item in results:
        rate = item["rows"] / item["seconds"] if item["seconds"] else 0.0
        print(
            f"{item['format']:<6} {item['rows']:>9} {item['bytes'] / 1e6:>8.1f} {item['seconds']:>9.1f} "
            f"{rate:>9.0f} {item['events']:>9} {item['peak_rss_mib']:>13.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
