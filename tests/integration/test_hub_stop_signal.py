"""`yekuo run` as a real process: SIGTERM (docker stop, Kubernetes) stops the hub cleanly, and its leases are
released at once instead of blocking the other instances until they expire."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from store.audit import new_chain_key
from store.crypto import new_key
from store.leases import list_leases
from tests.support.auth import TEST_SECRET

STARTED = "hub API on"


def _wait_for_start(process: subprocess.Popen[bytes], log: Path, limit_s: float = 90.0) -> None:
    deadline = time.monotonic() + limit_s
    while STARTED not in log.read_text(errors="replace"):
        assert process.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, f"no start within {limit_s} s"
        time.sleep(0.2)


def test_sigterm_stops_the_hub_and_releases_every_lease(rabbitmq_url: str, tmp_path: Path) -> None:
    database = tmp_path / "hub.db"
    log = tmp_path / "hub.log"
    env = {
        **os.environ,
        "YEKUO_BUS_URL": rabbitmq_url,
        "YEKUO_DB_URL": f"sqlite:///{database}",
        "YEKUO_API_PORT": "0",
        "YEKUO_CLUSTER__INSTANCE_NAME": "hub-sigterm",
        "YEKUO_AUTH__JWT_SECRET": TEST_SECRET,
        "YEKUO_PII__KEYS": json.dumps({"test": new_key()}),
        "YEKUO_AUDIT__CHAIN_KEY": new_chain_key(),
        "YEKUO_AUDIT__ANCHOR_PATH": str(tmp_path / "audit-anchors.jsonl"),
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "yekuo.cli", "run"], env=env, stdout=out, stderr=out
        )
    try:
        _wait_for_start(process, log)
        engine = sa.create_engine(f"sqlite:///{database}")
        with engine.connect() as conn:
            held = {lease.duty: lease.owner for lease in list_leases(conn)}
        assert held and set(held.values()) == {"hub-sigterm"}

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0

        with engine.connect() as conn:
            released = {lease.duty: lease.owner for lease in list_leases(conn)}
        engine.dispose()
        assert released == dict.fromkeys(held)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
