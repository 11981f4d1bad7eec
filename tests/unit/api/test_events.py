"""The event feed: the event_feed consumer, retention, the JSON listing and the SSE stream."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api import events
from api.context import ApiContext, install_context
from api.events import LISTING, MAX_FEED_ID, feed_stream, parse_last_event_id
from api.listing import encode_cursor
from api.problems import ProblemError, install_problem_handlers
from api.security import caller_can_read_pii
from bus import open_bus
from bus.memory import discard_broker, unique_url
from bus.port import Message
from canonical_model.envelope import CloudEvent
from pipeline.consumer import InboxConsumer
from pipeline.consumers import consumer_topology
from pipeline.decoded import DecodedEvent
from store.event_feed import FeedEntry, event_feed, last_feed_id, read_feed
from store.schema import inbox
from subscriptions.feed import FeedPruner, feed_topics, public_event, record_feed_event
from subscriptions.settings import SubscriptionSettings
from yekuo.consumers import CONSUMERS, EVENT_FEED

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
IDENTITY_NUMBER = "110101199003071234"


def customer_event(number: int, *, event_type: str = "cn.yekuo.customer.changed.v1") -> CloudEvent:
    return CloudEvent(
        id=f"evt-{number}",
        source="/marketing/customer",
        type=event_type,
        subject=f"C{number:04d}",
        time=T0 + timedelta(minutes=number),
        dataschema="urn:yekuo:schema:customer.v1",
        correlationid=f"corr-{number}",
        sequence=number,
        data={
            "customer_no": f"C{number:04d}",
            "name": "张三",
            "category": "residential",
            "identity_document": {"type": "resident_id", "number": IDENTITY_NUMBER},
            "contacts": [{"name": "张三", "phone": "13800138000"}],
        },
    )


def grid_event(number: int, kind: str = "feeder") -> CloudEvent:
    return CloudEvent(
        id=f"grid-{number}",
        source="/pms/feeder",
        type=f"cn.yekuo.grid.{kind}.changed.v1",
        subject=f"F{number}",
        time=T0 + timedelta(minutes=number),
        dataschema="urn:yekuo:schema:feeder.v1",
        correlationid=f"corr-g{number}",
        sequence=1,
        data={"feeder_id": f"F{number}"},
    )


def append(engine: Engine, *events: CloudEvent) -> None:
    with engine.begin() as conn:
        for event in events:
            record_feed_event(conn, DecodedEvent(event))


@pytest.fixture
def engine(sqlite_engine: Engine) -> Engine:
    return sqlite_engine


def client_for(engine: Engine, *, pii: bool = False, **settings: Any) -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)
    install_context(app, ApiContext(engine, feed=SubscriptionSettings(**settings)))
    app.dependency_overrides[caller_can_read_pii] = lambda: pii
    app.include_router(events.router)
    return TestClient(app)


# --- the feed and its consumer ---------------------------------------------------------------------------


def test_feed_ids_increase_and_a_known_event_is_not_added_twice(engine: Engine) -> None:
    append(engine, customer_event(1), grid_event(2), customer_event(3))
    append(engine, customer_event(1))
    with engine.connect() as conn:
        entries = read_feed(conn, after=0)
        assert last_feed_id(conn) == 3
    assert [entry.id for entry in entries] == [1, 2, 3]
    assert [entry.event["id"] for entry in entries] == ["evt-1", "grid-2", "evt-3"]
    assert entries[0].event == customer_event(1).model_dump(mode="json")


def test_the_event_is_sealed_at_rest(engine: Engine) -> None:
    append(engine, customer_event(1))
    with engine.connect() as conn:
        raw = conn.execute(sa.text("SELECT event FROM event_feed")).scalar_one()
    assert IDENTITY_NUMBER not in str(raw)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([], ["evt-1", "grid-2", "grid-3"]),
        (["cn.yekuo.customer.changed.v1"], ["evt-1"]),
        (["cn.yekuo.grid"], ["grid-2", "grid-3"]),
        (["cn.yekuo.grid.*"], ["grid-2", "grid-3"]),
        (["cn.yekuo.grid.main_transformer"], ["grid-3"]),
        # '_' is a LIKE wildcard: the prefix must match literally.
        (["cn.yekuo.grid.mainXtransformer"], []),
        (["cn.yekuo.gri"], []),
        (["cn.yekuo.customer", "cn.yekuo.grid.main_transformer.changed.v1"], ["evt-1", "grid-3"]),
    ],
)
def test_type_filters_take_exact_types_and_dotted_prefixes(
    engine: Engine, filters: list[str], expected: list[str]
) -> None:
    append(engine, customer_event(1), grid_event(2), grid_event(3, "main_transformer"))
    with engine.connect() as conn:
        assert [entry.event["id"] for entry in read_feed(conn, after=0, types=filters)] == expected


def test_the_consumer_binds_every_topic_another_consumer_binds() -> None:
    others = {topic for spec in CONSUMERS if spec is not EVENT_FEED for topic in spec.topics}
    assert set(EVENT_FEED.topics) <= others
    for topic in others:
        assert any(topic.startswith(mine.removesuffix("#")) for mine in EVENT_FEED.topics), topic
    assert feed_topics(["case.#", "case.stage_changed.#", "grid.#", "x.y"]) == ("case.#", "grid.#", "x.y")


def test_every_bus_event_reaches_the_feed_once_through_the_inbox(engine: Engine) -> None:
    url = unique_url()
    bus = open_bus(url)
    try:
        bus.declare(consumer_topology(["yekuo.events"], [EVENT_FEED]))
        events = [customer_event(1), grid_event(2), customer_event(3)]
        keys = ["customer.changed.residential", "grid.feeder.changed", "customer.changed.residential"]
        messages = [
            Message(body=event.model_dump_json().encode(), routing_key=key, message_id=event.id)
            for event, key in zip(events, keys, strict=True)
        ]
        bus.publish("yekuo.events", messages)
        bus.publish("yekuo.events", messages[:1])  # a redelivered duplicate
        consumer = InboxConsumer(
            engine, bus, queue=EVENT_FEED.queue, name="event_feed", handler=EVENT_FEED.handler
        )
        while consumer.consume_once(timeout_s=0.05):
            pass
    finally:
        bus.close()
        discard_broker(url)
    with engine.connect() as conn:
        assert [entry.event["id"] for entry in read_feed(conn, after=0)] == ["evt-1", "grid-2", "evt-3"]
        assert conn.execute(sa.select(sa.func.count()).select_from(inbox)).scalar_one() == 3
    assert consumer.stats.duplicates == 1


def test_pruning_keeps_the_retention_and_the_row_limit(engine: Engine) -> None:
    append(engine, *(customer_event(n) for n in range(1, 7)))
    with engine.begin() as conn:
        # The first two were received nine days ago.
        conn.execute(
            event_feed.update().where(event_feed.c.id <= 2).values(received_at=T0 - timedelta(days=9))
        )
    pruner = FeedPruner(
        engine, SubscriptionSettings(feed_retention_days=7, feed_max_rows=3), clock=lambda: T0
    )
    assert pruner.prune() == 3
    with engine.connect() as conn:
        assert [entry.id for entry in read_feed(conn, after=0)] == [4, 5, 6]
    append(engine, customer_event(7))
    with engine.connect() as conn:
        assert last_feed_id(conn) == 7  # ids keep increasing after pruning


def test_personal_data_is_masked_unless_the_caller_may_read_it() -> None:
    event = customer_event(1).model_dump(mode="json")
    masked = public_event(event, can_read_pii=False)
    assert masked["data"]["identity_document"]["number"] == "**************1234"
    assert masked["data"]["contacts"][0]["phone"] == "*******8000"
    assert masked["data"]["name"] == "张三"
    assert public_event(event, can_read_pii=True) == event
    unknown = public_event({**event, "dataschema": "urn:other"}, can_read_pii=False)
    assert unknown["data"] is None


# --- GET /v1/events -----------------------------------------------------------------------------------


def test_the_listing_pages_with_a_cursor_and_filters_by_type(engine: Engine) -> None:
    append(engine, customer_event(1), grid_event(2), customer_event(3), customer_event(4))
    customers: dict[str, Any] = {"type": "cn.yekuo.customer", "limit": 2}
    with client_for(engine) as client:
        first = client.get("/v1/events", params=customers).json()
        second = client.get("/v1/events", params={**customers, "cursor": first["next_cursor"]}).json()
        drained = client.get("/v1/events", params={**customers, "cursor": second["next_cursor"]}).json()
    assert [item["id"] for item in first["items"]] == [1, 3]
    assert (first["limit"], first["gap"]) == (2, False)
    assert [item["id"] for item in second["items"]] == [4]
    # Past the last event the cursor stays where it is: the client polls it again.
    assert drained == {"items": [], "limit": 2, "next_cursor": second["next_cursor"], "gap": False}
    item = first["items"][0]
    assert item["type"] == "cn.yekuo.customer.changed.v1"
    assert item["subject"] == "C0001"
    assert item["event"]["data"]["identity_document"]["number"].endswith("1234")
    assert IDENTITY_NUMBER not in json.dumps(first)


def test_a_polling_client_always_gets_a_cursor_that_resumes_where_it_stopped(engine: Engine) -> None:
    with client_for(engine) as client:
        empty = client.get("/v1/events").json()
        assert empty["items"] == [] and empty["next_cursor"] is not None
        append(engine, customer_event(1), grid_event(2))
        first = client.get("/v1/events", params={"cursor": empty["next_cursor"]}).json()
        append(engine, customer_event(3))
        second = client.get("/v1/events", params={"cursor": first["next_cursor"]}).json()
    assert [item["id"] for item in first["items"]] == [1, 2]
    assert [item["id"] for item in second["items"]] == [3]
    assert second["next_cursor"] == encode_cursor(LISTING, [3])


def test_the_listing_says_when_events_after_the_cursor_were_pruned(engine: Engine) -> None:
    append(engine, *(customer_event(n) for n in range(1, 6)))
    with client_for(engine) as client:
        before = client.get("/v1/events", params={"limit": 1}).json()
        with engine.begin() as conn:
            conn.execute(event_feed.delete().where(event_feed.c.id <= 3))
        missed = client.get("/v1/events", params={"cursor": before["next_cursor"]}).json()
        in_reach = client.get("/v1/events", params={"cursor": encode_cursor(LISTING, [3])}).json()
    assert before["gap"] is False
    assert missed["gap"] is True and [item["id"] for item in missed["items"]] == [4, 5]
    assert in_reach["gap"] is False and [item["id"] for item in in_reach["items"]] == [4, 5]


def test_the_listing_shows_personal_data_to_a_caller_who_may_read_it(engine: Engine) -> None:
    append(engine, customer_event(1))
    with client_for(engine, pii=True) as client:
        body = client.get("/v1/events").json()
    assert body["items"][0]["event"]["data"]["identity_document"]["number"] == IDENTITY_NUMBER


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"limit": 0}, 422, "validation-failed"),
        ({"limit": 1001}, 422, "validation-failed"),
        ([("type", f"cn.yekuo.t{n}") for n in range(21)], 422, "validation-failed"),
        ({"sort": "-id"}, 422, "invalid-sort"),
        ({"cursor": "not-a-cursor"}, 400, "invalid-cursor"),
        ({"cursor": encode_cursor("applications", [3])}, 400, "invalid-cursor"),
        ({"cursor": encode_cursor(LISTING, ["3"])}, 400, "invalid-cursor"),
        ({"cursor": encode_cursor(LISTING, [-1])}, 400, "invalid-cursor"),
        ({"cursor": encode_cursor(LISTING, [MAX_FEED_ID + 1])}, 400, "invalid-cursor"),
    ],
)
def test_the_listing_refuses_bad_parameters_as_problems(
    engine: Engine, params: Any, status: int, code: str
) -> None:
    with client_for(engine) as client:
        response = client.get("/v1/events", params=params)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("headers", "params", "status", "code"),
    [
        ({"Last-Event-ID": "x"}, {}, 400, "invalid-last-event-id"),
        ({"Last-Event-ID": "-1"}, {}, 400, "invalid-last-event-id"),
        ({"Last-Event-ID": str(MAX_FEED_ID + 1)}, {}, 400, "invalid-last-event-id"),
        ({"Last-Event-ID": "9" * 5000}, {}, 400, "invalid-last-event-id"),
        # Larger than any feed id: refused before the stream starts, not a database overflow mid-stream.
        ({}, {"after": MAX_FEED_ID + 1}, 422, "validation-failed"),
        ({}, {"after": -1}, 422, "validation-failed"),
        ({}, {"type": [f"cn.yekuo.t{n}" for n in range(21)]}, 422, "validation-failed"),
    ],
)
def test_the_stream_refuses_bad_parameters_before_it_starts(
    engine: Engine, headers: dict[str, str], params: dict[str, Any], status: int, code: str
) -> None:
    with client_for(engine) as client:
        response = client.get("/v1/events/stream", headers=headers, params=params)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert response.headers["content-type"] == "application/problem+json"


# --- the SSE stream -----------------------------------------------------------------------------------


def entries_of(engine: Engine) -> list[FeedEntry]:
    with engine.connect() as conn:
        return read_feed(conn, after=0)


def collect(
    pages: Sequence[Sequence[FeedEntry]],
    *,
    after: int = 0,
    polls_before_disconnect: int,
    heartbeat_s: float = 1000.0,
    clock_step: float = 1.0,
    can_read_pii: bool = False,
    oldest_id: int | None = None,
) -> tuple[list[str], list[int]]:
    """Run feed_stream over scripted pages until the scripted disconnect; the chunks and the cursors read."""
    reads: list[int] = []
    script = iter(pages)
    polls = {"n": 0}
    ticks = iter(range(0, 10_000))

    def read(cursor: int) -> Sequence[FeedEntry]:
        reads.append(cursor)
        return next(script, [])

    async def disconnected() -> bool:
        polls["n"] += 1
        return polls["n"] > polls_before_disconnect

    async def run() -> list[str]:
        stream = feed_stream(
            read,
            after,
            can_read_pii=can_read_pii,
            disconnected=disconnected,
            poll_interval_s=0,
            heartbeat_s=heartbeat_s,
            oldest_id=oldest_id,
            clock=lambda: next(ticks) * clock_step,
        )
        return [chunk async for chunk in stream]

    return anyio.run(run), reads


def test_the_stream_sends_id_event_and_data_and_stops_when_the_client_leaves(engine: Engine) -> None:
    append(engine, customer_event(1), grid_event(2))
    entries = entries_of(engine)
    chunks, reads = collect([entries], after=0, polls_before_disconnect=3)
    assert chunks[0] == "retry: 3000\n\n"
    first = chunks[1].splitlines()
    assert first[0] == "id: 1"
    assert first[1] == "event: cn.yekuo.customer.changed.v1"
    data = json.loads(first[2].removeprefix("data: "))
    assert data["id"] == "evt-1"
    assert data["data"]["identity_document"]["number"] == "**************1234"
    assert chunks[2].startswith("id: 2\nevent: cn.yekuo.grid.feeder.changed.v1\n")
    # The cursor moved past what was sent, and the generator ended once disconnected() said so.
    assert reads == [0, 2, 2]


def test_the_stream_sends_a_heartbeat_comment_when_idle() -> None:
    chunks, _ = collect([], polls_before_disconnect=4, heartbeat_s=2.0, clock_step=1.0)
    assert chunks.count(": heartbeat\n\n") >= 1
    assert all(chunk.startswith((":", "retry:")) for chunk in chunks)


def test_a_client_resuming_behind_the_pruned_feed_is_told_of_the_gap(engine: Engine) -> None:
    append(engine, *(customer_event(n) for n in range(1, 6)))
    kept = [entry for entry in entries_of(engine) if entry.id >= 4]
    chunks, _ = collect([kept], after=2, oldest_id=4, polls_before_disconnect=2)
    assert chunks[1] == 'event: feed.gap\ndata: {"after": 2, "oldest_id": 4}\n\n'
    assert chunks[2].startswith("id: 4\n")
    in_reach, _ = collect([kept], after=3, oldest_id=4, polls_before_disconnect=2)
    assert not any("feed.gap" in chunk for chunk in in_reach)


def test_last_event_id_must_be_a_feed_id() -> None:
    assert parse_last_event_id(None) is None
    assert parse_last_event_id(" ") is None
    assert parse_last_event_id(" 42 ") == 42
    assert parse_last_event_id(str(MAX_FEED_ID)) == MAX_FEED_ID
    for bad in ("abc", "-1", "+1", "4 2", "1e3", "\u0664\u0662", str(MAX_FEED_ID + 1)):
        with pytest.raises(ProblemError, match="not an event id") as raised:
            parse_last_event_id(bad)
        assert raised.value.code == "invalid-last-event-id"


@pytest.fixture
def served(engine: Engine) -> Iterator[str]:
    from ground.webserver import BackgroundServer

    app = FastAPI()
    feed = SubscriptionSettings(stream_poll_interval_s=0.02, stream_heartbeat_s=0.05)
    install_context(app, ApiContext(engine, feed=feed))
    app.include_router(events.router)
    with BackgroundServer(app, name="events-test") as server:
        yield server.base_url


def read_sse(
    url: str,
    headers: dict[str, str],
    params: dict[str, Any],
    count: int,
    on_open: Callable[[], None] = lambda: None,
) -> list[dict[str, str]]:
    """The first `count` events of a live stream, each as its fields; then the client hangs up.

    on_open runs once the first line arrived: the stream's starting point is fixed by then.
    """
    import httpx2

    events: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    with (
        httpx2.Client(timeout=10) as client,
        client.stream("GET", f"{url}/v1/events/stream", headers=headers, params=params) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for number, line in enumerate(response.iter_lines()):
            if number == 0:
                on_open()
            if not line:
                if "id" in fields:
                    events.append(fields)
                    if len(events) == count:
                        break
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
    return events


def test_a_live_stream_filters_by_type_and_resumes_from_last_event_id(engine: Engine, served: str) -> None:
    append(engine, customer_event(1), grid_event(2), customer_event(3), grid_event(4))
    first = read_sse(served, {}, {"after": 0, "type": "cn.yekuo.grid"}, 1)
    assert [(event["id"], event["event"]) for event in first] == [("2", "cn.yekuo.grid.feeder.changed.v1")]
    resumed = read_sse(served, {"Last-Event-ID": first[-1]["id"]}, {"type": "cn.yekuo.grid"}, 1)
    assert [event["id"] for event in resumed] == ["4"]
    assert json.loads(resumed[0]["data"])["id"] == "grid-4"


def test_a_live_stream_without_a_cursor_sends_only_new_events(engine: Engine, served: str) -> None:
    append(engine, customer_event(1))
    events = read_sse(served, {}, {}, 1, on_open=lambda: append(engine, customer_event(2)))
    assert [event["id"] for event in events] == ["2"]
