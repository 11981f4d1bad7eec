"""Tests of the marketing adapter's operator status and of building the adapter from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from adapters.marketing.breaker import CircuitBreaker
from adapters.marketing.status import MarketingStatus
from adapters.marketing.wiring import build_marketing
from ground.errors import SourceUnavailableError
from ground.settings import MarketingSettings
from simulators.marketing.contract import WSDL_PATH
from store.checkpoints import save_checkpoint
from store.submissions import add_submission, store_push
from tests.unit.adapters.marketing.conftest import quick_client
from tests.unit.mappings.samples import application_record


@dataclass
class Health:
    ok: bool
    failures: int = 0
    last_error: str | None = None


def test_the_database_alone_shows_watermark_inbox_and_queues(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        save_checkpoint(
            conn, "marketing", {"changed_at": "2026-12-01 08:00:00", "key": "261201", "push_seq": 1}
        )
        store_push(conn, application_record())
        store_push(conn, application_record(UPDATE_TIME="2026-12-01 09:00:00"))
        add_submission(
            conn, tracking_id="t-1", idempotency_key=None, request_hash="h", request={}, arguments={}
        )
    report = MarketingStatus(clock=lambda: datetime(2026, 12, 1, 1, 0, tzinfo=UTC))
    with sqlite_engine.connect() as conn:
        view = report(conn)
    assert view["watermark"] == {"changed_at": "2026-12-01 08:00:00", "key": "261201"}
    assert view["watermark_age_s"] == 3600.0
    assert view["push_inbox"] == {"received": 2, "waiting": 1, "taken_up_to": 1}
    assert view["submissions"] == {"pending": 1}
    assert view["writebacks"] == {}
    assert (view["available"], view["circuit"], view["loops"]) == (None, None, {})


def test_a_running_adapter_adds_its_circuit_and_its_loops(sqlite_engine: Engine) -> None:
    breaker = CircuitBreaker("marketing", failure_threshold=1)
    breaker.failed(SourceUnavailableError("HTTP 503"))
    client = quick_client(str(WSDL_PATH), breaker=breaker)
    loops = {"poll:marketing": Health(False, 3, "circuit open"), "relay": Health(True)}
    report = MarketingStatus(client=client, loops=lambda: loops)
    with sqlite_engine.connect() as conn:
        view = report(conn)
    assert view["available"] is False
    assert view["circuit"]["state"] == "open" and view["circuit"]["last_error"] == "HTTP 503"
    assert view["loops"] == {"poll:marketing": {"ok": False, "failures": 3, "last_error": "circuit open"}}
    assert view["watermark"] is None and view["watermark_age_s"] is None


def test_the_settings_build_one_client_for_poller_and_writer(sqlite_engine: Engine) -> None:
    settings = MarketingSettings(
        wsdl_url=str(WSDL_PATH),
        page_size=33,
        breaker_failures=7,
        breaker_reset_s=9,
        retry_attempts=2,
        push_batch=12,
    )
    adapter = build_marketing(settings, sqlite_engine)
    assert adapter.source.client is adapter.client is adapter.writer.client
    assert adapter.client.breaker.failure_threshold == 7 and adapter.client.breaker.reset_timeout_s == 9
    assert adapter.client.policy.attempts == 2
    assert (adapter.source.page_size, adapter.source.push_batch, adapter.source.engine) == (
        33,
        12,
        sqlite_engine,
    )
    name, step = adapter.writer_loop
    assert name == "write:marketing" and step == adapter.writer.step
    with sqlite_engine.connect() as conn:
        view = adapter.status()(conn)
    assert view["available"] is True and "source" in view and "writer" in view
