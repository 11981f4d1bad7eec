"""Admin endpoints over parked messages: dead letters and invalid input, to list, inspect, replay and discard.

Actions are recorded with the name of the authenticated caller (the token's `sub`) as the operator.
Personal data in payloads, reasons and action details is masked (pipeline.masking) unless the caller holds
pii:read; each message whose personal data such a caller was shown is recorded in the audit log with the
caller, the route and the message id. An action's answer is always masked: GET the message to see it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime, BaseModel, Field

from api.context import Context
from api.listing import LIST_PROBLEMS, CursorParam, Page, check_sort, limit_param, page, sort_param
from api.listing import decode_cursor as decode_cursor_of
from api.listing import encode_cursor as encode_cursor_of
from api.problems import problem, problem_responses
from api.security import PII_READ, CurrentPrincipal, Principal
from ground.errors import BusError
from pipeline.operations import (
    MAX_PAGE,
    ActionResult,
    NotParkedError,
    NotReplayableError,
    OperationError,
    Operations,
    ParkedDetail,
    PiiReader,
    UnknownParkedError,
    origin,
)
from store.parking import ParkedKind, ParkedMessage


class ParkedSummary(BaseModel):
    """A parked message as listings show it; personal data in `reason` masked unless pii:read."""

    id: int = Field(description="id of the parked message")
    kind: str = Field(description="dead or invalid", examples=["invalid"])
    status: str = Field(description="parked, replayed or discarded", examples=["parked"])
    reason_code: str = Field(description="machine-readable cause")
    reason: str = Field(description="what went wrong")
    origin: str = Field(description="the consumer queue or the legacy record it came from")
    source_system: str | None = Field(description="legacy system of the record, if it came from one")
    record_type: str | None = Field(description="record type of the legacy record, if any")
    record_key: str | None = Field(description="key of the legacy record, if any")
    created_at: AwareDatetime = Field(description="when it was parked")


class ParkedPage(Page[ParkedSummary]):
    """One page of parked messages."""


class ParkedAction(BaseModel):
    """An operator action taken on a parked message."""

    at: AwareDatetime = Field(description="when it was taken")
    operator: str = Field(description="who took it (the token's subject)")
    action: str = Field(description="replay or discard")
    detail: str = Field(description="what it did")


class ParkedMessageDetail(ParkedSummary):
    """One parked message with its payload and the actions taken on it."""

    position: dict[str, Any] | None = Field(description="where the record was read in its source, if known")
    payload: Any = Field(description="the message as it was parked; personal data masked unless pii:read")
    masked: list[str] = Field(description="the parts shown masked, e.g. payload, reason, actions")
    actions: list[ParkedAction] = Field(description="actions taken, oldest first")


class ParkedActionResult(BaseModel):
    """What a replay or a discard did; the message is shown masked."""

    action: str = Field(description="replay or discard")
    operator: str = Field(description="who took it")
    detail: str = Field(description="what it did")
    reparked_id: int | None = Field(description="id of the new parked message if the replay parked it again")
    events: int = Field(description="events the replay published")
    message: ParkedSummary = Field(description="the parked message afterwards")


SORTS = ("id",)  # parked messages page by id, oldest first
DEFAULT_LIMIT = 50
StatusFilter = Literal["parked", "replayed", "discarded", "all"]
# Parked ids are 64-bit signed integers in every database the hub supports; a larger one cannot be one.
ParkedId = Annotated[int, Path(ge=1, le=2**63 - 1, description="id of the parked message")]

# Path segment under /admin, kind of parked message, and how the OpenAPI tags name it.
COLLECTIONS: tuple[tuple[str, ParkedKind, str], ...] = (
    ("dead-letters", "dead", "dead letters (consumer gave up after its retries)"),
    ("invalid", "invalid", "invalid input (mapping, schema or envelope failures)"),
)


async def operator_service(context: Context) -> Operations:
    """The operator service of the app (a dependency)."""
    if context.operations is None:
        raise LookupError("the API context holds no operator service")
    return context.operations


Operator = Annotated[Operations, Depends(operator_service)]


def _add_collection(router: APIRouter, segment: str, kind: ParkedKind, description: str) -> None:
    """The routes of one kind of parked message under /admin/{segment}: the same for both kinds."""
    listing = f"admin/{segment}"

    @router.get(
        f"/{segment}",
        summary=f"List {description}; personal data masked unless the caller holds pii:read",
        name=f"list_{kind}",
        responses={200: {"model": ParkedPage}, **LIST_PROBLEMS},
    )
    def list_messages(
        principal: CurrentPrincipal,
        operations: Operator,
        status: Annotated[
            StatusFilter, Query(description="which messages (default: still parked)")
        ] = "parked",
        limit: Annotated[int, limit_param(DEFAULT_LIMIT, MAX_PAGE)] = DEFAULT_LIMIT,
        cursor: CursorParam = None,
        sort: Annotated[str | None, sort_param(SORTS)] = None,
    ) -> dict[str, Any]:
        check_sort(sort, SORTS)
        after = _parked_id(decode_cursor_of(listing, cursor, 1)[0], cursor) if cursor else None
        with _errors():
            found = operations.browse(
                kind=kind,
                status=None if status == "all" else status,
                after=after,
                limit=limit,
                reader=_reader(principal, f"GET /admin/{segment}"),
            )
        following = encode_cursor_of(listing, [found.next_after]) if found.next_after is not None else None
        return page([_summary(message) for message in found.items], limit, following)

    @router.get(
        f"/{segment}/{{parked_id}}",
        summary="One parked message with its payload; personal data masked unless the caller holds pii:read",
        name=f"show_{kind}",
        responses={200: {"model": ParkedMessageDetail}, **problem_responses("parked-message-not-found")},
    )
    def show(parked_id: ParkedId, principal: CurrentPrincipal, operations: Operator) -> dict[str, Any]:
        reader = _reader(principal, f"GET /admin/{segment}/{{parked_id}}")
        with _errors():
            detail = operations.inspect(parked_id, kind=kind, reader=reader)
        return _detail(detail)

    @router.post(
        f"/{segment}/{{parked_id}}/replay",
        summary="Send the message through the hub again (safe: consumers deduplicate by event id)",
        name=f"replay_{kind}",
        responses={200: {"model": ParkedActionResult}, **ACTION_PROBLEMS},
    )
    def replay(parked_id: ParkedId, principal: CurrentPrincipal, operations: Operator) -> dict[str, Any]:
        return _act(operations.replay, parked_id, kind, principal.sub)

    @router.post(
        f"/{segment}/{{parked_id}}/discard",
        summary="Drop the message for good; it stays listed as discarded",
        name=f"discard_{kind}",
        responses={200: {"model": ParkedActionResult}, **ACTION_PROBLEMS},
    )
    def discard(parked_id: ParkedId, principal: CurrentPrincipal, operations: Operator) -> dict[str, Any]:
        return _act(operations.discard, parked_id, kind, principal.sub)


ACTION_PROBLEMS = problem_responses(
    "parked-message-not-found", "not-parked", "not-replayable", "operation-refused", "bus-unavailable"
)
# The /admin routes for both kinds of parked messages, backed by the operator service.
router = APIRouter(prefix="/admin", tags=["admin"])
for _segment, _kind, _description in COLLECTIONS:
    _add_collection(router, _segment, _kind, _description)


def _reader(principal: Principal, view: str) -> PiiReader | None:
    """The caller as a reader of personal data if it may read it unmasked; None: shown masked."""
    return PiiReader(principal.sub, view) if principal.can(PII_READ) else None


def _parked_id(value: Any, cursor: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise problem("invalid-cursor", f"cursor {cursor[:80]!r} is not a cursor of this listing")
    return value


def _act(
    action: Callable[..., ActionResult], parked_id: int, kind: ParkedKind, operator: str
) -> dict[str, Any]:
    with _errors():
        result = action(parked_id, operator=operator, kind=kind)
    return {
        "action": result.action,
        "operator": result.operator,
        "detail": result.detail,
        "reparked_id": result.reparked_id,
        "events": result.events,
        "message": _summary(result.message),
    }


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the operator service's refusals into HTTP answers that say what was wrong."""
    try:
        yield
    except UnknownParkedError as exc:
        raise problem("parked-message-not-found", str(exc)) from exc
    except NotParkedError as exc:
        raise problem("not-parked", str(exc)) from exc
    except NotReplayableError as exc:
        raise problem("not-replayable", str(exc)) from exc
    except OperationError as exc:
        raise problem("operation-refused", str(exc)) from exc
    except BusError as exc:
        raise problem("bus-unavailable", f"the bus refused the replay, nothing changed: {exc}") from exc


def _summary(message: ParkedMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "kind": message.kind,
        "status": message.status,
        "reason_code": message.reason_code,
        "reason": message.reason,
        "origin": origin(message),
        "source_system": message.source_system,
        "record_type": message.record_type,
        "record_key": message.record_key,
        "created_at": message.created_at.isoformat(),
    }


def _detail(detail: ParkedDetail) -> dict[str, Any]:
    message = detail.message
    return {
        **_summary(message),
        "position": message.position,
        "payload": message.payload,
        "masked": list(detail.hidden),
        "actions": [
            {
                "at": action.at.isoformat(),
                "operator": action.operator,
                "action": action.action,
                "detail": action.detail,
            }
            for action in detail.actions
        ],
    }
