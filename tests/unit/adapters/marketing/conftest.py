"""Fixtures for the marketing adapter tests: a seeded simulator, a recording transport, a quick client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import zeep

from adapters.marketing.breaker import CircuitBreaker
from adapters.marketing.client import CallPolicy, MarketingClient
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import MarketingWorld

START = datetime(2026, 11, 2, 8, 30)
# Retries without waiting, and a breaker that stays closed: these tests look at one call at a time.
NO_WAIT = CallPolicy(attempts=3, initial_backoff_s=0, max_backoff_s=0, jitter_s=0)


def quick_client(wsdl_url: str, **options: Any) -> MarketingClient:
    """A client that retries at once and whose circuit does not open unless a test passes a breaker."""
    options.setdefault("policy", NO_WAIT)
    options.setdefault("breaker", CircuitBreaker("marketing", failure_threshold=100))
    return MarketingClient(wsdl_url, **options)


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
