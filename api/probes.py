"""The operations routes: GET /health (the process answers), /ready (every dependency is reachable) and
/metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from api.context import Context
from ground.metrics import CONTENT_TYPE

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    """The process answers."""

    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    """Whether every dependency is reachable, and each one's state."""

    status: str = Field(description="ready or not ready", examples=["ready"])
    checks: dict[str, bool] = Field(examples=[{"database": True, "bus": True, "source:marketing": True}])


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
    return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, 200 if ok else 503)


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
