"""Page 3, integration health (集成监控) for operators: adapters, outbox, queues and parked messages.

The adapters' states are those of GET /admin/adapters (lag is the watermark's age, with the circuit
breaker's state and last success); the outbox backlog and the queue depths are what /metrics reads, read
through the hub's HubMetrics (RabbitMQ's depths, or the in-process bus's); parked messages are listed,
inspected, replayed and discarded through the operator service the /admin routes and `yekuo dlq` use, so
an action is recorded with the logged-in user's name as operator, in the action log and the audit chain,
exactly as there. Personal data in parked messages is masked unless the user holds pii:read, and such a
user's unmasked read is audited by the operator service, naming this page as the view.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.adapter_status import AdapterReport, adapter_states, degraded_of
from api.context import Database
from api.metrics import HubMetrics
from api.security import PII_READ, CurrentPrincipal, Principal
from api.ui.context import Ui, UiContext
from api.ui.render import render
from ground.errors import BusError
from pipeline.operations import (
    ActionResult,
    NotParkedError,
    NotReplayableError,
    OperationError,
    Operations,
    PiiReader,
    UnknownParkedError,
    origin,
)
from store.parking import ParkedKind

PAGE = "/ui/health"
DETAIL_VIEW = "GET /ui/health/parked/{parked_id}"
LIST_VIEW = "GET /ui/health"
PAGE_SIZE = 50
OPERATE = "admin:operate"
ParkedId = Annotated[int, Path(ge=1, le=2**63 - 1)]
StatusChoice = Literal["parked", "replayed", "discarded", "all"]


@dataclass(frozen=True)
class HealthSources:
    """What the page reads and acts through: the hub's own operator service, metrics and adapter reports."""

    operations: Operations
    metrics: HubMetrics
    adapter_reports: Mapping[str, AdapterReport]


def age_text(seconds: float | None) -> str:
    """A lag as an operator reads it at a glance: 45 秒, 12 分钟, 3 小时 5 分, 35 天 4 小时."""
    if seconds is None:
        return "—"
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole} 秒"
    if whole < 3600:
        return f"{whole // 60} 分钟"
    if whole < 86400:
        return f"{whole // 3600} 小时 {whole % 3600 // 60} 分"
    return f"{whole // 86400} 天 {whole % 86400 // 3600} 小时"


def _reader(principal: Principal, view: str) -> PiiReader | None:
    return PiiReader(principal.sub, view) if principal.can(PII_READ) else None


def _status_code(exc: Exception) -> int:
    """The status /admin answers the same refusal with."""
    if isinstance(exc, UnknownParkedError):
        return 404
    if isinstance(exc, NotParkedError):
        return 409
    if isinstance(exc, NotReplayableError):
        return 422
    return 503 if isinstance(exc, BusError) else 400


router = APIRouter(include_in_schema=False)


@router.get(PAGE)
def health(
    request: Request,
    principal: CurrentPrincipal,
    engine: Database,
    ui: Ui,
    status: Annotated[StatusChoice, Query()] = "parked",
    kind: Annotated[ParkedKind | None, Query()] = None,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> HTMLResponse:
    sources = ui.health
    with engine.connect() as conn:
        adapters = adapter_states(conn, sources.adapter_reports)
    found = sources.operations.browse(
        kind=kind,
        status=None if status == "all" else status,
        after=after,
        limit=PAGE_SIZE,
        reader=_reader(principal, LIST_VIEW),
    )
    backlog = sources.metrics.outbox_backlog()
    query = {"status": status, **({"kind": kind} if kind else {})}
    return render(
        ui.env,
        request,
        "health.html",
        {
            "adapters": adapters,
            "lags": {state["name"]: age_text(state.get("watermark_age_s")) for state in adapters},
            "degraded": degraded_of(adapters),
            "backlog": backlog,
            "oldest_age": age_text(backlog.oldest_age_s),
            "queues": sources.metrics.queue_depths(),
            "parked": [(message, origin(message)) for message in found.items],
            "total": found.total,
            "query": query,
            "next_query": {**query, "after": str(found.next_after)} if found.next_after else None,
            "unmasked": principal.can(PII_READ),
        },
    )


def detail_page(
    ui: UiContext,
    request: Request,
    principal: Principal,
    parked_id: int,
    *,
    refused: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    try:
        detail = ui.health.operations.inspect(parked_id, reader=_reader(principal, DETAIL_VIEW))
    except UnknownParkedError as exc:
        response = render(ui.env, request, "parked.html", {"missing": str(exc)})
        response.status_code = 404
        return response
    message = detail.message
    response = render(
        ui.env,
        request,
        "parked.html",
        {
            "message": message,
            "origin": origin(message),
            "payload": json.dumps(message.payload, ensure_ascii=False, indent=2, default=str),
            "actions": detail.actions,
            "hidden": detail.hidden,
            "can_operate": principal.can(OPERATE),
            "refused": refused,
        },
    )
    response.status_code = status_code
    return response


@router.get(PAGE + "/parked/{parked_id}")
def parked_message(
    request: Request, principal: CurrentPrincipal, parked_id: ParkedId, ui: Ui
) -> HTMLResponse:
    return detail_page(ui, request, principal, parked_id)


def act(
    ui: UiContext, action: Callable[..., ActionResult], request: Request, principal: Principal, parked_id: int
) -> Response:
    """Replay or discard a parked message, then show it again; a refusal is shown on its page."""
    try:
        action(parked_id, operator=principal.sub)
    except (OperationError, BusError) as exc:
        return detail_page(ui, request, principal, parked_id, refused=str(exc), status_code=_status_code(exc))
    # After a form's POST the browser goes on with a GET: reloading it does not act again.
    return RedirectResponse(f"{PAGE}/parked/{parked_id}", status_code=303)


@router.post(PAGE + "/parked/{parked_id}/replay")
def replay(request: Request, principal: CurrentPrincipal, parked_id: ParkedId, ui: Ui) -> Response:
    return act(ui, ui.health.operations.replay, request, principal, parked_id)


@router.post(PAGE + "/parked/{parked_id}/discard")
def discard(request: Request, principal: CurrentPrincipal, parked_id: ParkedId, ui: Ui) -> Response:
    return act(ui, ui.health.operations.discard, request, principal, parked_id)
