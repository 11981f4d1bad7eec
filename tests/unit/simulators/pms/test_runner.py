"""`yekuo sim pms`: seeds an empty database, keeps an existing one, and changes it in rounds."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from simulators.pms.runner import run
from simulators.pms.schema import transformers
from yekuo.cli import main


def count(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = int(conn.execute(sa.select(sa.func.count()).select_from(transformers)).scalar_one())
    engine.dispose()
    return found


def test_run_seeds_then_changes_in_rounds(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pms.db'}"
    lines: list[str] = []
    changed = run(
        url,
        5,
        substation_count=2,
        feeder_count=8,
        transformer_count=120,
        interval_s=0,
        changes_per_tick=10,
        ticks=3,
        out=lines.append,
    )
    assert changed >= 30
    assert any(line.startswith("seeded 120 distribution transformers") for line in lines)
    assert [line.split(":")[0] for line in lines if line.startswith("tick")] == ["tick 1", "tick 2", "tick 3"]

    kept: list[str] = []
    run(url, 5, interval_s=0, changes_per_tick=1, ticks=1, out=kept.append)
    assert kept[0].startswith("PMS simulator: keeping the data already in")
    assert 100 < count(url) < 200


def test_the_cli_runs_the_simulator(tmp_path: Path, capsys: object) -> None:
    url = f"sqlite:///{tmp_path / 'pms.db'}"
    args = ["sim", "pms", "--db-url", url, "--substations", "2", "--feeders", "6", "--transformers", "50"]
    assert main([*args, "--ticks", "1", "--changes", "5", "--interval", "0"]) == 0
    assert main([*args, "--reset", "--ticks", "0"]) == 0
    assert count(url) == 50
