"""Webhooks: subscriptions over the API, and signed deliveries with retries, ordering, parking and replay.

The receiver is a real HTTP server (pytest-httpserver on 127.0.0.1, which the allowlist of these tests
names) scripted per event id; the dispatcher runs step by step on a test clock, installed as the hub's
clock, so retries are driven by moving the clock, never by waiting. Host names resolve through a scripted
DNS. Each caller sees only its own subscriptions; an admin sees all of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pytest_httpserver import HTTPServer
from sqlalchemy.engine import Engine
from werkzeug import Request, Response

from api import webhooks
from api.context import ApiContext, install_context
from api.listing import encode_cursor
from api.problems import install_problem_handlers
from api.security import caller_can_read_pii
from api.webhooks import WebhookCaller, principal_caller
from ground import clock as hub_clock
from ground.settings import WebhookSettings
from store.database import utcnow
from subscriptions.feed import FeedPruner
from subscriptions.settings import SubscriptionSettings
from subscriptions.signing import SIGNATURE_HEADER, signature_header, verify
from subscriptions.webhooks import WebhookDispatcher, backoff
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer
from tests.support.webhooks import PUBLIC_ADDRESS, ScriptedDns
from tests.unit.api.test_events import IDENTITY_NUMBER, T0, append, customer_event, grid_event

SETTINGS = SubscriptionSettings(
    webhook_initial_backoff_s=10, webhook_max_backoff_s=60, webhook_max_attempts=4, webhook_lease_s=30
)
# The receiver listens on 127.0.0.1: only the allowlist lets deliveries go there.
LOCAL_RECEIVER = WebhookSettings(allowed_hosts=["127.0.0.1/32"])
DNS = ScriptedDns({"platform.example": [PUBLIC_ADDRESS], "x.example": [PUBLIC_ADDRESS]})
OWNER = "platform-a"


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Receiver:
    """A webhook endpoint that answers each event id with scripted statuses (then 200) and logs every call."""

    statuses: dict[str, list[int]] = field(default_factory=dict)
    calls: list[tuple[str, int, dict[str, str], bytes]] = field(default_factory=list)

    def __call__(self, request: Request) -> Response:
        event_id = request.headers["X-Yekuo-Event-Id"]
        script = self.statuses.get(event_id, [])
        status = script.pop(0) if script else 200
        self.calls.append((event_id, status, dict(request.headers), request.get_data()))
        return Response("ok" if status < 300 else "broken", status=status)

    def delivered(self) -> list[str]:
        return [event_id for event_id, status, _, _ in self.calls if status == 200]

    def attempts(self) -> list[tuple[str, int]]:
        return [(event_id, status) for event_id, status, _, _ in self.calls]


@pytest.fixture
def httpserver(httpserver_ipv4: HTTPServer) -> HTTPServer:
    """The webhook receiver, on 127.0.0.1."""
    return httpserver_ipv4


@pytest.fixture
def receiver(httpserver: HTTPServer) -> Receiver:
    handler = Receiver()
    httpserver.expect_request("/hook", method="POST").respond_with_handler(handler)
    return handler


@pytest.fixture
def clock() -> Iterator[Clock]:
    fixed = Clock()
    with hub_clock.use(fixed):
        yield fixed


@pytest.fixture
def dispatcher(sqlite_engine: Engine, clock: Clock) -> Iterator[WebhookDispatcher]:
    worker = WebhookDispatcher(
        sqlite_engine, SETTINGS, webhooks=LOCAL_RECEIVER, resolver=DNS, clock=clock, owner="hub-a"
    )
    yield worker
    worker.close()


def api(
    engine: Engine,
    *,
    pii: bool = False,
    caller: str = OWNER,
    admin: bool = False,
    settings: WebhookSettings = LOCAL_RECEIVER,
    dns: ScriptedDns = DNS,
) -> TestClient:
    """The webhook routes as `caller` sees them (an admin sees every caller's subscriptions)."""
    app = FastAPI()
    install_problem_handlers(app)
    install_context(app, ApiContext(engine, webhooks=settings, resolver=dns))
    app.dependency_overrides[caller_can_read_pii] = lambda: pii
    app.dependency_overrides[principal_caller] = lambda: WebhookCaller(caller, sees_all=admin)
    app.include_router(webhooks.router)
    return TestClient(app)


def subscribe(
    engine: Engine, url: str, *, pii: bool = False, caller: str = OWNER, dns: ScriptedDns = DNS, **body: Any
) -> dict[str, Any]:
    with api(engine, pii=pii, caller=caller, dns=dns) as client:
        response = client.post("/v1/webhooks", json={"url": url, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def every_page(client: TestClient, path: str, *, limit: int) -> list[dict[str, Any]]:
    """Every item of a listing, following next_cursor until it is null."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    for _ in range(50):
        body = client.get(path, params=params).json()
        items += body["items"]
        if body["next_cursor"] is None:
            return items
        params["cursor"] = body["next_cursor"]
    raise AssertionError(f"{path} never reached its last page")


def run_until_idle(dispatcher: WebhookDispatcher, limit: int = 50) -> None:
    for _ in range(limit):
        if not dispatcher.step():
            return
    raise AssertionError("the dispatcher never became idle")


# --- the management API -------------------------------------------------------------------------------


def run_through_every_try(dispatcher: WebhookDispatcher, clock: Clock) -> None:
    """Let the dispatcher make every attempt it may, waiting out the longest backoff between them."""
    for _ in range(SETTINGS.webhook_max_attempts):
        run_until_idle(dispatcher)
        clock.advance(SETTINGS.webhook_max_backoff_s)


def test_a_subscription_shows_its_secret_once(sqlite_engine: Engine) -> None:
    created = subscribe(sqlite_engine, "https://platform.example/hooks", event_types=["cn.yekuo.case"])
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["cn.yekuo.case"]
    assert created["active"] is True
    assert created["owner"] == OWNER
    with api(sqlite_engine) as client:
        listed = client.get("/v1/webhooks").json()
        one = client.get(f"/v1/webhooks/{created['id']}").json()
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    assert (listed["limit"], listed["next_cursor"]) == (100, None)
    assert "secret" not in listed["items"][0]
    assert "secret" not in one
    assert one["deliveries"] == {"pending": 0, "delivered": 0, "parked": 0}


def test_subscriptions_page_with_a_cursor_oldest_first(sqlite_engine: Engine) -> None:
    created = [subscribe(sqlite_engine, f"https://platform.example/hooks/{n}")["id"] for n in range(5)]
    with api(sqlite_engine) as client:
        seen = [item["id"] for item in every_page(client, "/v1/webhooks", limit=2)]
        refused = client.get("/v1/webhooks", params={"sort": "url"})
        foreign = client.get("/v1/webhooks", params={"cursor": encode_cursor("applications", ["x", "y"])})
    assert seen == created
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid-sort")
    assert (foreign.status_code, foreign.json()["code"]) == (400, "invalid-cursor")


def test_bad_subscriptions_are_refused(sqlite_engine: Engine) -> None:
    with api(sqlite_engine) as client:
        assert client.post("/v1/webhooks", json={"url": "ftp://x.example/"}).status_code == 422
        bad_filter = {"url": "https://x.example/", "event_types": ["cn.yekuo.%"]}
        assert client.post("/v1/webhooks", json=bad_filter).status_code == 422
        with_pii = {"url": "https://x.example/", "include_pii": True}
        refused = client.post("/v1/webhooks", json=with_pii)
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    with api(sqlite_engine, pii=True) as client:
        assert client.post("/v1/webhooks", json=with_pii).status_code == 201


def test_deleting_a_subscription_removes_it(sqlite_engine: Engine) -> None:
    created = subscribe(sqlite_engine, "https://platform.example/hooks")
    with api(sqlite_engine) as client:
        assert client.delete(f"/v1/webhooks/{created['id']}").status_code == 204
        gone = [
            client.delete(f"/v1/webhooks/{created['id']}"),
            client.get(f"/v1/webhooks/{created['id']}"),
            client.get(f"/v1/webhooks/{created['id']}/deliveries"),
        ]
    for response in gone:
        assert (response.status_code, response.json()["code"]) == (404, "webhook-not-found")
        assert response.headers["content-type"] == "application/problem+json"


# --- delivery -----------------------------------------------------------------------------------------


def test_a_delivery_is_signed_and_the_signature_verifies(
    sqlite_engine: Engine,
    httpserver: HTTPServer,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    clock: Clock,
) -> None:
    created = subscribe(sqlite_engine, httpserver.url_for("/hook"))
    append(sqlite_engine, customer_event(1))
    run_until_idle(dispatcher)
    [(event_id, status, headers, body)] = receiver.calls
    assert (event_id, status) == ("evt-1", 200)
    header = headers[SIGNATURE_HEADER]
    now = int(clock().timestamp())
    assert header == signature_header(created["secret"], now, body)
    assert verify(created["secret"], header, body, now=now)
    assert not verify("whsec_other", header, body, now=now)
    assert not verify(created["secret"], header, body + b" ", now=now)
    assert not verify(created["secret"], header, body, now=now + 3600)  # too old: a replayed request
    assert headers["Content-Type"] == "application/cloudevents+json; charset=utf-8"
    event = json.loads(body)
    assert event["id"] == "evt-1"
    assert event["type"] == "cn.yekuo.customer.changed.v1"
    # Masked: the subscription was created without include_pii.
    assert event["data"]["identity_document"]["number"] == "**************1234"


def test_personal_data_goes_only_to_a_subscription_allowed_it(
    sqlite_engine: Engine, httpserver: HTTPServer, receiver: Receiver, dispatcher: WebhookDispatcher
) -> None:
    subscribe(sqlite_engine, httpserver.url_for("/hook"), pii=True, include_pii=True)
    append(sqlite_engine, customer_event(1))
    run_until_idle(dispatcher)
    [(_, _, _, body)] = receiver.calls
    assert json.loads(body)["data"]["identity_document"]["number"] == IDENTITY_NUMBER


def test_a_subscription_gets_only_new_events_of_its_types(
    sqlite_engine: Engine, httpserver: HTTPServer, receiver: Receiver, dispatcher: WebhookDispatcher
) -> None:
    append(sqlite_engine, grid_event(1))  # before the subscription: not sent
    subscribe(sqlite_engine, httpserver.url_for("/hook"), event_types=["cn.yekuo.grid"])
    append(sqlite_engine, customer_event(2), grid_event(3), grid_event(4, "main_transformer"))
    run_until_idle(dispatcher)
    assert receiver.delivered() == ["grid-3", "grid-4"]


def test_a_failing_delivery_is_retried_with_growing_backoff_and_logged(
    sqlite_engine: Engine,
    httpserver: HTTPServer,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    clock: Clock,
) -> None:
    created = subscribe(sqlite_engine, httpserver.url_for("/hook"))
    receiver.statuses["evt-1"] = [500, 503]
    append(sqlite_engine, customer_event(1))
    run_until_idle(dispatcher)
    assert receiver.attempts() == [("evt-1", 500)]
    clock.advance(9)
    run_until_idle(dispatcher)  # not due yet
    assert len(receiver.calls) == 1
    clock.advance(1)
    run_until_idle(dispatcher)
    assert receiver.attempts() == [("evt-1", 500), ("evt-1", 503)]
    clock.advance(19)
    run_until_idle(dispatcher)
    assert len(receiver.calls) == 2  # the second wait is twice the first
    clock.advance(1)
    run_until_idle(dispatcher)
    assert receiver.delivered() == ["evt-1"]

    with api(sqlite_engine) as client:
        listing = client.get(f"/v1/webhooks/{created['id']}/deliveries").json()
        [delivery] = listing["items"]
        detail = client.get(f"/v1/webhooks/{created['id']}/deliveries/{delivery['id']}").json()
    assert delivery["status"] == "delivered"
    assert delivery["attempts"] == 3
    log = detail["attempt_log"]
    assert [(entry["attempt"], entry["status_code"]) for entry in log] == [(1, 500), (2, 503), (3, 200)]
    assert [entry["error"] for entry in log] == ["HTTP 500", "HTTP 503", None]
    next_tries = [
        entry["next_attempt_at"] and datetime.fromisoformat(entry["next_attempt_at"]) for entry in log
    ]
    assert next_tries == [T0 + timedelta(seconds=10), T0 + timedelta(seconds=10 + 20), None]


def test_deliveries_page_with_a_cursor_that_fits_only_their_subscription(
    sqlite_engine: Engine, httpserver: HTTPServer, receiver: Receiver, dispatcher: WebhookDispatcher
) -> None:
    created = subscribe(sqlite_engine, httpserver.url_for("/hook"))
    other = subscribe(sqlite_engine, httpserver.url_for("/hook"))
    append(sqlite_engine, *(customer_event(n) for n in range(1, 6)))
    run_until_idle(dispatcher)
    deliveries = f"/v1/webhooks/{created['id']}/deliveries"
    with api(sqlite_engine) as client:
        seen = [item["event_id"] for item in every_page(client, deliveries, limit=2)]
        first = client.get(deliveries, params={"limit": 2}).json()
        foreign = client.get(
            f"/v1/webhooks/{other['id']}/deliveries", params={"cursor": first["next_cursor"]}
        )
        refused = client.get(deliveries, params={"sort": "-id"})
    assert seen == [f"evt-{n}" for n in range(1, 6)]
    assert (foreign.status_code, foreign.json()["code"]) == (400, "invalid-cursor")
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid-sort")


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff(n, SETTINGS).total_seconds() for n in range(1, 6)] == [10, 20, 40, 60, 60]


def test_deliveries_keep_feed_order_and_none_is_lost(
    sqlite_engine: Engine,
    httpserver: HTTPServer,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    clock: Clock,
) -> None:
    subscribe(sqlite_engine, httpserver.url_for("/hook"))
    receiver.statuses["evt-2"] = [500]
    append(sqlite_engine, *(customer_event(n) for n in range(1, 6)))
    run_until_idle(dispatcher)
    # evt-2 failed: nothing after it went out while it waits for its retry.
    assert receiver.attempts() == [("evt-1", 200), ("evt-2", 500)]
    append(sqlite_engine, customer_event(6))
    clock.advance(10)
    run_until_idle(dispatcher)
    assert receiver.delivered() == [f"evt-{n}" for n in range(1, 7)]


def test_a_delivery_is_parked_after_its_last_try_and_can_be_replayed(
    sqlite_engine: Engine,
    httpserver: HTTPServer,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    clock: Clock,
) -> None:
    created = subscribe(sqlite_engine, httpserver.url_for("/hook"))
    receiver.statuses["evt-1"] = [500] * SETTINGS.webhook_max_attempts
    append(sqlite_engine, customer_event(1), customer_event(2))
    run_through_every_try(dispatcher, clock)
    # Parked after four tries; the queue moved on to evt-2.
    assert receiver.attempts() == [("evt-1", 500)] * 4 + [("evt-2", 200)]
    with api(sqlite_engine) as client:
        parked = client.get(f"/v1/webhooks/{created['id']}/deliveries", params={"status": "parked"}).json()
        [delivery] = parked["items"]
        assert delivery["event_id"] == "evt-1"
        assert delivery["last_status_code"] == 500
        assert client.get(f"/v1/webhooks/{created['id']}").json()["deliveries"] == {
            "pending": 0,
            "delivered": 1,
            "parked": 1,
        }
        replay = client.post(f"/v1/webhooks/{created['id']}/deliveries/{delivery['id']}/replay")
        assert (replay.status_code, replay.json()) == (202, {"id": delivery["id"], "status": "pending"})
        again = client.post(f"/v1/webhooks/{created['id']}/deliveries/{delivery['id']}/replay")
        assert (again.status_code, again.json()["code"]) == (409, "delivery-pending")
        unknown = client.post(f"/v1/webhooks/{created['id']}/deliveries/999/replay")
        assert (unknown.status_code, unknown.json()["code"]) == (404, "delivery-not-found")
        missing = client.get(f"/v1/webhooks/{created['id']}/deliveries/999")
        assert (missing.status_code, missing.json()["code"]) == (404, "delivery-not-found")
    run_until_idle(dispatcher)
    assert receiver.delivered() == ["evt-2", "evt-1"]


def test_an_unreachable_receiver_is_a_failed_attempt(
    sqlite_engine: Engine, dispatcher: WebhookDispatcher
) -> None:
    created = subscribe(sqlite_engine, "http://127.0.0.1:9/hook")  # discard port: connection refused
    append(sqlite_engine, customer_event(1))
    run_until_idle(dispatcher)
    with api(sqlite_engine) as client:
        [delivery] = client.get(f"/v1/webhooks/{created['id']}/deliveries").json()["items"]
    assert delivery["status"] == "pending"
    assert delivery["last_status_code"] is None
    assert delivery["last_error"].startswith("ConnectError")


def test_one_process_at_a_time_serves_a_subscription(
    sqlite_engine: Engine,
    httpserver: HTTPServer,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    clock: Clock,
) -> None:
    subscribe(sqlite_engine, httpserver.url_for("/hook"))
    append(sqlite_engine, customer_event(1))
    run_until_idle(dispatcher)
    other = WebhookDispatcher(
        sqlite_engine, SETTINGS, webhooks=LOCAL_RECEIVER, resolver=DNS, clock=clock, owner="hub-b"
    )
    try:
        append(sqlite_engine, customer_event(2))
        assert other.step() is False  # hub-a's lease still runs
        assert receiver.delivered() == ["evt-1"]
        clock.advance(SETTINGS.webhook_lease_s + 1)
        run_until_idle(other)  # hub-a went quiet: hub-b takes over
        assert receiver.delivered() == ["evt-1", "evt-2"]
        assert dispatcher.step() is False
    finally:
        other.close()


def test_the_feed_is_pruned_only_behind_every_subscription(
    sqlite_engine: Engine, httpserver: HTTPServer, receiver: Receiver, dispatcher: WebhookDispatcher
) -> None:
    subscribe(sqlite_engine, httpserver.url_for("/hook"))
    append(sqlite_engine, *(customer_event(n) for n in range(1, 5)))
    pruner = FeedPruner(sqlite_engine, SubscriptionSettings(feed_max_rows=1), clock=utcnow)
    assert pruner.prune() == 0  # the subscription has not taken them yet
    run_until_idle(dispatcher)
    assert receiver.delivered() == ["evt-1", "evt-2", "evt-3", "evt-4"]
    assert pruner.prune() == 3


def test_delivered_deliveries_follow_the_feed_retention_and_parked_ones_stay(
    sqlite_engine: Engine,
    httpserver: HTTPServer,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    clock: Clock,
) -> None:
    created = subscribe(sqlite_engine, httpserver.url_for("/hook"))
    receiver.statuses["evt-2"] = [500] * SETTINGS.webhook_max_attempts
    append(sqlite_engine, customer_event(1), customer_event(2))
    run_through_every_try(dispatcher, clock)
    later = clock.now + timedelta(days=8)
    FeedPruner(sqlite_engine, SubscriptionSettings(feed_retention_days=7), clock=lambda: later).prune()
    with api(sqlite_engine) as client:
        left = client.get(f"/v1/webhooks/{created['id']}/deliveries").json()["items"]
    assert [(item["event_id"], item["status"]) for item in left] == [("evt-2", "parked")]


# --- ownership ----------------------------------------------------------------------------------------


def test_another_caller_cannot_reach_my_subscription_and_an_admin_can(
    sqlite_engine: Engine,
    httpserver: HTTPServer,
    receiver: Receiver,
    dispatcher: WebhookDispatcher,
    clock: Clock,
) -> None:
    mine = subscribe(sqlite_engine, httpserver.url_for("/hook"), caller="platform-a")
    theirs = subscribe(sqlite_engine, httpserver.url_for("/hook"), caller="platform-b")
    receiver.statuses["evt-1"] = [500] * (2 * SETTINGS.webhook_max_attempts)
    append(sqlite_engine, customer_event(1))
    run_through_every_try(dispatcher, clock)
    with api(sqlite_engine, caller="platform-a") as owner:
        [parked] = owner.get(f"/v1/webhooks/{mine['id']}/deliveries", params={"status": "parked"}).json()[
            "items"
        ]
    base = f"/v1/webhooks/{mine['id']}"
    with api(sqlite_engine, caller="platform-b") as other:
        listed = other.get("/v1/webhooks").json()["items"]
        refused = {
            "get": other.get(base),
            "deliveries": other.get(f"{base}/deliveries"),
            "delivery": other.get(f"{base}/deliveries/{parked['id']}"),
            "replay": other.post(f"{base}/deliveries/{parked['id']}/replay"),
            "delete": other.delete(base),
        }
        unknown = other.get("/v1/webhooks/no-such-subscription")
        assert other.get(f"/v1/webhooks/{theirs['id']}").status_code == 200  # its own one, beside
    assert [item["id"] for item in listed] == [theirs["id"]]
    for action, response in refused.items():
        # Answered exactly as an unknown id is: nothing says the subscription exists.
        assert (response.status_code, response.json()["code"]) == (404, "webhook-not-found"), action
        assert response.json()["detail"] == unknown.json()["detail"].replace(
            "no-such-subscription", mine["id"]
        )
    with api(sqlite_engine, caller="platform-a") as owner:
        left = owner.get(base).json()
        assert [item["id"] for item in owner.get("/v1/webhooks").json()["items"]] == [mine["id"]]
    assert left["deliveries"] == {"pending": 0, "delivered": 0, "parked": 1}  # untouched by the other caller

    with api(sqlite_engine, caller="ops", admin=True) as admin:
        everyone = admin.get("/v1/webhooks").json()["items"]
        assert admin.get(base).json()["owner"] == "platform-a"
        assert admin.get(f"{base}/deliveries/{parked['id']}").json()["status"] == "parked"
        assert admin.post(f"{base}/deliveries/{parked['id']}/replay").status_code == 202
        assert admin.delete(f"/v1/webhooks/{theirs['id']}").status_code == 204
    # Both were created at the same instant of the test clock: their order is by id.
    assert {item["id"]: item["owner"] for item in everyone} == {
        mine["id"]: "platform-a",
        theirs["id"]: "platform-b",
    }
    run_until_idle(dispatcher)
    assert receiver.attempts()[-1] == ("evt-1", 200)  # the admin's replay went out


def test_ownership_follows_the_authenticated_caller_of_the_whole_api(sqlite_engine: Engine) -> None:
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH, webhooks=WebhookSettings()))
    platform_a = bearer("integrator", sub="platform-a")
    platform_b = bearer("integrator", sub="platform-b")
    admin = bearer("admin", sub="ops")
    url = f"https://{PUBLIC_ADDRESS}/hooks"  # an address literal: nothing to resolve
    created = client.post("/v1/webhooks", json={"url": url}, headers=platform_a)
    assert created.status_code == 201, created.text
    mine = created.json()["id"]
    assert created.json()["owner"] == "platform-a"
    assert client.post("/v1/webhooks", json={"url": url}, headers=platform_b).status_code == 201

    assert client.delete(f"/v1/webhooks/{mine}", headers=platform_b).status_code == 404
    assert client.get(f"/v1/webhooks/{mine}", headers=platform_b).status_code == 404
    assert client.get(f"/v1/webhooks/{mine}", headers=platform_a).status_code == 200
    owners = [item["owner"] for item in client.get("/v1/webhooks", headers=admin).json()["items"]]
    assert sorted(owners) == ["platform-a", "platform-b"]
    assert [item["id"] for item in client.get("/v1/webhooks", headers=platform_a).json()["items"]] == [mine]
    assert client.delete(f"/v1/webhooks/{mine}", headers=admin).status_code == 204
    assert client.get(f"/v1/webhooks/{mine}", headers=platform_a).status_code == 404


# --- destinations when subscribing --------------------------------------------------------------------

# url, and what the refusal says of it
REFUSED_URLS = {
    "loopback": ("http://127.0.0.1:8080/hook", "loopback"),
    "loopback IPv6": ("http://[::1]/hook", "loopback"),
    "cloud metadata": ("http://169.254.169.254/latest/meta-data/", "link-local"),
    "link-local IPv6": ("http://[fe80::1]/hook", "link-local"),
    "private 10/8": ("http://10.0.0.8/hook", "private"),
    "private 172.16/12": ("http://172.20.1.1/hook", "private"),
    "private 192.168/16": ("http://192.168.0.10/hook", "private"),
    "unique local IPv6": ("http://[fd00::8]/hook", "private"),
    "this network": ("http://0.0.0.0:8080/hook", "unspecified"),
    "carrier-grade NAT": ("http://100.64.1.1/hook", "carrier-grade NAT"),
    "multicast": ("http://239.1.1.1/hook", "multicast"),
    "reserved": ("http://240.1.1.1/hook", "reserved"),
    "IPv4-mapped loopback": ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    "name resolving to loopback": ("http://rebind.example/hook", "rebind.example resolves to 127.0.0.1"),
    "name that does not resolve": ("http://nowhere.example/hook", "nowhere.example does not resolve"),
}


@pytest.mark.parametrize(("url", "reason"), REFUSED_URLS.values(), ids=list(REFUSED_URLS))
def test_subscribing_refuses_internal_destinations_beside_a_public_one(
    sqlite_engine: Engine, url: str, reason: str
) -> None:
    dns = ScriptedDns({"rebind.example": ["127.0.0.1"], "platform.example": [PUBLIC_ADDRESS]})
    with api(sqlite_engine, settings=WebhookSettings(), dns=dns) as client:
        refused = client.post("/v1/webhooks", json={"url": url})
        good = client.post("/v1/webhooks", json={"url": "https://platform.example/hooks"})
        listed = client.get("/v1/webhooks").json()["items"]
    assert (refused.status_code, refused.json()["code"]) == (422, "webhook-destination-refused")
    assert refused.headers["content-type"] == "application/problem+json"
    assert reason in refused.json()["detail"]
    assert good.status_code == 201
    assert [item["url"] for item in listed] == ["https://platform.example/hooks"]


def test_the_refusal_names_the_address_and_its_kind(sqlite_engine: Engine) -> None:
    dns = ScriptedDns({"rebind.example": [PUBLIC_ADDRESS, "169.254.169.254"]})
    with api(sqlite_engine, settings=WebhookSettings(), dns=dns) as client:
        detail = client.post("/v1/webhooks", json={"url": "http://rebind.example/x"}).json()["detail"]
    assert "rebind.example resolves to 169.254.169.254, which is a link-local address" in detail
    assert "settings.webhooks.allowed_hosts" in detail


@pytest.mark.parametrize(
    "url", ["ftp://platform.example/hook", "file:///etc/passwd", "gopher://platform.example/", "javascript:x"]
)
def test_subscribing_refuses_non_http_schemes(sqlite_engine: Engine, url: str) -> None:
    with api(sqlite_engine) as client:
        refused = client.post("/v1/webhooks", json={"url": url})
        assert client.post("/v1/webhooks", json={"url": "https://platform.example/hook"}).status_code == 201
    assert (refused.status_code, refused.json()["code"]) == (422, "validation-failed")
    assert re.search(r"scheme should be 'http' or 'https'|valid URL", refused.text)


def test_the_allowlist_lets_a_local_receiver_be_subscribed(sqlite_engine: Engine) -> None:
    local = WebhookSettings(allowed_hosts=["127.0.0.1/32", "receiver.internal"])
    dns = ScriptedDns({"receiver.internal": ["10.20.30.40"]})
    with api(sqlite_engine, settings=local, dns=dns) as client:
        assert client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9000/hook"}).status_code == 201
        assert client.post("/v1/webhooks", json={"url": "http://receiver.internal/hook"}).status_code == 201
        refused = client.post("/v1/webhooks", json={"url": "http://127.0.0.2:9000/hook"})
    assert (refused.status_code, refused.json()["code"]) == (422, "webhook-destination-refused")


# --- the cap per caller -------------------------------------------------------------------------------


def test_a_caller_holds_at_most_max_per_caller_subscriptions(sqlite_engine: Engine) -> None:
    capped = WebhookSettings(allowed_hosts=["127.0.0.1/32"], max_per_caller=3)
    url = {"url": "https://platform.example/hook"}
    with api(sqlite_engine, caller="platform-a", settings=capped) as client:
        created = [client.post("/v1/webhooks", json=url) for _ in range(3)]
        over = client.post("/v1/webhooks", json=url)
        assert client.delete(f"/v1/webhooks/{created[0].json()['id']}").status_code == 204
        again = client.post("/v1/webhooks", json=url)
        over_again = client.post("/v1/webhooks", json=url)
        held = client.get("/v1/webhooks").json()["items"]
    with api(sqlite_engine, caller="platform-b", settings=capped) as other:
        beside = other.post("/v1/webhooks", json=url)
    assert [response.status_code for response in created] == [201, 201, 201]
    assert (over.status_code, over.json()["code"]) == (409, "webhook-limit-reached")
    assert over.headers["content-type"] == "application/problem+json"
    assert "platform-a already holds 3 webhook subscriptions" in over.json()["detail"]
    assert "max_per_caller = 3" in over.json()["detail"] and over.json()["limit"] == 3
    assert again.status_code == 201  # a deleted subscription frees its place
    assert over_again.status_code == 409
    assert len(held) == 3
    assert beside.status_code == 201  # another caller's cap is its own
