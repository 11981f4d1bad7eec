"""The FastAPI application: /v1 resources over the workflow state, plus health and readiness.

The web dashboard (api/ui) is served under /ui/ by the same app, guarded by the same policy.

Every request passes, outermost first: access control (api/security.py, the policy in api/access.yaml),
the body bound (api/limits.py) and Idempotency-Key handling (api/idempotency.py); every error is answered
as problem+json (api/problems.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from adapters.dispatch.upload import DropFolderUploads
from adapters.marketing.push import PushMappings, PushReader
from adapters.marketing.status import MarketingStatus
from api.access import AccessPolicy, check_coverage, load_access_policy
from api.adapter_status import AdapterReport
from api.adapter_status import router as adapter_status_router
from api.admin import router as admin_router
from api.analytics import router as analytics_router
from api.applications import router as applications_router
from api.assistant import build_assistant
from api.assistant import router as assistant_router
from api.asyncapi import asyncapi_router, settings_document
from api.context import ApiContext, configured_workflow, install_context
from api.customers import router as customers_router
from api.demand import router as demand_router
from api.events import router as events_router
from api.feasibility import router as feasibility_router
from api.forecast import router as forecast_router
from api.grid import OpenCapacityReader
from api.grid import router as grid_router
from api.idempotency import Idempotency
from api.limits import DEFAULT_MAX_BODY_BYTES, BodyLimit, ControlCharacters
from api.loads import router as loads_router
from api.marketing_push import PUSH_PATH, PushReceiver
from api.marketing_push import router as marketing_push_router
from api.metrics import HubMetrics, watched_queues
from api.openapi import install_openapi
from api.probes import router as probes_router
from api.problems import install_problem_handlers
from api.progress import router as progress_router
from api.scheme_reply import load_reply_template
from api.scheme_reply import router as scheme_reply_router
from api.security import AccessControl, route_table, served_routes
from api.submissions import router as submissions_router
from api.ui.context import install_ui_context
from api.ui.dashboard import EmptyFiltersLeftOut, dashboard_context
from api.ui.dashboard import router as dashboard_router
from api.ui.health import HealthSources
from api.webhooks import router as webhooks_router
from assistant.service import Assistant
from ground.settings import AuthSettings, Settings, SubmissionSettings, WebhookSettings
from pipeline.consumers import ConsumerSpec
from pipeline.operations import Operations
from store.database import Engine
from subscriptions.settings import subscription_settings
from workflow.progress import ProgressLookup

# Routes that stream their bodies and bound them themselves (413 or a SOAP fault).
SELF_BOUNDED_PATHS = (PUSH_PATH, "/v1/dispatch/files")

ReadinessCheck = Callable[[], Mapping[str, bool]]


class AsyncApiDocument(BaseModel):
    """The AsyncAPI 3.0 document of the hub's events; its members are as that specification defines them."""

    model_config = ConfigDict(extra="allow")

    asyncapi: str = Field(description="AsyncAPI version", examples=["3.0.0"])
    info: dict[str, Any] = Field(description="title, version and description of the hub's events")
    servers: dict[str, Any] = Field(default_factory=dict, description="the brokers, by name")
    channels: dict[str, Any] = Field(default_factory=dict, description="one channel per routing key")
    operations: dict[str, Any] = Field(default_factory=dict, description="what the hub sends on each channel")
    components: dict[str, Any] = Field(default_factory=dict, description="messages and their JSON Schemas")


def create_app(
    engine: Engine,
    *,
    auth: AuthSettings,
    consumers: Sequence[ConsumerSpec],
    policy: AccessPolicy | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    readiness: ReadinessCheck | None = None,
    instance: str | None = None,
    operations: Operations | None = None,
    metrics: HubMetrics | None = None,
    adapter_reports: Mapping[str, AdapterReport] | None = None,
    on_push: Callable[[], None] | None = None,
    webhooks: WebhookSettings | None = None,
    submissions: SubmissionSettings | None = None,
    push_mappings: PushMappings | None = None,
    assistant: Assistant | None = None,
    dispatch_uploads: DropFolderUploads | None = None,
    processes: int = 1,
) -> FastAPI:
    """The hub API over the given database; readiness reports each dependency as up or down, and instance
    names this hub instance in /ready (default: YEKUO_CLUSTER__INSTANCE_NAME, or its default).

    auth verifies callers' tokens and API keys; policy says what each route needs (default: api/access.yaml)
    and must cover every route, or this raises ConfigError. Bodies over max_body_bytes get 413.

    consumers are the hub's consumer table. operations backs the /admin endpoints (default: the configured
    bus and mappings); metrics measures the gauges of /metrics (default: this database, the operations' bus
    and the queues of those consumers).
    adapter_reports backs /admin/adapters (default: the marketing adapter as the database shows it).
    on_push runs after the marketing push endpoint stored a new notification (the hub wakes its poller).
    webhooks bounds webhook destinations and subscriptions per caller (default: YEKUO_WEBHOOKS__*).
    submissions bounds the capacity of submissions and previews (default: YEKUO_SUBMISSIONS__*).
    push_mappings are the mappings pushed marketing records go through (default: the project's own).
    assistant answers POST /v1/assistant/ask and the progress page's chat box (default: the knowledge base
    of YEKUO_ASSISTANT__PROVINCE, loaded and checked here, over the progress lookup's budget).
    dispatch_uploads takes POST /v1/dispatch/files into the drop folder (default: the one of
    YEKUO_DISPATCH__*; without one the upload answers 503).
    processes is how many processes serve this API, each counting the guessing limits of the progress
    lookup and the assistant apart: each gets its share, so together they allow about what one would.
    """
    settings = Settings()
    operator_service = operations or Operations(engine)
    hub_metrics = metrics or HubMetrics(
        engine, operator_service.open_bus, watched_queues(consumers), process=settings.process
    )
    access = policy or load_access_policy()
    reports = adapter_reports or {"marketing": MarketingStatus()}
    workflow_config = functools.cache(configured_workflow)
    progress = ProgressLookup(
        engine, settings.progress.shared_by(processes), stage_names=lambda: workflow_config().stages
    )
    drop_folder = settings.drop_folder()
    uploads = dispatch_uploads or (DropFolderUploads(drop_folder) if drop_folder is not None else None)
    context = ApiContext(
        engine,
        webhooks=webhooks or settings.webhooks,
        feed=subscription_settings(),
        submissions=submissions or settings.submissions,
        workflow=workflow_config,
        target_days=settings.process.target_working_days,
        adapter_reports=reports,
        progress=progress,
        assistant=assistant
        or build_assistant(engine, progress, settings.assistant.shared_by(processes), settings.config_dir),
        reply_template=load_reply_template(),
        open_capacity=OpenCapacityReader(),
        marketing_push=PushReceiver(engine, PushReader(push_mappings or PushMappings.load()), on_push),
        dispatch_uploads=uploads,
        operations=operator_service,
        readiness=readiness,
        instance=instance or settings.cluster.instance_name,
        metrics=hub_metrics,
    )
    ui = dashboard_context(
        auth=auth,
        config=workflow_config,
        health=HealthSources(operator_service, hub_metrics, reports),
        permissions=access.permissions_of,
    )

    app = FastAPI(
        title="yekuo-hub unified API",
        version="1.0.0",
        description="Applications, customers and their progress across the utility's legacy systems.",
    )
    install_context(app, context)
    install_ui_context(app, ui)
    for router in (
        probes_router,
        admin_router,
        adapter_status_router,
        marketing_push_router,
        submissions_router,
        applications_router,
        analytics_router,
        scheme_reply_router,
        customers_router,
        feasibility_router,
        grid_router,
        forecast_router,
        demand_router,
        loads_router,
        events_router,
        webhooks_router,
    ):
        app.include_router(router)
    app.include_router(
        asyncapi_router(settings_document(settings, consumers)), responses={200: {"model": AsyncApiDocument}}
    )
    app.include_router(progress_router)
    app.include_router(assistant_router)
    app.include_router(dashboard_router)

    check_coverage(access, served_routes(app))
    install_problem_handlers(app)
    install_openapi(app, access)
    # Added innermost first: access control runs before the body is read or a key is claimed.
    app.add_middleware(Idempotency, engine=engine)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, exempt=SELF_BOUNDED_PATHS)
    app.add_middleware(ControlCharacters)
    app.add_middleware(EmptyFiltersLeftOut)
    app.add_middleware(
        AccessControl, table=route_table(app, access, soap_paths=(PUSH_PATH,)), policy=access, auth=auth
    )
    return app
