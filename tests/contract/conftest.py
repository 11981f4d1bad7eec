"""The bus contract suite runs every test twice: on the in-process bus and on the real RabbitMQ broker."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from bus import memory
from bus.port import Bus, Topology
from bus.rabbitmq import RabbitMQBus
from ground.errors import BusError
from tests.conftest import RABBITMQ_URL, require_service


class BusHarness:
    """Opens connections to one broker for one test, hands out unique names and cleans up after it."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.url = url
        self._opened: list[Bus] = []
        self._names: list[str] = []

    def open(self) -> Bus:
        """A new connection to the test's broker."""
        bus: Bus = RabbitMQBus(self.url) if self.kind == "rabbitmq" else memory.open_memory_bus(self.url)
        self._opened.append(bus)
        return bus

    def name(self, role: str) -> str:
        """A queue or exchange name no other test (or earlier run) uses."""
        name = f"contract.{role}.{uuid.uuid4().hex[:12]}"
        self._names.append(name)
        return name

    def declare(self, topology: Topology) -> None:
        bus = self.open()
        try:
            bus.declare(topology)
        finally:
            bus.close()

    def cleanup(self) -> None:
        for bus in self._opened:
            with contextlib.suppress(BusError):
                bus.close()
        if self.kind == "memory":
            memory.discard_broker(self.url)
            return
        admin = RabbitMQBus(self.url)
        try:
            for name in self._names:
                admin.delete_queue(name)
                admin.delete_exchange(name)
        finally:
            admin.close()


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def bus_factory(request: pytest.FixtureRequest) -> Iterator[BusHarness]:
    """A harness on a fresh in-process broker, or on RabbitMQ (failing in CI when it is down)."""
    if request.param == "rabbitmq":
        require_service("RabbitMQ", 5672)
        harness = BusHarness("rabbitmq", RABBITMQ_URL)
    else:
        harness = BusHarness("memory", memory.unique_url("contract"))
    yield harness
    harness.cleanup()
