"""The operations routes: GET /health (the process answers), /ready (every dependency is reachable, and
which hub instance holds which duty) and /metrics (Prometheus)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from api.context import Context
from ground import clock
from ground.metrics import CONTENT_TYPE
from store.database import DatabaseError, Engine
from store.leases import list_leases

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    """The process answers."""

    status: str = Field(examples=["ok"])


class DutyLease(BaseModel):
    """Which hub instance holds a duty that runs once per cluster, and until when."""

    owner: str | None = Field(description="the holding instance's name; null: released, free to take")
    token: int = Field(description="fencing token: one more on every take-over")
    expires_at: datetime | None = Field(description="another instance takes the duty over after this")
    live: bool = Field(
        description="held and not expired by this server's clock: a false one with an owner is an instance "
        "that stopped renewing, and waits for another to take it over"
    )


class Readiness(BaseModel):
    """Whether every dependency is reachable, each one's state, and who holds which duty in the cluster."""

    status: str = Field(description="ready or not ready", examples=["ready"])
    checks: dict[str, bool] = Field(examples=[{"database": True, "bus": True, "source:marketing": True}])
    instance: str = Field(description="this instance's name", examples=["hub-a-4127"])
    duties: dict[str, DutyLease] = Field(
        description="every duty's lease as the database shows it, whichever instance holds it; an instance "
        "that holds none is ready all the same",
        examples=[
            {"relay": {"owner": "hub-a-4127", "token": 3, "expires_at": "2026-11-20T08:30:15Z", "live": True}}  # nosec B105
        ],
    )


def duty_leases(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every duty's lease by duty, as JSON; empty when the database cannot be read (its check says so)."""
    try:
        with engine.connect() as conn:
            leases = list_leases(conn)
    except DatabaseError:
        return {}
    now = clock.now()
    return {
        lease.duty: {
            "owner": lease.owner,
            "token": lease.token,
            "expires_at": lease.expires_at.isoformat() if lease.expires_at else None,
            "live": lease.owner is not None and lease.expires_at is not None and lease.expires_at > now,
        }
        for lease in leases
    }


@router.get("/health", summary="The process is alive", response_model=Health)
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Every dependency the hub needs is reachable",
    responses={
        200: {"model": Readiness},
        503: {"model": Readiness, "description": "a dependency is down"},
    },
)
def ready(context: Context) -> JSONResponse:
    checks = dict(context.readiness()) if context.readiness else {}
    ok = all(checks.values())
    body = {
        "status": "ready" if ok else "not ready",
        "checks": checks,
        "instance": context.instance,
        "duties": duty_leases(context.engine),
    }
    return JSONResponse(body, 200 if ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {"example": "yekuo_outbox_pending_events 0.0\n"}}}},
)
def prometheus_metrics(context: Context) -> Response:
    if context.metrics is None:
        raise LookupError("the API context holds no metrics")
    return Response(context.metrics.exposition(), media_type=CONTENT_TYPE)
