"""Hub instances as an operator deploys them: `yekuo run` processes sharing one hub database and one bus.

Each instance is a real process with its own instance name, API port and log file. The test can SIGKILL
it, pause it (SIGSTOP) and let it go on (SIGCONT), stop it gracefully and start it again under the same
name; its log stays on disk across restarts, for the failure message.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

from api.credentials import hash_api_key
from store.audit import new_chain_key
from store.crypto import new_key
from tests.support.auth import INTEGRATOR_API_KEY, INTEGRATOR_NAME, TEST_SECRET

_API_LINE = re.compile(rb"hub API on (http://\S+);")
_START_TIMEOUT_S = 90.0
_STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Deployment:
    """What every instance of one deployment shares: the hub database, the bus and the deployment's keys.

    The keys are one deployment's: an instance must open the personal data another one sealed.
    """

    db_url: str
    bus_url: str
    sources: Mapping[str, str]
    lease_ttl_s: float = 3.0
    pii_keys: str = field(default_factory=lambda: json.dumps({"test": new_key()}))
    chain_key: str = field(default_factory=new_chain_key)

    def environment(self, instance_name: str, work_dir: Path) -> dict[str, str]:
        """The environment of one instance's `yekuo run`."""
        api_keys = [
            {"name": INTEGRATOR_NAME, "sha256": hash_api_key(INTEGRATOR_API_KEY), "roles": ["integrator"]}
        ]
        return {
            **os.environ,
            **self.sources,
            "YEKUO_DB_URL": self.db_url,
            "YEKUO_BUS_URL": self.bus_url,
            "YEKUO_API_PORT": "0",
            "YEKUO_CLUSTER__INSTANCE_NAME": instance_name,
            "YEKUO_CLUSTER__LEASE_TTL_S": str(self.lease_ttl_s),
            "YEKUO_AUTH__JWT_SECRET": TEST_SECRET,
            "YEKUO_AUTH__API_KEYS": json.dumps(api_keys),
            "YEKUO_PII__KEYS": self.pii_keys,
            "YEKUO_AUDIT__CHAIN_KEY": self.chain_key,
            "YEKUO_AUDIT__ANCHOR_PATH": str(work_dir / "audit-anchors.jsonl"),
        }


class HubInstance:
    """One `yekuo run` process of a deployment, under a fixed instance name."""

    def __init__(self, name: str, deployment: Deployment, work_dir: Path) -> None:
        self.name = name
        self.deployment = deployment
        self.log = work_dir / f"{name}.log"
        self._work_dir = work_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self.api_url: str | None = None

    @property
    def pid(self) -> int:
        """The process id of the running process."""
        return self._running().pid

    def start(self) -> HubInstance:
        """Start the process; return at once (see wait_started)."""
        if self._process is not None and self._process.poll() is None:
            raise AssertionError(f"{self.name} is running already")
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        self.api_url = None
        with self.log.open("ab") as out:
            out.write(f"--- {self.name} starting ---\n".encode())
            out.flush()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "yekuo.cli", "run"],
                env=self.deployment.environment(self.name, self._work_dir),
                stdout=out,
                stderr=out,
            )
        return self

    def wait_started(self, timeout_s: float = _START_TIMEOUT_S) -> None:
        """Wait until the process serves its API; fail with its log if it ends or takes too long."""
        deadline = time.monotonic() + timeout_s
        process = self._running()
        while self.api_url is None:
            with self.log.open("rb") as log:
                log.seek(self._log_offset)
                found = _API_LINE.search(log.read())
            if found:
                self.api_url = found.group(1).decode()
                return
            if process.poll() is not None:
                raise AssertionError(f"{self.name} ended with {process.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not start within {timeout_s:.0f} s:\n{self.tail()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: the process dies mid-work, with nothing released."""
        process = self._running()
        process.send_signal(signal.SIGKILL)
        process.wait(_STOP_TIMEOUT_S)

    def pause(self) -> None:
        """SIGSTOP: the process stands still, holding its connections and leases, as in a network pause."""
        self._running().send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after pause()."""
        self._running().send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM, as an operator stops a service; SIGKILL if it does not end in time."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(_STOP_TIMEOUT_S)
            raise AssertionError(
                f"{self.name} did not stop within {_STOP_TIMEOUT_S:.0f} s:\n{self.tail()}"
            ) from None

    @property
    def alive(self) -> bool:
        """Whether the process is running (a paused one counts)."""
        return self._process is not None and self._process.poll() is None

    def ready(self) -> dict[str, Any]:
        """The instance's /ready answer (200 or 503 alike)."""
        if self.api_url is None:
            raise AssertionError(f"{self.name} has not started its API")
        response = httpx2.get(f"{self.api_url}/ready", timeout=5.0)
        return dict(response.json())

    @property
    def push_url(self) -> str:
        """Where the marketing system pushes its changes to this instance."""
        if self.api_url is None:
            raise AssertionError(f"{self.name} has not started its API")
        return f"{self.api_url}/soap/marketing"

    def log_text(self) -> str:
        """The whole log of every run under this name."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, chars: int = 3000) -> str:
        """The end of the log, for failure messages."""
        return self.log_text()[-chars:]

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            raise AssertionError(f"{self.name} is not running:\n{self.tail()}")
        return self._process


def start_instances(deployment: Deployment, work_dir: Path, count: int) -> list[HubInstance]:
    """Start count instances at the same moment, then wait for every one to serve its API."""
    instances = [HubInstance(f"hub-{index}", deployment, work_dir) for index in range(count)]
    for instance in instances:
        instance.start()
    for instance in instances:
        instance.wait_started()
    return instances


def stop_instances(instances: list[HubInstance]) -> None:
    """Stop every instance that still runs; kill what does not stop."""
    for instance in instances:
        try:
            instance.stop()
        except AssertionError:
            continue


def logs_of(instances: list[HubInstance], chars: int = 3000) -> str:
    """The end of every instance's log, for a failure message."""
    return "\n".join(f"===== {instance.name} =====\n{instance.tail(chars)}" for instance in instances)
