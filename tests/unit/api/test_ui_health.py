"""The integration health page: adapters, outbox backlog and queue depths as /admin/adapters and /metrics read
them, and parked messages inspected, replayed and discarded through the operator service, each action
recorded with the logged-in user's name exactly as /admin records it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import get_args

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from adapters.marketing.breaker import CircuitState
from api.metrics import HubMetrics, WatchedQueue
from api.ui import labels
from api.ui.health import age_text
from bus import open_bus
from bus.memory import discard_broker, unique_url
from bus.port import Bus
from ground.errors import BusUnavailableError
from pipeline.operations import STATUSES, Action, Operations
from store.audit import list_entries
from store.operations import list_actions
from store.parking import ParkedKind
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer, token

from ..pipeline.parked_samples import (
    AUDIT_QUEUE,
    IDENTITY_NO,
    WORKFLOW_QUEUE,
    dead_letter_payload,
    declare_consumers,
    park_dead_letter,
    park_invalid_record,
    personal_customer_record,
    shipped_ingestor,
)

OPERATOR = bearer("operator", sub="alice")
WATCHED = [WatchedQueue("workflow", WORKFLOW_QUEUE), WatchedQueue("audit", AUDIT_QUEUE)]


@pytest.fixture
def bus_url() -> Iterator[str]:
    url = unique_url("ui-health")
    declare_consumers(url)
    yield url
    discard_broker(url)


@pytest.fixture
def client(sqlite_engine: Engine, bus_url: str) -> TestClient:
    operations = Operations(
        sqlite_engine, open_bus=lambda: open_bus(bus_url), ingestor=shipped_ingestor(sqlite_engine)
    )
    metrics = HubMetrics(sqlite_engine, operations.open_bus, WATCHED)
    app = hub_app(sqlite_engine, auth=TEST_AUTH, operations=operations, metrics=metrics)
    return TestClient(app, headers=OPERATOR)


def _figure(page: str, name: str) -> str:
    found = re.search(rf'data-figure="{name}" data-value="([^"]*)"', page)
    assert found is not None, name
    return found[1]


def _gauges(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_page_shows_what_the_adapters_route_and_the_metrics_read(
    client: TestClient, sqlite_engine: Engine
) -> None:
    park_dead_letter(sqlite_engine, dead_letter_payload(AUDIT_QUEUE))
    park_invalid_record(sqlite_engine)
    replayed = park_dead_letter(sqlite_engine, dead_letter_payload(AUDIT_QUEUE, application_no="A7"))
    client.post(f"/ui/health/parked/{replayed}/replay")  # one message waits in the audit queue now

    page = client.get("/ui/health").text
    gauges = _gauges(client)

    # Still parked: one dead letter, one invalid record; the replayed one is no longer counted.
    assert (_figure(page, "parked_dead"), _figure(page, "parked_invalid")) == ("1", "1")
    assert gauges[("yekuo_parked_messages", (("kind", "dead"),))] == 1.0
    assert float(_figure(page, "outbox_pending")) == gauges[("yekuo_outbox_pending_events", ())]
    depths = dict(re.findall(r'<tr data-queue="([\w.]+)">.*?data-depth="(\d+)"', page))
    assert depths == {WORKFLOW_QUEUE: "0", AUDIT_QUEUE: "1"}
    assert gauges[("yekuo_consumer_lag_messages", (("consumer", "audit"), ("queue", AUDIT_QUEUE)))] == 1.0
    adapters = client.get("/admin/adapters").json()["items"]
    assert re.findall(r'<tr data-adapter="(\w+)"', page) == [item["name"] for item in adapters]
    assert "尚未轮询" in page  # the marketing adapter's watermark before its first poll
    assert re.findall(r'<tr data-parked="(\d+)"', page) == ["1", "2"]


def test_a_replay_from_the_page_is_recorded_with_the_users_name_as_the_admin_api_records_it(
    client: TestClient, sqlite_engine: Engine, bus_url: str
) -> None:
    dead_id = park_dead_letter(sqlite_engine, dead_letter_payload(AUDIT_QUEUE))

    replayed = client.post(f"/ui/health/parked/{dead_id}/replay", follow_redirects=False)

    assert replayed.status_code == 303 and replayed.headers["location"] == f"/ui/health/parked/{dead_id}"
    with sqlite_engine.connect() as conn:
        [action] = list_actions(conn, dead_id)
        [audited] = list_entries(conn, action="parked.replay")
    assert (action.operator, action.action) == ("alice", "replay")
    assert (audited.actor, audited.subject) == ("alice", f"parked/{dead_id}")
    bus = open_bus(bus_url)
    assert bus.queue_depth(AUDIT_QUEUE) == 1
    bus.close()
    shown = client.get(f"/ui/health/parked/{dead_id}").text
    assert 'data-status="replayed"' in shown
    assert re.search(r'<tr data-action="replay"><td>[^<]+</td><td class="operator">alice</td>', shown)
    assert 'id="replay"' not in shown  # no longer parked: nothing to act on
    # A second replay is refused as /admin refuses it (409), and nothing more is recorded.
    again = client.post(f"/ui/health/parked/{dead_id}/replay")
    assert again.status_code == 409 and "操作未执行" in again.text and "already replayed" in again.text
    with sqlite_engine.connect() as conn:
        assert len(list_actions(conn, dead_id)) == 1


def test_a_discard_from_the_page_is_recorded_and_an_unknown_message_is_404(
    client: TestClient, sqlite_engine: Engine
) -> None:
    invalid_id = park_invalid_record(sqlite_engine)
    assert client.post(f"/ui/health/parked/{invalid_id}/discard").status_code == 200  # after the redirect
    with sqlite_engine.connect() as conn:
        [action] = list_actions(conn, invalid_id)
    assert (action.operator, action.action) == ("alice", "discard")
    assert client.get("/ui/health", params={"status": "discarded"}).text.count("已丢弃") >= 1
    assert client.get("/ui/health/parked/4711").status_code == 404
    assert client.post("/ui/health/parked/4711/discard").status_code == 404


def test_a_reader_without_admin_operate_sees_no_actions_and_cannot_act(
    client: TestClient, sqlite_engine: Engine
) -> None:
    dead_id = park_dead_letter(sqlite_engine, dead_letter_payload(WORKFLOW_QUEUE))
    reader = bearer("viewer", scopes=["admin:read"], sub="carol")
    shown = client.get(f"/ui/health/parked/{dead_id}", headers=reader)
    assert shown.status_code == 200 and 'id="replay"' not in shown.text
    assert client.post(f"/ui/health/parked/{dead_id}/replay", headers=reader).status_code == 403
    assert client.get("/ui/health", headers=bearer("viewer")).status_code == 403


def test_personal_data_is_masked_unless_pii_read_and_an_unmasked_read_is_audited(
    client: TestClient, sqlite_engine: Engine
) -> None:
    personal_id = park_invalid_record(sqlite_engine, personal_customer_record())
    masked = client.get(f"/ui/health/parked/{personal_id}").text
    assert IDENTITY_NO not in masked and "**************1234" in masked
    assert IDENTITY_NO not in client.get("/ui/health").text
    with sqlite_engine.connect() as conn:
        assert list_entries(conn, action="pii.read") == []

    reader = bearer("operator", scopes=["pii:read"], sub="pat")
    assert IDENTITY_NO in client.get(f"/ui/health/parked/{personal_id}", headers=reader).text
    with sqlite_engine.connect() as conn:
        reads = list_entries(conn, action="pii.read")
    assert [(entry.actor, entry.subject, entry.detail["view"]) for entry in reads] == [
        ("pat", f"parked/{personal_id}", "GET /ui/health/parked/{parked_id}")
    ]


def _session(client: TestClient) -> tuple[TestClient, str]:
    """A browser-like client logged in through the form, and its session's CSRF token."""
    browser = TestClient(client.app)
    form = browser.get("/ui/login").text
    login_csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert login_csrf is not None
    browser.post("/ui/login", data={"token": token("operator", sub="dora"), "csrf_token": login_csrf[1]})
    page = browser.get("/ui/health").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None
    return browser, csrf[1]


def test_a_session_acts_only_with_its_csrf_token(client: TestClient, sqlite_engine: Engine) -> None:
    dead_id = park_dead_letter(sqlite_engine, dead_letter_payload(AUDIT_QUEUE))
    browser, csrf = _session(client)
    assert browser.post(f"/ui/health/parked/{dead_id}/discard").status_code == 403
    assert (
        browser.post(f"/ui/health/parked/{dead_id}/discard", data={"csrf_token": "forged"}).status_code == 403
    )
    done = browser.post(
        f"/ui/health/parked/{dead_id}/discard", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert done.status_code == 303
    with sqlite_engine.connect() as conn:
        [action] = list_actions(conn, dead_id)
    assert action.operator == "dora"


def test_lags_read_at_a_glance() -> None:
    assert [
        age_text(value) for value in (None, 45.9, 12 * 60 + 5, 3 * 3600 + 5 * 60, 35 * 86400 + 4 * 3600)
    ] == [
        "—",
        "45 秒",
        "12 分钟",
        "3 小时 5 分",
        "35 天 4 小时",
    ]


def test_without_the_bus_the_page_says_so_and_shows_the_rest(sqlite_engine: Engine) -> None:
    def no_bus() -> Bus:
        raise BusUnavailableError("connection refused")

    metrics = HubMetrics(sqlite_engine, no_bus, WATCHED)
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH, metrics=metrics), headers=OPERATOR)
    park_invalid_record(sqlite_engine)
    page = client.get("/ui/health")
    assert page.status_code == 200
    assert 'id="queues-unavailable"' in page.text and 'id="queues"' not in page.text
    assert _figure(page.text, "parked_invalid") == "1"


def test_the_pages_codes_have_chinese_names() -> None:
    assert set(labels.PARKED_KINDS) == set(get_args(ParkedKind))
    assert set(labels.PARKED_STATUSES) == set(STATUSES)
    assert set(labels.OPERATOR_ACTIONS) == set(get_args(Action))
    assert set(labels.CIRCUIT_STATES) == {state.value for state in CircuitState}
