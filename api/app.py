"""The FastAPI application: /v1 resources over the workflow state, plus health and readiness."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from canonical_model.customer import Customer
from canonical_model.pii import mask_document
from workflow.queries import get_case, get_customer

ReadinessCheck = Callable[[], Mapping[str, bool]]


def create_app(engine: Engine, *, readiness: ReadinessCheck | None = None) -> FastAPI:
    """The hub API over the given database; readiness reports each dependency as up or down."""
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

    @app.get("/v1/applications/{application_no}", tags=["applications"], summary="A tracked application")
    def read_application(application_no: str) -> dict[str, Any]:
        with engine.connect() as conn:
            case = get_case(conn, application_no)
        if case is None:
            raise HTTPException(404, f"application {application_no} is not tracked")
        return case

    @app.get("/v1/customers/{customer_no}", tags=["customers"], summary="A customer, personal data masked")
    def read_customer(customer_no: str) -> dict[str, Any]:
        with engine.connect() as conn:
            document = get_customer(conn, customer_no)
        if document is None:
            raise HTTPException(404, f"customer {customer_no} is not known")
        return mask_document(document, Customer)

    return app
