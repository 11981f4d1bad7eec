"""A three-node RabbitMQ cluster for the tests, run by tests/cluster/rabbitmq-cluster.sh.

A test module uses it by importing the fixture:

    from tests.support.rabbit_cluster import rabbit_cluster  # noqa: F401

The cluster starts once per test session (about 25 s) and is removed at its end. A test that stops or
kills a node starts it again before it ends, so the next test finds three running nodes. The script's
environment (YEKUO_RABBIT_CLUSTER_AMQP_PORT, YEKUO_RABBIT_CLUSTER_DIR) moves the cluster, so that two
suites on one machine do not share one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "cluster" / "rabbitmq-cluster.sh"
NODES = 3
# Debian installs the server scripts here; /usr/sbin holds wrappers that run them as the rabbitmq user.
_DEBIAN_SCRIPTS = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


@dataclass(frozen=True)
class QuorumQueue:
    """Where a quorum queue's replicas are, and the group size it was declared with (None: not given)."""

    members: list[str]
    initial_group_size: int | None


class RabbitCluster:
    """The running cluster: one amqp URL per node, and the node faults a test can cause."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        # Node i is yekuo-<its AMQP port>@localhost.
        self.nodes = [f"yekuo-{url.rsplit(':', 1)[1].strip('/')}@localhost" for url in urls]
        # What YEKUO_BUS_URL takes: every node, so a bus opened again finds a live one.
        self.url = ",".join(urls)

    def stop_node(self, index: int) -> None:
        """Stop node `index` gracefully: it closes its connections and hands over its queue leaders."""
        self._run("stop-node", str(index))

    def kill_node(self, index: int) -> None:
        """SIGKILL node `index`'s Erlang VM: its connections drop without a word."""
        self._run("kill-node", str(index))

    def start_node(self, index: int) -> None:
        """Start node `index` again and wait until it runs in the cluster (a running node is left alone)."""
        self._run("start-node", str(index))

    def quorum_queues(self, vhost: str = "/") -> dict[str, QuorumQueue]:
        """Each quorum queue of the vhost, as the first node that answers knows it."""
        live = next(index for index in range(NODES) if self._node_answers(index))
        listing = json.loads(
            self._run(
                "ctl",
                str(live),
                "-q",
                "list_queues",
                "-p",
                vhost,
                "name",
                "members",
                "arguments",
                "--formatter",
                "json",
            )
        )
        return {
            queue["name"]: QuorumQueue(
                members=sorted(queue["members"]),
                initial_group_size=next(
                    (
                        value
                        for key, _type, value in queue["arguments"]
                        if key == "x-quorum-initial-group-size"
                    ),
                    None,
                ),
            )
            for queue in listing
            if queue["members"]
        }

    def _node_answers(self, index: int) -> bool:
        result = subprocess.run(
            [str(SCRIPT), "ctl", str(index), "-q", "ping"], capture_output=True, text=True, check=False
        )
        return result.returncode == 0

    @staticmethod
    def _run(*args: str) -> str:
        result = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{SCRIPT.name} {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout


def _require_rabbitmq_server() -> None:
    """Skip locally when RabbitMQ is not installed, but fail in CI, as tests.conftest.require_service does."""
    if os.environ.get("RABBITMQ_SCRIPTS_DIR") or _DEBIAN_SCRIPTS.exists() or shutil.which("rabbitmq-server"):
        return
    message = "rabbitmq-server is not installed: the three-node cluster cannot start"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def rabbit_cluster() -> Iterator[RabbitCluster]:
    _require_rabbitmq_server()
    started = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, check=False)
    if started.returncode != 0:
        subprocess.run([str(SCRIPT), "stop"], capture_output=True, check=False)
        pytest.fail(f"the RabbitMQ cluster did not start:\n{started.stdout}{started.stderr}")
    # The script's last line lists the nodes' URLs.
    urls = started.stdout.strip().splitlines()[-1].split(",")
    try:
        yield RabbitCluster(urls)
    finally:
        subprocess.run([str(SCRIPT), "stop"], capture_output=True, check=False)
