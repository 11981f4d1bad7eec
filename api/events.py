"""The event feed over HTTP: server-sent events (`/v1/events/stream`) and paged JSON (`/v1/events`).

Both serve the canonical events of the bus in feed order, filtered by event type (`type`, repeatable: the
exact type or a dotted prefix such as `cn.yekuo.grid`). An SSE event carries `id:` = feed id, `event:` =
event type and `data:` = the CloudEvent JSON; a client that reconnects with `Last-Event-ID` (or `?after=`)
resumes after that id, without loss while the feed still holds it. The JSON listing follows the shared list
conventions (api/listing.py), except that its `next_cursor` is never null: a polling client always has a
position to come back to. Personal data is masked unless the caller holds pii:read
(api/security.py's `caller_can_read_pii` dependency).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.context import Context, Database
from api.listing import (
    LIST_PROBLEMS,
    CursorParam,
    Page,
    check_sort,
    decode_cursor,
    encode_cursor,
    limit_param,
    page,
    sort_param,
)
from api.problems import problem, problem_responses
from api.security import caller_can_read_pii
from store.database import Engine
from store.event_feed import FeedEntry, last_feed_id, oldest_feed_id, read_feed
from subscriptions.feed import public_event

LISTING = "events"
SORTS = ("id",)  # the feed pages by feed id, oldest first
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_TYPE_FILTERS = 20
# Feed ids are 64-bit signed integers in every database the hub supports; a larger one cannot be a feed id.
MAX_FEED_ID = 2**63 - 1
# Events the stream reads per query while catching up.
STREAM_PAGE = 100
# Tells EventSource clients how long to wait before reconnecting after the stream ends, in milliseconds.
RECONNECT_MS = 3000
# Sent when a client resumes after events the feed has pruned since; not a canonical event type.
GAP_EVENT = "feed.gap"

TypeFilters = Annotated[
    list[str],
    Query(
        alias="type",
        description="event type, exact or a dotted prefix (cn.yekuo.grid, cn.yekuo.grid.*); repeatable",
        max_length=MAX_TYPE_FILTERS,
    ),
]

EXAMPLE_EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "0b6f8c1e-3c4f-4d8e-9a57-2f1f3b0c9d21",
    "source": "/marketing/application",
    "type": "cn.yekuo.application.changed.v1",
    "subject": "2026112600001",
    "time": "2026-11-26T09:30:00+08:00",
    "datacontenttype": "application/json",
    "dataschema": "urn:yekuo:schema:application.v1",
    "correlationid": "5d1f0c7a-8e0b-4b59-9d0c-3a6f1e2b7c44",
    "sequence": 3,
    "data": {"application_no": "2026112600001", "requested_capacity_kva": 160, "stage": "acceptance"},
}


class FeedItem(BaseModel):
    """One event of the feed."""

    id: int = Field(description="position in the feed; increases in commit order", examples=[42])
    type: str = Field(description="CloudEvents type", examples=["cn.yekuo.application.changed.v1"])
    subject: str = Field(description="CloudEvents subject", examples=["2026112600001"])
    time: datetime = Field(description="when the change happened")
    event: dict[str, Any] = Field(
        description="the CloudEvent; personal data masked unless the caller may read it",
        examples=[EXAMPLE_EVENT],
    )


class EventPage(Page[FeedItem]):
    """One page of the feed; unlike other listings, next_cursor is never null."""

    next_cursor: str = Field(
        description="pass as `cursor` for the next page; after the last event it stays where it is, so a "
        "client polls it again for newer events",
        examples=[encode_cursor(LISTING, [42])],
    )
    gap: bool = Field(
        description="the feed pruned events after the cursor's position before they were read: the client "
        "missed them (the stream's feed.gap event)",
        examples=[False],
    )


EVENT_PAGE_EXAMPLE = {
    "items": [
        {
            "id": 42,
            "type": EXAMPLE_EVENT["type"],
            "subject": EXAMPLE_EVENT["subject"],
            "time": EXAMPLE_EVENT["time"],
            "event": EXAMPLE_EVENT,
        }
    ],
    "limit": 100,
    "next_cursor": encode_cursor(LISTING, [42]),
    "gap": False,
}

STREAM_EXAMPLE = (
    f"retry: {RECONNECT_MS}\n\n"
    f"id: 42\nevent: {EXAMPLE_EVENT['type']}\ndata: {json.dumps(EXAMPLE_EVENT, ensure_ascii=False)}\n\n"
    ": heartbeat\n\n"
)

LISTING_DESCRIPTION = (
    "Events in feed order, oldest first. `next_cursor` is never null here: it points after the last event "
    "of the page, or stays at the given position when the page is empty, so a polling client always has a "
    "cursor to resume from and simply asks again later. Without a cursor the listing starts at the oldest "
    "event the feed still holds. `gap` says that events after the cursor's position were pruned unread."
)

STREAM_DESCRIPTION = (
    "A `text/event-stream` that stays open: every matching event after the starting point, then each new "
    "one as it is committed. Each event carries `id:` (the feed id), `event:` (the event type) and `data:` "
    "(the CloudEvent JSON). It starts after `Last-Event-ID`, else after `after`, else at the newest event "
    "(only new events). A comment line follows a silence of the heartbeat interval, and a `feed.gap` event "
    "without an id says that events after the starting point were pruned before they were read."
)


def pruned_after(position: int, oldest_id: int | None) -> bool:
    """Whether the feed no longer holds the events right after this position."""
    return oldest_id is not None and oldest_id > position + 1


def sse_event(entry: FeedEntry, *, can_read_pii: bool) -> str:
    """One feed event in the text/event-stream format."""
    data = json.dumps(public_event(entry.event, can_read_pii=can_read_pii), ensure_ascii=False)
    return f"id: {entry.id}\nevent: {entry.event_type}\ndata: {data}\n\n"


async def feed_stream(
    read: Callable[[int], Sequence[FeedEntry]],
    after: int,
    *,
    can_read_pii: bool,
    disconnected: Callable[[], Awaitable[bool]],
    poll_interval_s: float,
    heartbeat_s: float,
    oldest_id: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[str]:
    """The SSE text of every event after `after`, then of each new one, until the client goes away.

    read(after) returns the next page of matching events (blocking; it runs in a worker thread). A comment
    line goes out whenever the stream was silent for heartbeat_s, so proxies keep the connection open and
    a dead client is noticed. When the feed no longer holds the events right after `after` (oldest_id is
    further on), a `feed.gap` event without an id says so first: the client missed events.
    """
    yield f"retry: {RECONNECT_MS}\n\n"
    if pruned_after(after, oldest_id):
        yield f"event: {GAP_EVENT}\ndata: {json.dumps({'after': after, 'oldest_id': oldest_id})}\n\n"
    cursor = after
    last_write = clock()
    while not await disconnected():
        entries = await run_in_threadpool(read, cursor)
        for entry in entries:
            yield sse_event(entry, can_read_pii=can_read_pii)
            cursor = entry.id
        if entries:
            last_write = clock()
            continue
        if clock() - last_write >= heartbeat_s:
            yield ": heartbeat\n\n"
            last_write = clock()
        await anyio.sleep(poll_interval_s)


def parse_last_event_id(value: str | None) -> int | None:
    """The feed id in a Last-Event-ID header; 400 invalid-last-event-id if it is not one this API sent."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    # Checked as text first: int() of thousands of digits is slow, and past 4300 digits it raises.
    if not (text.isascii() and text.isdigit() and len(text) <= 19) or int(text) > MAX_FEED_ID:
        raise problem(
            "invalid-last-event-id", f"Last-Event-ID {value[:40]!r} is not an event id of this feed"
        )
    return int(text)


def cursor_position(cursor: str | None) -> int:
    """The feed id a cursor of the listing stands for (0, before the first event, without one)."""
    if cursor is None:
        return 0
    (position,) = decode_cursor(LISTING, cursor, 1)
    if not isinstance(position, int) or isinstance(position, bool) or not 0 <= position <= MAX_FEED_ID:
        raise problem("invalid-cursor", f"cursor {cursor[:80]!r} is not a cursor of this listing")
    return position


router = APIRouter(prefix="/v1/events", tags=["events"])
PiiAllowed = Annotated[bool, Depends(caller_can_read_pii)]


def stream_page(engine: Engine, after: int, types: Sequence[str]) -> list[FeedEntry]:
    """The next page of the stream: events after a feed id, of the given types."""
    with engine.connect() as conn:
        return read_feed(conn, after=after, types=types, limit=STREAM_PAGE)


@router.get(
    "",
    summary="Canonical events after a cursor, oldest first (polling clients)",
    description=LISTING_DESCRIPTION,
    response_model=EventPage,
    responses={200: {"content": {"application/json": {"example": EVENT_PAGE_EXAMPLE}}}, **LIST_PROBLEMS},
)
def list_events(
    pii: PiiAllowed,
    engine: Database,
    types: TypeFilters = [],  # noqa: B006  (FastAPI copies query defaults per request)
    limit: Annotated[int, limit_param(DEFAULT_LIMIT, MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    sort: Annotated[str | None, sort_param(SORTS)] = None,
) -> dict[str, Any]:
    check_sort(sort, SORTS)
    position = cursor_position(cursor)
    with engine.connect() as conn:
        entries = read_feed(conn, after=position, types=types, limit=limit)
        oldest = oldest_feed_id(conn)
    items = [
        {
            "id": entry.id,
            "type": entry.event_type,
            "subject": entry.subject,
            "time": entry.time,
            "event": public_event(entry.event, can_read_pii=pii),
        }
        for entry in entries
    ]
    following = encode_cursor(LISTING, [entries[-1].id if entries else position])
    return {**page(items, limit, following), "gap": pruned_after(position, oldest)}


@router.get(
    "/stream",
    summary="Canonical events as server-sent events, resuming after Last-Event-ID",
    description=STREAM_DESCRIPTION,
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "the event stream; it ends only when the client disconnects",
            "content": {"text/event-stream": {"schema": {"type": "string"}, "example": STREAM_EXAMPLE}},
        },
        **problem_responses("invalid-last-event-id"),
    },
)
async def stream_events(
    request: Request,
    pii: PiiAllowed,
    context: Context,
    types: TypeFilters = [],  # noqa: B006  (FastAPI copies query defaults per request)
    after: Annotated[
        int | None,
        Query(ge=0, le=MAX_FEED_ID, description="resume after this feed id; default: only new events"),
    ] = None,
    last_event_id: Annotated[
        str | None, Header(description="the id of the last event received; takes precedence over after")
    ] = None,
) -> StreamingResponse:
    start = parse_last_event_id(last_event_id)
    if start is None:
        start = after
    engine, config = context.engine, context.feed
    live_end, oldest = await run_in_threadpool(_bounds, engine)
    if start is None:
        start = live_end
    body = feed_stream(
        lambda position: stream_page(engine, position, types),
        start,
        can_read_pii=pii,
        disconnected=request.is_disconnected,
        poll_interval_s=config.stream_poll_interval_s,
        heartbeat_s=config.stream_heartbeat_s,
        oldest_id=oldest,
    )
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        # No caching, and no buffering by nginx-style proxies, or events arrive in lumps.
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _bounds(engine: Engine) -> tuple[int, int | None]:
    """The newest feed id (where a live stream starts) and the oldest one still kept."""
    with engine.connect() as conn:
        return last_feed_id(conn), oldest_feed_id(conn)
