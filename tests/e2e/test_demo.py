"""`yekuo demo --exit-after-settled` reports exactly the simulator's seeded applications, on both buses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import jwt
import pytest


def _run_demo(tmp_path: Path, bus_url: str, applications: int) -> dict[str, int]:
    env = {**os.environ, "YEKUO_BUS_URL": bus_url, "YEKUO_DB_URL": f"sqlite:///{tmp_path}/demo.db"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "yekuo.cli",
            "demo",
            "--exit-after-settled",
            "--api-port",
            "0",
            "--sim-port",
            "0",
            "--applications",
            str(applications),
            "--customers",
            "50",
            "--timeout",
            "120",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Progress was shown before the summary (how far the first line got depends on the machine's speed).
    progress = re.search(rf"^tracked \d+/{applications}  records read", result.stdout, re.MULTILINE)
    assert progress, result.stdout
    counts = {
        label: int(value)
        for label, value in re.findall(
            r"^\s+(applications seeded by the simulator|applications tracked as cases|"
            r"messages published \(confirmed\)|messages rejected \(parked\))\s+:\s+(\d+)$",
            result.stdout,
            re.MULTILINE,
        )
    }
    assert len(counts) == 4, result.stdout
    _check_printed_credentials(result.stdout)
    return counts


def _check_printed_credentials(stdout: str) -> None:
    """The demo prints an admin token signed with its ephemeral secret and an integrator key to curl with."""
    token = re.search(r"^\s+admin token .*:\s+(\S+)$", stdout, re.MULTILINE)
    key = re.search(r"^\s+integrator API key .*:\s+(\S+)$", stdout, re.MULTILINE)
    assert token is not None and key is not None, stdout
    assert re.search(r"^\s+dashboard .*:\s+http://127\.0\.0\.1:\d+/ui/$", stdout, re.MULTILINE), stdout
    claims = jwt.decode(token[1], options={"verify_signature": False})
    assert claims["roles"] == ["admin"] and claims["aud"] == "yekuo-api" and claims["exp"] > claims["iat"]


@pytest.mark.parametrize("applications", [73])
def test_demo_on_the_in_process_bus(tmp_path: Path, applications: int) -> None:
    counts = _run_demo(tmp_path, "memory://", applications)
    assert counts["applications seeded by the simulator"] == applications
    assert counts["applications tracked as cases"] == applications
    assert counts["messages published (confirmed)"] > applications  # customers are published too
    assert counts["messages rejected (parked)"] == 0


@pytest.mark.rabbitmq
def test_demo_on_rabbitmq(tmp_path: Path, rabbitmq_url: str) -> None:
    counts = _run_demo(tmp_path, rabbitmq_url, 61)
    assert counts["applications seeded by the simulator"] == 61
    assert counts["applications tracked as cases"] == 61
    assert counts["messages rejected (parked)"] == 0
