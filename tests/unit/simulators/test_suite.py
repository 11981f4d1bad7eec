"""`yekuo sim all`: the three simulators on one world; SOAP served, PMS seeded and changed, files written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import sqlalchemy as sa

from ground.settings import PROJECT_ROOT
from simulators.pms.schema import transformers
from simulators.pms.seed import SEED_AS_OF
from yekuo.cli import build_parser


def _wait_for(condition: object, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_every_option_of_sim_all_is_documented_in_its_help() -> None:
    parser = build_parser()
    sim = next(action for action in parser._actions if action.dest == "command").choices["sim"]  # type: ignore[union-attr]
    every = next(action for action in sim._actions if action.dest == "system").choices["all"]  # type: ignore[union-attr]
    for action in every._actions:
        assert action.help, f"{action.option_strings} has no help"


def test_sim_all_serves_seeds_and_writes_on_one_world(tmp_path: Path) -> None:
    pms_url = f"sqlite:///{tmp_path / 'pms.db'}"
    out = tmp_path / "drop" / "incoming"
    command = [
        sys.executable, "-m", "yekuo.cli", "sim", "all", "--port", "0", "--seed", "9",
        "--customers", "20", "--applications", "10", "--substations", "2", "--feeders", "4",
        "--transformers", "30", "--pms-db-url", pms_url, "--pms-interval", "0.2", "--pms-changes", "2",
        "--dispatch-out", str(out), "--dispatch-interval", "0.1", "--dispatch-days", "2",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    try:
        assert process.stdout is not None
        while not any(line.startswith("marketing WSDL: ") for line in lines):
            line = process.stdout.readline()
            assert line, "sim all exited early:\n" + "".join(lines)
            lines.append(line)
        wsdl_url = lines[-1].removeprefix("marketing WSDL: ").strip()
        with urllib.request.urlopen(wsdl_url, timeout=10) as answer:
            assert b"ListChangedApplications" in answer.read()
        assert "one world, seed 9: 20 customers and 10 applications" in "".join(lines)
        # Each day: curves and telemetry (CIM/E), power and factor curves (CSV).
        _wait_for(
            lambda: sorted(path.suffix for path in out.iterdir()) == [".cime"] * 4 + [".csv"] * 4,
            "two days of dispatch files",
        )
        engine = sa.create_engine(pms_url)
        try:
            with engine.connect() as conn:
                count = conn.execute(sa.select(sa.func.count()).select_from(transformers)).scalar_one()
                changed = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(transformers)
                    .where(transformers.c.GXSJ > SEED_AS_OF)
                ).scalar_one()
        finally:
            engine.dispose()
        assert count >= 30
        assert changed >= 1  # the PMS simulator keeps changing the seeded grid
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, "".join(lines) + output
