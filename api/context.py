"""What the API's endpoints work with, as typed FastAPI dependencies over the context create_app installs.

create_app keeps one ApiContext on app.state (install_context); an endpoint names what it needs in its
signature (Database, Now, Calendar, ...). A test serves a module's router in a bare FastAPI app after
installing a context of its own, and replaces a dependency through app.dependency_overrides.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Request

from adapters.dispatch.upload import DropFolderUploads
from adapters.marketing.outbound import ReverseCodes, default_codes
from feasibility.config import FeasibilityConfig, load_feasibility_config
from forecast.config import ForecastConfig
from forecast.demand_config import DemandConfig
from ground.settings import Settings, SubmissionSettings, WebhookSettings
from pipeline.operations import Operations
from store.database import Connection, Engine, utcnow
from subscriptions.destinations import DestinationPolicy, Resolver
from subscriptions.settings import SubscriptionSettings
from workflow.cases import default_tracker
from workflow.config import WorkflowConfig
from workflow.consistency import ConsistencyConfig
from workflow.findings import DistrictIndex
from workflow.process import TARGET_WORKING_DAYS
from workflow.workdays import WorkingCalendar

if TYPE_CHECKING:
    from api.grid import OpenCapacityReader
    from api.marketing_push import PushReceiver
    from api.metrics import HubMetrics
    from api.scheme_reply import ReplyTemplate
    from assistant.service import Assistant
    from workflow.progress import ProgressLookup


def workflow_rules() -> ConsistencyConfig | None:
    """The consistency rules of the workflow's tracker, or None when it checks none."""
    checker = default_tracker().checker
    return checker.config if checker is not None else None


def configured_workflow() -> WorkflowConfig:
    """The stage model of the workflow's tracker."""
    return default_tracker().config


@dataclass
class ApiContext:
    """The database and everything else the endpoints share, with the defaults of a hub left unconfigured.

    clock gives "now" (deadline state, working days left); calendar counts working days.
    webhooks bound subscriptions' destinations (resolved with resolver) and their number per caller; feed
    paces the event stream.
    submissions bound the capacity of submissions and previews (default: YEKUO_SUBMISSIONS__*); codes turn
    a submission into the marketing system's codes; consistency_rules are the pre-review's (None: no
    pre-review); districts is the grid index the pre-review reads, kept across requests.
    feasibility_rules are the supply feasibility rules, forecast and demand configure the forecasts
    (default: feasibility/rules.yaml and forecast/*.yaml of the configuration folder, read once).
    workflow gives the stage model (default: the workflow tracker's); target_days is the customers' target
    from submission to power, in working days.
    adapter_reports tell each adapter's state, by adapter name. progress looks up a customer's progress
    and assistant answers customers' questions (the public routes have none to serve without them).
    reply_template is the supply-scheme reply form (default: the configured one, read once); open_capacity
    reads open capacity for the grid routes, keeping its grid cache across requests. marketing_push takes
    the marketing system's pushed notifications. dispatch_uploads puts uploaded files into the dispatch
    drop folder (None: the upload answers 503). operations is the operator service behind /admin.
    readiness tells each dependency as up or down (None: /ready checks none); instance is this hub
    instance's name, which /ready shows beside every duty's lease holder. metrics serves /metrics.
    """

    engine: Engine
    clock: Callable[[], datetime] = utcnow
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    resolver: Resolver = socket.getaddrinfo
    feed: SubscriptionSettings = field(default_factory=SubscriptionSettings)
    submissions: SubmissionSettings = field(default_factory=lambda: Settings().submissions)
    codes: Callable[[], ReverseCodes] = default_codes
    consistency_rules: Callable[[], ConsistencyConfig | None] = workflow_rules
    districts: DistrictIndex = field(default_factory=DistrictIndex)
    feasibility_rules: FeasibilityConfig | None = None
    workflow: Callable[[], WorkflowConfig] = configured_workflow
    target_days: int = TARGET_WORKING_DAYS
    forecast: ForecastConfig | None = None
    demand: DemandConfig | None = None
    adapter_reports: Mapping[str, Callable[[Connection], dict[str, Any]]] = field(default_factory=dict)
    progress: ProgressLookup | None = None
    assistant: Assistant | None = None
    reply_template: ReplyTemplate | None = None
    open_capacity: OpenCapacityReader | None = None
    marketing_push: PushReceiver | None = None
    dispatch_uploads: DropFolderUploads | None = None
    operations: Operations | None = None
    readiness: Callable[[], Mapping[str, bool]] | None = None
    instance: str = ""
    metrics: HubMetrics | None = None
    destinations: DestinationPolicy = field(init=False)

    def __post_init__(self) -> None:
        self.destinations = DestinationPolicy(self.webhooks, resolver=self.resolver)


def install_context(app: FastAPI, context: ApiContext) -> None:
    """Make context what the app's endpoints get through the dependencies of this module."""
    app.state.api_context = context


async def api_context(request: Request) -> ApiContext:
    """The context of the app serving the request (a dependency)."""
    context: ApiContext = request.app.state.api_context
    return context


Context = Annotated[ApiContext, Depends(api_context)]


async def _engine(context: Context) -> Engine:
    return context.engine


async def _now(context: Context) -> datetime:
    return context.clock()


async def _calendar(context: Context) -> WorkingCalendar:
    return context.calendar


@functools.cache
def configured_feasibility_rules() -> FeasibilityConfig:
    """The feasibility rules of the configuration folder, read once."""
    return load_feasibility_config(Settings().config_dir)


async def _feasibility_rules(context: Context) -> FeasibilityConfig:
    return context.feasibility_rules or configured_feasibility_rules()


async def _workflow(context: Context) -> WorkflowConfig:
    return context.workflow()


Database = Annotated[Engine, Depends(_engine)]
Now = Annotated[datetime, Depends(_now)]
Calendar = Annotated[WorkingCalendar, Depends(_calendar)]
Workflow = Annotated[WorkflowConfig, Depends(_workflow)]
FeasibilityRules = Annotated[FeasibilityConfig, Depends(_feasibility_rules)]
