"""GET /admin/adapters: each legacy-system adapter's state for operators (circuit, watermark, queues, loops).

An adapter is available when its circuit breaker lets calls through; `degraded` lists the adapters whose
circuit is open or one of whose loops failed its last step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.context import Context
from api.probes import DutyLease, duty_leases
from api.problems import problem, problem_responses
from store.database import Connection, Engine

AdapterReport = Callable[[Connection], dict[str, Any]]
ADAPTERS_EXAMPLE = {
    "items": [
        {
            "name": "marketing",
            "available": True,
            "circuit": {"state": "closed"},
            "watermark": {"changed_at": "2026-11-20 08:30:00", "key": "2026112000001"},
            "watermark_age_s": 12.5,
            "push_inbox": {"received": 3, "waiting": 0, "taken_up_to": 3},
            "submissions": {"done": 2},
            "writebacks": {},
            "loops": {"poll:marketing": {"ok": True, "failures": 0, "last_error": None}},
            "poll_lease": {
                "owner": "hub-a-4127",
                "token": 3,  # nosec B105 (a fencing token counts take-overs; it is no secret)
                "expires_at": "2026-11-20T08:30:15+00:00",
                "live": True,
            },
        }
    ],
    "limit": 1,
    "next_cursor": None,
    "degraded": [],
}


class LoopHealth(BaseModel):
    """The last step of one of the adapter's loops."""

    ok: bool | None = Field(description="whether the last step succeeded; null before the first")
    failures: int | None = Field(description="failed steps in a row")
    last_error: str | None = Field(description="what the last failed step reported")


class PushInbox(BaseModel):
    """Notifications the legacy system pushed to the hub."""

    received: int = Field(description="notifications stored")
    waiting: int = Field(description="notifications not yet taken up by the poller")
    taken_up_to: int = Field(description="sequence number of the last notification taken up")


class Watermark(BaseModel):
    """How far the poller has read the legacy system's changes."""

    changed_at: str = Field(description="change time of the last record read, in the legacy format")
    key: str = Field(description="key of the last record read")


class AdapterStatus(BaseModel):
    """One adapter's state; an adapter may report more members than these (e.g. source and writer counts)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="adapter name", examples=["marketing"])
    available: bool | None = Field(description="whether its circuit lets calls through; null when not called")
    circuit: dict[str, Any] | None = Field(description="the circuit breaker's state; null when not called")
    watermark: Watermark | None = Field(description="where polling stands; null before the first poll")
    watermark_age_s: float | None = Field(description="seconds since the watermark's change time")
    push_inbox: PushInbox = Field(description="the push inbox")
    submissions: dict[str, int] = Field(description="submissions per status")
    writebacks: dict[str, int] = Field(description="write-backs per status")
    loops: dict[str, LoopHealth] = Field(description="the adapter's loops by name")
    poll_lease: DutyLease | None = Field(
        description="which hub instance polls the adapter (the lease of poll:<name>) and whether that lease "
        "is live; null before any took it"
    )


class AdapterPage(BaseModel):
    """Every adapter in one page, and the names of the degraded ones."""

    items: list[AdapterStatus] = Field(description="one entry per adapter")
    limit: int = Field(description="the number of adapters")
    next_cursor: None = Field(description="always null: one page holds every adapter")
    degraded: list[str] = Field(description="adapters whose circuit is open or one of whose loops failed")


def _degraded(report: Mapping[str, Any]) -> bool:
    loops = report.get("loops") or {}
    return report.get("available") is False or any(loop.get("ok") is False for loop in loops.values())


def adapter_states(conn: Connection, reports: Mapping[str, AdapterReport]) -> list[dict[str, Any]]:
    """Every adapter's report as the database shows it now, with its name."""
    return [{**report(conn), "name": name} for name, report in reports.items()]


def with_poll_leases(engine: Engine, states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The states with the lease of each adapter's poller: which instance polls it (None: none yet)."""
    leases = duty_leases(engine)
    return [{**state, "poll_lease": leases.get(f"poll:{state['name']}")} for state in states]


def degraded_of(states: list[dict[str, Any]]) -> list[str]:
    """The names of the adapters whose circuit is open or one of whose loops failed its last step."""
    return [state["name"] for state in states if _degraded(state)]


router = APIRouter(prefix="/admin", tags=["admin"])


@router.get(
    "/adapters",
    summary="Every adapter: circuit, watermark, push inbox, outbound queues, loops",
    responses={200: {"model": AdapterPage, "content": {"application/json": {"example": ADAPTERS_EXAMPLE}}}},
)
def list_adapters(context: Context) -> dict[str, Any]:
    # A handful of adapters: one page always holds them all, so next_cursor is always null.
    with context.engine.connect() as conn:
        items = adapter_states(conn, context.adapter_reports)
    items = with_poll_leases(context.engine, items)
    return {"items": items, "limit": len(items), "next_cursor": None, "degraded": degraded_of(items)}


@router.get(
    "/adapters/{name}",
    summary="One adapter's state",
    responses={200: {"model": AdapterStatus}, **problem_responses("adapter-not-found")},
)
def read_adapter(name: str, context: Context) -> dict[str, Any]:
    reports = context.adapter_reports
    report = reports.get(name)
    if report is None:
        raise problem("adapter-not-found", f"no adapter {name[:64]}; known: {', '.join(sorted(reports))}")
    with context.engine.connect() as conn:
        state = {**report(conn), "name": name}
    return with_poll_leases(context.engine, [state])[0]
