"""An open-loop HTTP load generator, run in its own process so it never shares a GIL with the server.

Requests start on a fixed schedule (rate per second) whether or not earlier answers have come back, and
each latency runs from the scheduled start to the end of the answer. A slow server therefore shows up as
latency instead of quietly lowering the request rate (no coordinated omission).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx2

_MAX_CONNECTIONS = 64
_REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class LoadResult:
    """Latencies (ms) of the measured requests, how they answered, and the request rate reached."""

    latencies_ms: list[float]
    warmup_requests: int
    statuses: dict[str, int]
    offered_rate: float
    achieved_rate: float
    duration_s: float


async def _request(client: httpx2.AsyncClient, path: str, scheduled: float) -> tuple[float, str]:
    loop = asyncio.get_running_loop()
    try:
        response = await client.get(path)
        outcome = str(response.status_code)
    except httpx2.HTTPError as exc:
        outcome = type(exc).__name__
    return (loop.time() - scheduled) * 1000.0, outcome


async def _open_loop(
    base_url: str,
    paths: Sequence[str],
    rate: float,
    duration_s: float,
    warmup_s: float,
    headers: Mapping[str, str],
) -> LoadResult:
    limits = httpx2.Limits(max_connections=_MAX_CONNECTIONS, max_keepalive_connections=_MAX_CONNECTIONS)
    async with httpx2.AsyncClient(
        base_url=base_url, limits=limits, timeout=_REQUEST_TIMEOUT_S, headers=dict(headers)
    ) as client:
        loop = asyncio.get_running_loop()
        warmup = int(warmup_s * rate)
        total = warmup + int(duration_s * rate)
        start = loop.time() + 0.05
        tasks = []
        for index in range(total):
            scheduled = start + index / rate
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_request(client, paths[index % len(paths)], scheduled)))
        results = await asyncio.gather(*tasks)
        finished = loop.time()
    measured = results[warmup:]
    measured_start = start + warmup / rate
    return LoadResult(
        latencies_ms=[latency for latency, _ in measured],
        warmup_requests=warmup,
        statuses=dict(Counter(outcome for _, outcome in measured)),
        offered_rate=rate,
        achieved_rate=len(measured) / (finished - measured_start),
        duration_s=finished - measured_start,
    )


def run_load(
    base_url: str,
    paths: Sequence[str],
    rate: float,
    duration_s: float,
    warmup_s: float = 1.0,
    headers: Mapping[str, str] | None = None,
) -> LoadResult:
    """Send GET requests (with headers, e.g. credentials) to paths in turn at rate per second for
    warmup_s + duration_s seconds.

    The warm-up requests (pool connections, first queries) are sent at the same rate and not counted.
    """
    if rate <= 0 or duration_s <= 0 or not paths:
        raise ValueError(f"a load needs paths, a positive rate and duration, got {rate}/s for {duration_s} s")
    return asyncio.run(_open_loop(base_url, paths, rate, duration_s, warmup_s, headers or {}))
