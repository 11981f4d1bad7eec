"""The open-loop load generator: the schedule it keeps, the answers it counts, the warm-up it drops."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, HTTPException

from bench.load import run_load
from ground.webserver import BackgroundServer


@pytest.fixture
def server() -> Iterator[BackgroundServer]:
    app = FastAPI()

    @app.get("/items/{item}")
    def item(item: str) -> dict[str, str]:
        if item == "missing":
            raise HTTPException(404, "no such item")
        return {"item": item}

    with BackgroundServer(app) as running:
        yield running


def test_every_scheduled_request_is_sent_and_the_warm_up_is_not_counted(server: BackgroundServer) -> None:
    result = run_load(server.base_url, ["/items/a", "/items/b"], rate=100.0, duration_s=0.3, warmup_s=0.1)
    assert result.statuses == {"200": 30}
    assert len(result.latencies_ms) == 30 and result.warmup_requests == 10
    assert all(latency > 0 for latency in result.latencies_ms)
    assert result.offered_rate == 100.0 and result.achieved_rate > 0


def test_answers_other_than_200_are_counted_per_status(server: BackgroundServer) -> None:
    result = run_load(server.base_url, ["/items/a", "/items/missing"], rate=100.0, duration_s=0.2, warmup_s=0)
    assert result.statuses == {"200": 10, "404": 10}


def test_connection_failures_are_counted_not_raised() -> None:
    with BackgroundServer(FastAPI()) as stopped:
        url = stopped.base_url
    result = run_load(url, ["/"], rate=50.0, duration_s=0.1, warmup_s=0)
    assert sum(result.statuses.values()) == 5
    assert "200" not in result.statuses


def test_a_load_needs_paths_and_a_positive_rate() -> None:
    with pytest.raises(ValueError, match="paths"):
        run_load("http://127.0.0.1:1", [], rate=10.0, duration_s=1.0)
    with pytest.raises(ValueError, match="rate"):
        run_load("http://127.0.0.1:1", ["/"], rate=0.0, duration_s=1.0)
