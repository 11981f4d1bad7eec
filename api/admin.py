"""Admin endpoints over parked messages: dead letters and invalid input, to list, inspect, replay and discard.

Actions need the operator's name in the X-Operator header; it is recorded with every action.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query

from store.operations import OperatorAction
from store.parking import ParkedKind, ParkedMessage
from yekuo.errors import BusError
from yekuo.operations import (
    MAX_PAGE,
    ActionResult,
    NotParkedError,
    NotReplayableError,
    OperationError,
    Operations,
    UnknownParkedError,
    origin,
)

OPERATOR_HEADER = "X-Operator"
StatusFilter = Literal["parked", "replayed", "discarded", "all"]

# Path segment under /admin, kind of parked message, and how the OpenAPI tags name it.
COLLECTIONS: tuple[tuple[str, ParkedKind, str], ...] = (
    ("dead-letters", "dead", "dead letters (consumer gave up after its retries)"),
    ("invalid", "invalid", "invalid input (mapping, schema or envelope failures)"),
)


def admin_router(operations: Operations) -> APIRouter:
    """The /admin routes for both kinds of parked messages, backed by the operator service."""
    router = APIRouter(prefix="/admin", tags=["admin"])
    for segment, kind, description in COLLECTIONS:
        _add_collection(router, operations, segment, kind, description)
    return router


def _add_collection(
    router: APIRouter, operations: Operations, segment: str, kind: ParkedKind, description: str
) -> None:
    @router.get(f"/{segment}", summary=f"List {description}", name=f"list_{kind}")
    def list_messages(
        status: StatusFilter = "parked",
        after: Annotated[int | None, Query(description="cursor: the next_after of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    ) -> dict[str, Any]:
        with _errors():
            page = operations.list_messages(
                kind=kind, status=None if status == "all" else status, after=after, limit=limit
            )
        return {
            "items": [_summary(message) for message in page.items],
            "total": page.total,
            "next_after": page.next_after,
        }

    @router.get(
        f"/{segment}/{{parked_id}}", summary="One parked message with its payload", name=f"show_{kind}"
    )
    def show(parked_id: int) -> dict[str, Any]:
        with _errors():
            message = operations.show(parked_id, kind=kind)
            actions = operations.history(parked_id)
        return _detail(message, actions)

    @router.post(
        f"/{segment}/{{parked_id}}/replay",
        summary="Send the message through the hub again (safe: consumers deduplicate by event id)",
        name=f"replay_{kind}",
    )
    def replay(
        parked_id: int, x_operator: Annotated[str | None, Header(description="who is acting")] = None
    ) -> dict[str, Any]:
        return _act(operations.replay, parked_id, kind, x_operator)

    @router.post(
        f"/{segment}/{{parked_id}}/discard",
        summary="Drop the message for good; it stays listed as discarded",
        name=f"discard_{kind}",
    )
    def discard(
        parked_id: int, x_operator: Annotated[str | None, Header(description="who is acting")] = None
    ) -> dict[str, Any]:
        return _act(operations.discard, parked_id, kind, x_operator)


def _act(
    action: Callable[..., ActionResult], parked_id: int, kind: ParkedKind, operator: str | None
) -> dict[str, Any]:
    if not operator or not operator.strip():
        raise HTTPException(400, f"the {OPERATOR_HEADER} header must name who is acting")
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
        raise HTTPException(404, str(exc)) from exc
    except NotParkedError as exc:
        raise HTTPException(409, str(exc)) from exc
    except NotReplayableError as exc:
        raise HTTPException(422, str(exc)) from exc
    except OperationError as exc:
        raise HTTPException(400, str(exc)) from exc
    except BusError as exc:
        raise HTTPException(503, f"the bus refused the replay, nothing changed: {exc}") from exc


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


def _detail(message: ParkedMessage, actions: list[OperatorAction]) -> dict[str, Any]:
    return {
        **_summary(message),
        "position": message.position,
        "payload": message.payload,
        "actions": [
            {
                "at": action.at.isoformat(),
                "operator": action.operator,
                "action": action.action,
                "detail": action.detail,
            }
            for action in actions
        ],
    }
