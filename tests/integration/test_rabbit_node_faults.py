"""Two hub instances on a three-node RabbitMQ cluster: one node stopped, then killed, mid-stream.

The instances take the cluster's URL list (YEKUO_BUS_URL) and reconnect to a live node; the quorum queues
keep every message through the loss of one node of three. Afterwards every event took effect once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL
from tests.support.rabbit_cluster import RabbitCluster, rabbit_cluster  # noqa: F401

from .cluster_support import SETTLE_TIMEOUT_S, cluster_run, read_outbox, source_event_count
from .test_two_instances import FED_EVENTS, PLAN, report

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.timeout(SETTLE_TIMEOUT_S + 300)]

# The node every instance connects to first: the one whose loss moves every connection.
FIRST_NODE = 0


def test_a_rabbitmq_node_stopped_and_then_killed_mid_stream_loses_nothing(
    rabbit_cluster: RabbitCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    with cluster_run(PLAN, tmp_path, db_url=POSTGRES_URL, bus_url=rabbit_cluster.url, instances=2) as run:
        run.stream.start()
        run.stream.wait_round(PLAN.rounds // 4)
        rabbit_cluster.stop_node(FIRST_NODE)
        run.stream.wait_round(PLAN.rounds // 2)
        rabbit_cluster.start_node(FIRST_NODE)
        run.stream.wait_round(PLAN.rounds * 3 // 4)
        rabbit_cluster.kill_node(FIRST_NODE)
        run.stream.wait_round(PLAN.rounds)
        rabbit_cluster.start_node(FIRST_NODE)
        took = run.settle()
        problems = run.problems(steady=False)
        fed = source_event_count(read_outbox(run.engine))
        print(f"node stop and kill: {sum(fed.values())} events {dict(fed)} settled after {took:.0f} s")
        assert not problems, report(problems, run)
        assert sum(fed.values()) >= FED_EVENTS, f"only {dict(fed)} source events flowed"
