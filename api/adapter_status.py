"""GET /admin/adapters: each legacy-system adapter's state for operators (circuit, watermark, queues, loops).

An adapter is available when its circuit breaker lets calls through; `degraded` lists the adapters whose
circuit is open or one of whose loops failed its last step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter
from sqlalchemy.engine import Connection, Engine

from api.problems import problem, problem_responses

AdapterReport = Callable[[Connection], dict[str, Any]]
ADAPTERS_EXAMPLE = {
    "items": [{"name": "marketing", "available": True, "loops": {"poll": {"ok": True}}}],
    "limit": 1,
    "next_cursor": None,
    "degraded": [],
}


def _degraded(report: Mapping[str, Any]) -> bool:
    loops = report.get("loops") or {}
    return report.get("available") is False or any(loop.get("ok") is False for loop in loops.values())


def adapter_status_router(engine: Engine, reports: Mapping[str, AdapterReport]) -> APIRouter:
    """The /admin/adapters routes, one report per adapter name."""
    router = APIRouter(prefix="/admin", tags=["admin"])

    @router.get(
        "/adapters",
        summary="Every adapter: circuit, watermark, push inbox, outbound queues, loops",
        responses={200: {"content": {"application/json": {"example": ADAPTERS_EXAMPLE}}}},
    )
    def list_adapters() -> dict[str, Any]:
        # A handful of adapters: one page always holds them all, so next_cursor is always null.
        with engine.connect() as conn:
            items = [{**report(conn), "name": name} for name, report in reports.items()]
        return {
            "items": items,
            "limit": len(items),
            "next_cursor": None,
            "degraded": [item["name"] for item in items if _degraded(item)],
        }

    @router.get(
        "/adapters/{name}", summary="One adapter's state", responses=problem_responses("adapter-not-found")
    )
    def read_adapter(name: str) -> dict[str, Any]:
        report = reports.get(name)
        if report is None:
            raise problem("adapter-not-found", f"no adapter {name[:64]}; known: {', '.join(sorted(reports))}")
        with engine.connect() as conn:
            return {**report(conn), "name": name}

    return router
