"""Fixtures for the marketing adapter tests: a seeded simulator served in-process, a recording transport."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import zeep

from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import MarketingWorld

START = datetime(2026, 11, 2, 8, 30)


class RecordingTransport(zeep.Transport):
    """The real transport, remembering the SOAP action of every call it sends."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)  # type: ignore[no-untyped-call]
        self.actions: list[str] = []

    def post(self, address: str, message: bytes, headers: dict[str, str]) -> Any:
        self.actions.append(headers.get("SOAPAction", "").strip('"').rsplit("#", 1)[-1])
        return super().post(address, message, headers)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def world() -> MarketingWorld:
    """Shared by a module's tests: tests that change a world build their own."""
    return generate_world(seed=31, customers=80, applications=300, start=START)


@pytest.fixture(scope="module")
def simulator(world: MarketingWorld) -> Iterator[SimulatorServer]:
    with SimulatorServer(world) as server:
        yield server


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport(timeout=5, operation_timeout=5)
