"""The FastAPI application: /v1 resources over the workflow state, plus health and readiness."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse, Response
from sqlalchemy.engine import Engine

from adapters.marketing.status import MarketingStatus
from api.adapter_status import AdapterReport, adapter_status_router
from api.admin import admin_router
from api.applications import applications_router
from api.feasibility import feasibility_router
from api.grid import grid_router
from api.loads import loads_router
from api.marketing_push import marketing_push_router
from api.submissions import submissions_router
from canonical_model.customer import Customer
from canonical_model.pii import mask_document
from workflow.queries import get_customer
from yekuo.consumers import CONSUMERS
from yekuo.metrics import CONTENT_TYPE, HubMetrics, watched_queues
from yekuo.operations import Operations

ReadinessCheck = Callable[[], Mapping[str, bool]]


def create_app(
    engine: Engine,
    *,
    readiness: ReadinessCheck | None = None,
    operations: Operations | None = None,
    metrics: HubMetrics | None = None,
    adapter_reports: Mapping[str, AdapterReport] | None = None,
) -> FastAPI:
    """The hub API over the given database; readiness reports each dependency as up or down.

    operations backs the /admin endpoints (default: the configured bus and mappings); metrics measures
    the gauges of /metrics (default: this database, the operations' bus and every consumer's queues).
    adapter_reports backs /admin/adapters (default: the marketing adapter as the database shows it).
    """
    operator_service = operations or Operations(engine)
    hub_metrics = metrics or HubMetrics(engine, operator_service.open_bus, watched_queues(CONSUMERS))
    app = FastAPI(
        title="yekuo-hub unified API",
        version="1.0.0",
        description="Applications, customers and their progress across the utility's legacy systems.",
    )

    @app.get("/health", tags=["operations"], summary="The process is alive")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"], summary="Every dependency the hub needs is reachable")
    def ready() -> JSONResponse:
        checks = dict(readiness()) if readiness else {}
        ok = all(checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, 200 if ok else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=Response)
    def prometheus_metrics() -> Response:
        return Response(hub_metrics.exposition(), media_type=CONTENT_TYPE)

    app.include_router(admin_router(operator_service))
    app.include_router(adapter_status_router(engine, adapter_reports or {"marketing": MarketingStatus()}))
    app.include_router(marketing_push_router(engine))
    app.include_router(submissions_router(engine))

    app.include_router(applications_router(engine))
    app.include_router(feasibility_router(engine))
    app.include_router(grid_router(engine))
    app.include_router(loads_router(engine))

    @app.get("/v1/customers/{customer_no}", tags=["customers"], summary="A customer, personal data masked")
    def read_customer(customer_no: str) -> dict[str, Any]:
        with engine.connect() as conn:
            document = get_customer(conn, customer_no)
        if document is None:
            raise HTTPException(404, f"customer {customer_no} is not known")
        return mask_document(document, Customer)

    return app
