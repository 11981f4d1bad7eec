"""The hub's bus on a three-node RabbitMQ cluster: three replicas per queue, nothing lost when a node goes."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bus.factory import open_bus
from bus.port import Binding, Bus, ExchangeSpec, Message, QueueSpec, Topology
from ground.errors import BusError
from ground.settings import Settings
from pipeline.consumers import consumer_topology
from tests.support.rabbit_cluster import NODES, QuorumQueue, RabbitCluster, rabbit_cluster  # noqa: F401
from yekuo.hub import Hub

pytestmark = pytest.mark.rabbit_cluster

# Long enough for a stopped node's queues to elect new leaders and a restarted node to rejoin.
STREAM_DEADLINE_S = 180.0


@pytest.fixture
def cluster(rabbit_cluster: RabbitCluster) -> Iterator[RabbitCluster]:  # noqa: F811
    yield rabbit_cluster
    # Whatever the test did to the nodes, the next one finds all three running.
    for index in range(NODES):
        rabbit_cluster.start_node(index)


def test_the_hubs_queues_have_a_replica_on_each_of_the_three_nodes(
    cluster: RabbitCluster, tmp_path: Path
) -> None:
    hub = Hub(Settings(bus_url=cluster.url, db_url=f"sqlite:///{tmp_path}/hub.db"), sources=[])

    hub.prepare()

    queues = cluster.quorum_queues()
    # Every consumer's queue, its retry delay queues and its parking lot.
    declared = consumer_topology(hub.event_exchanges, hub.consumers, hub.retry).queues
    assert len(declared) > 3 * len(hub.consumers)
    for spec in declared:
        # Declared for three replicas, not merely spread over every node a cluster happens to have.
        assert queues[spec.name] == QuorumQueue(members=sorted(cluster.nodes), initial_group_size=3), (
            spec.name
        )


class _Reconnecting:
    """A bus on every node's URL that is opened again after a BusError, as the hub's loops do."""

    def __init__(self, url: str, topology: Topology) -> None:
        self._url = url
        self._topology = topology
        self._bus: Bus | None = None
        self.ports: list[int] = []

    def call(self, action: Callable[[Bus], Any]) -> Any:
        """Run action on an open bus; after a BusError, reopen and run it again until it succeeds."""
        deadline = time.monotonic() + STREAM_DEADLINE_S
        while True:
            try:
                if self._bus is None:
                    self._bus = open_bus(self._url)
                    self._bus.declare(self._topology)
                    # The node this connection reached: which one answered first in the list.
                    self.ports.append(self._bus._connection._impl.params.port)
                return action(self._bus)
            except BusError:
                if time.monotonic() > deadline:
                    raise
                self.close()
                time.sleep(0.2)

    def close(self) -> None:
        if self._bus is not None:
            self._bus.close()
            self._bus = None


def _in_turn(ports: list[int]) -> list[int]:
    """The nodes a connection went to, in order, a node it reconnected to at once counted once."""
    return [port for index, port in enumerate(ports) if index == 0 or ports[index - 1] != port]


def test_a_bus_on_the_node_list_loses_nothing_while_a_node_is_stopped_and_another_killed(
    cluster: RabbitCluster,
) -> None:
    exchange, queue = f"cluster.events.{uuid.uuid4().hex[:8]}", f"cluster.queue.{uuid.uuid4().hex[:8]}"
    topology = Topology(
        exchanges=(ExchangeSpec(exchange),), queues=(QueueSpec(queue, bindings=(Binding(exchange, "#"),)),)
    )
    publisher, consumer = _Reconnecting(cluster.url, topology), _Reconnecting(cluster.url, topology)
    published: list[str] = []
    consumed: set[str] = set()
    publishing_done = threading.Event()
    # Set by the publisher once its last batch is counted: a batch confirmed after publishing_done is set
    # still joins published, and the consumer must wait for it too.
    published_all = threading.Event()
    failures: list[BaseException] = []

    def publish() -> None:
        try:
            while not publishing_done.is_set():
                batch = [
                    Message(body=b"{}", routing_key="case.1", message_id=f"m-{len(published) + i}")
                    for i in range(20)
                ]
                # Returns once the broker confirmed the whole batch; a failed batch is sent again whole.
                publisher.call(lambda bus, batch=batch: bus.publish(exchange, batch))
                published.extend(message.message_id for message in batch)
                time.sleep(0.02)
        except BaseException as exc:
            failures.append(exc)
        finally:
            publisher.close()
            published_all.set()

    def consume() -> None:
        def take(bus: Bus) -> None:
            deliveries = bus.fetch(queue, 100, 0.5)
            for delivery in deliveries:
                bus.ack(delivery)
            # Counted once acked: a delivery whose ack was lost comes back and is counted then.
            consumed.update(delivery.message.message_id for delivery in deliveries)

        try:
            deadline = time.monotonic() + STREAM_DEADLINE_S
            while not (published_all.is_set() and consumed >= set(published)):
                assert time.monotonic() < deadline, f"{len(set(published) - consumed)} messages never arrived"
                consumer.call(take)
        except BaseException as exc:
            failures.append(exc)
        finally:
            consumer.close()

    def published_beyond(count: int) -> None:
        deadline = time.monotonic() + STREAM_DEADLINE_S
        while len(published) < count + 200 and not failures:
            assert time.monotonic() < deadline, f"publishing stalled at {len(published)}"
            time.sleep(0.05)

    threads = [threading.Thread(target=publish), threading.Thread(target=consume)]
    # Both connect to node 0, the first of the list, and declare the queue there.
    consumer.call(lambda bus: None)
    for thread in threads:
        thread.start()
    try:
        published_beyond(0)
        cluster.stop_node(0)
        published_beyond(len(published))
        cluster.start_node(0)
        # Both moved to node 1, the first live one of the list: kill it under them.
        cluster.kill_node(1)
        published_beyond(len(published))
        cluster.start_node(1)
    finally:
        publishing_done.set()
        for thread in threads:
            thread.join(STREAM_DEADLINE_S)

    assert not failures, failures
    assert len(published) >= 600
    assert set(published) <= consumed
    first, second, third = (int(url.rsplit(":", 1)[1].strip("/")) for url in cluster.urls)
    # A connection may also be opened again on the node it was on (a publish refused while node 0 rejoins):
    # what counts is the order of the nodes it went to.
    assert _in_turn(publisher.ports)[:3] == [first, second, first], (
        f"node 0, then node 1 while 0 was down, then 0 again: {publisher.ports}"
    )
    assert _in_turn(consumer.ports)[:3] == [first, second, first], consumer.ports
    assert third not in publisher.ports + consumer.ports
