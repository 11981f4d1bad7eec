"""/metrics reports outbox lag, parked messages and queue depths as measured now, and the hub's counters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from api.metrics import HubMetrics, WatchedQueue, watched_queues
from bus import open_bus
from bus.memory import discard_broker, unique_url
from bus.port import Bus, Message
from canonical_model.registry import schema_uri
from ground.clock import frozen_at
from ground.errors import BusUnavailableError, UnroutableError
from ground.metrics import CONSUMER_HANDLED, REGISTRY
from ground.settings import PROJECT_ROOT, ProcessSettings
from pipeline.decoded import DecodedEvent
from pipeline.operations import Operations
from pipeline.outbox import OutboxRelay, stage_event
from pipeline.records import EventDraft, RawRecord
from store.schema import consistency_findings, outbox, stage_visits
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH
from tests.unit.workflow.events import application_event
from workflow.cases import CaseTracker
from workflow.config import load_workflow_config
from yekuo.consumers import CONSUMERS

from ..mappings.samples import application_record
from ..pipeline.parked_samples import (
    AUDIT_QUEUE,
    EXCHANGE,
    WORKFLOW_QUEUE,
    dead_letter_payload,
    declare_consumers,
    park_dead_letter,
    park_invalid_envelope,
    park_invalid_record,
    shipped_ingestor,
)

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
QUEUES = [
    WatchedQueue("workflow", WORKFLOW_QUEUE),
    WatchedQueue("workflow", f"{WORKFLOW_QUEUE}.parking"),
    WatchedQueue("audit", AUDIT_QUEUE),
    WatchedQueue("audit", f"{AUDIT_QUEUE}.parking"),
]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def bus_url() -> Iterator[str]:
    url = unique_url("metrics")
    declare_consumers(url)
    yield url
    discard_broker(url)


def _scrape(client: TestClient) -> Samples:
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def _client(engine: Engine, open_bus_: object, queues: list[WatchedQueue] = QUEUES) -> TestClient:
    metrics = HubMetrics(engine, open_bus_, queues, clock=lambda: NOW)  # type: ignore[arg-type]
    return TestClient(hub_app(engine, auth=TEST_AUTH, operations=Operations(engine), metrics=metrics))


def _message(n: int) -> Message:
    return Message(body=b"{}", routing_key="application.changed.marketing", message_id=f"m-{n}")


def _counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_show_outbox_lag_parked_messages_and_queue_depths(
    sqlite_engine: Engine, bus_url: str
) -> None:
    records = [
        RawRecord("marketing", "application", no, application_record(APP_NO=no), {"key": no})
        for no in ("A1", "A3")
    ]
    outcome = shipped_ingestor(sqlite_engine).ingest(records)
    with sqlite_engine.begin() as conn:
        # The oldest unsent event was written 90 s before the scrape.
        first = conn.execute(sa.select(sa.func.min(outbox.c.id))).scalar_one()
        conn.execute(outbox.update().values(created_at=NOW - timedelta(seconds=30)))
        conn.execute(
            outbox.update().where(outbox.c.id == first).values(created_at=NOW - timedelta(seconds=90))
        )
    park_invalid_record(sqlite_engine)
    park_invalid_envelope(sqlite_engine)
    for n in range(3):
        park_dead_letter(sqlite_engine, dead_letter_payload(application_no=f"D{n}"))
    bus = open_bus(bus_url)
    bus.publish(EXCHANGE, [_message(n) for n in range(3)])  # both consumer queues are bound
    bus.publish("", [Message(body=b"{}", routing_key=f"{WORKFLOW_QUEUE}.parking", message_id="p-1")])
    bus.fetch(AUDIT_QUEUE, 2, 0.1)  # taken and not yet acknowledged: no longer waiting
    samples = _scrape(_client(sqlite_engine, lambda: open_bus(bus_url)))

    assert samples[("yekuo_outbox_pending_events", ())] == outcome.events >= 2
    assert samples[("yekuo_outbox_oldest_pending_age_seconds", ())] == 90.0
    assert samples[("yekuo_parked_messages", (("kind", "dead"),))] == 3
    assert samples[("yekuo_parked_messages", (("kind", "invalid"),))] == 2
    assert (
        samples[("yekuo_consumer_lag_messages", (("consumer", "workflow"), ("queue", WORKFLOW_QUEUE)))] == 3
    )
    assert (
        samples[
            (
                "yekuo_consumer_lag_messages",
                (("consumer", "workflow"), ("queue", f"{WORKFLOW_QUEUE}.parking")),
            )
        ]
        == 1
    )
    assert samples[("yekuo_consumer_lag_messages", (("consumer", "audit"), ("queue", AUDIT_QUEUE)))] == 1
    assert samples[("yekuo_scrape_dependency_up", (("dependency", "bus"),))] == 1
    assert samples[("yekuo_scrape_dependency_up", (("dependency", "database"),))] == 1
    bus.close()


def test_a_drained_outbox_reports_no_lag(sqlite_engine: Engine, bus_url: str) -> None:
    samples = _scrape(_client(sqlite_engine, lambda: open_bus(bus_url)))
    assert samples[("yekuo_outbox_pending_events", ())] == 0
    assert samples[("yekuo_outbox_oldest_pending_age_seconds", ())] == 0
    assert samples[("yekuo_parked_messages", (("kind", "dead"),))] == 0


def test_a_bus_failure_at_scrape_leaves_the_queue_gauges_out_but_answers(sqlite_engine: Engine) -> None:
    def broker_down() -> Bus:
        raise BusUnavailableError("connection refused")

    samples = _scrape(_client(sqlite_engine, broker_down))

    assert not [key for key in samples if key[0] == "yekuo_consumer_lag_messages"]
    assert samples[("yekuo_scrape_dependency_up", (("dependency", "bus"),))] == 0
    assert samples[("yekuo_outbox_pending_events", ())] == 0


def test_a_queue_not_declared_yet_is_left_out_and_the_others_are_reported(
    sqlite_engine: Engine, bus_url: str
) -> None:
    queues = [*QUEUES, WatchedQueue("billing", "yekuo.billing")]
    samples = _scrape(_client(sqlite_engine, lambda: open_bus(bus_url), queues))
    lag = {dict(labels)["queue"] for name, labels in samples if name == "yekuo_consumer_lag_messages"}
    assert lag == {queue.queue for queue in QUEUES}
    assert samples[("yekuo_scrape_dependency_up", (("dependency", "bus"),))] == 1


def test_the_relay_counts_confirmed_events_and_failures_by_error_class(
    sqlite_engine: Engine, bus_url: str
) -> None:
    def stage(routing_key: str) -> None:
        with sqlite_engine.begin() as conn:
            stage_event(
                conn,
                EventDraft(
                    event_type="cn.yekuo.application.changed.v1",
                    source="/marketing/application",
                    subject="A1",
                    dataschema=schema_uri("application.v1"),
                    data={},
                    exchange=EXCHANGE,
                    routing_key=routing_key,
                ),
                correlation_id="c-1",
            )

    published = _counter("yekuo_outbox_published_total")
    unroutable = _counter("yekuo_outbox_publish_failures_total", error="UnroutableError")
    relay = OutboxRelay(sqlite_engine, open_bus(bus_url))
    stage("application.changed.marketing")
    stage("application.changed.marketing")
    assert relay.relay_batches() == 2
    assert _counter("yekuo_outbox_published_total") == published + 2

    stage("application.changed.marketing")
    stage("nobody.listens")
    with pytest.raises(UnroutableError):
        relay.relay_batches()
    assert _counter("yekuo_outbox_published_total") == published + 3
    assert _counter("yekuo_outbox_publish_failures_total", error="UnroutableError") == unroutable + 1
    relay.bus.close()


def test_ingest_counts_records_and_invalid_ones_by_reason(sqlite_engine: Engine) -> None:
    records = _counter("yekuo_ingest_records_total", system="marketing")
    invalid = _counter("yekuo_ingest_invalid_total", system="marketing", reason="mapping")
    park_invalid_record(sqlite_engine)
    shipped_ingestor(sqlite_engine).ingest(
        [RawRecord("marketing", "application", "A1", application_record(APP_NO="A1"))]
    )
    assert _counter("yekuo_ingest_records_total", system="marketing") == records + 2
    assert _counter("yekuo_ingest_invalid_total", system="marketing", reason="mapping") == invalid + 1


def test_consumer_counters_appear_in_the_exposition(sqlite_engine: Engine, bus_url: str) -> None:
    before = _counter("yekuo_consumer_handled_total", consumer="metrics-test")
    CONSUMER_HANDLED.labels("metrics-test").inc(2)
    samples = _scrape(_client(sqlite_engine, lambda: open_bus(bus_url)))
    assert samples[("yekuo_consumer_handled_total", (("consumer", "metrics-test"),))] == before + 2


def test_every_consumer_is_watched_on_its_queue_and_its_parking_queue() -> None:
    watched = watched_queues(CONSUMERS)
    for consumer in CONSUMERS:
        assert WatchedQueue(consumer.name, consumer.queue) in watched
        assert WatchedQueue(consumer.name, consumer.parking_queue) in watched


def _feed_case(
    conn: sa.Connection, tracker: CaseTracker, number: str, steps: list[tuple[str, str]], **fields: str
) -> None:
    submitted = f"2026-{steps[0][1]}T09:00:00+08:00"
    for sequence, (stage, day) in enumerate(steps, start=1):
        updated = f"2026-{day}T09:00:00+08:00"
        tracker(
            conn,
            DecodedEvent(
                application_event(
                    number, sequence, stage=stage, submitted_at=submitted, updated_at=updated, **fields
                )
            ),
        )


def test_process_gauges_cover_the_trailing_window(sqlite_engine: Engine) -> None:
    # Sunday 5 April 2026, 12:00 in Asia/Shanghai; a 30-day window starts Friday 6 March 12:00. March
    # 2026 has no holiday: working days are weekdays.
    now = datetime(2026, 4, 5, 4, 0, tzinfo=UTC)
    residential = {"customer_class": "lv_residential"}
    with frozen_at(now), sqlite_engine.begin() as conn:
        tracker = CaseTracker(load_workflow_config(PROJECT_ROOT))
        # Energised Wed 4 March: before the window.
        _feed_case(
            conn,
            tracker,
            "R1",
            [("acceptance", "03-02"), ("energisation", "03-03"), ("archived", "03-04")],
            org_no="41402",
            **residential,
        )
        # Mon 2 to Thu 26 March: 18 working days, 24 calendar days; commitment (due 9 March) and target
        # (15 working days, due 23 March) missed; one return for an information error.
        _feed_case(
            conn,
            tracker,
            "R2",
            [
                ("acceptance", "03-02"),
                ("energisation", "03-05"),
                ("acceptance", "03-06"),
                ("energisation", "03-09"),
                ("archived", "03-26"),
            ],
            org_no="41402",
            **residential,
        )
        conn.execute(
            stage_visits.update()
            .where(stage_visits.c.application_no == "R2", stage_visits.c.exit_kind == "rework")
            .values(exit_cause="information_error")
        )
        # Mon 30 March to Wed 1 April: 2 working days, 2 calendar days; both met.
        _feed_case(
            conn,
            tracker,
            "R3",
            [("acceptance", "03-30"), ("energisation", "03-31"), ("archived", "04-01")],
            org_no="41402",
            **residential,
        )
        # High voltage: Mon 2 to Wed 25 March, 17 working days; commitment (22 + 7 days of customer works)
        # met, target missed.
        _feed_case(
            conn,
            tracker,
            "H1",
            [
                ("acceptance", "03-02"),
                ("scheme_reply", "03-04"),
                ("external_works", "03-12"),
                ("energisation", "03-23"),
                ("archived", "03-25"),
            ],
            org_no="41401",
        )
        # First seen archived on 10 March: energised, not measured.
        _feed_case(conn, tracker, "U1", [("archived", "03-10")], org_no="41401", **residential)
        for number, category, day in (
            ("R2", "information_error", 10),
            ("H1", "documents_missing", 12),
            ("X9", "information_error", 12),
            ("R1", "information_error", 3),  # before the window
        ):
            conn.execute(
                consistency_findings.insert().values(
                    application_no=number,
                    rule=f"{category}_rule",
                    category=category,
                    found_at=datetime(2026, 3, day, 2, tzinfo=UTC),
                    systems=["marketing", "pms"],
                    details={},
                    message="records disagree",
                )
            )
    metrics = HubMetrics(
        sqlite_engine,
        lambda: open_bus("memory://"),
        [],
        clock=lambda: now,
        process=ProcessSettings(window_days=30),
    )
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for sample in family.samples
    }

    def value(name: str, **labels: str) -> float | None:
        return samples.get((name, tuple(sorted(labels.items()))))

    low, high, first_seen = (
        ("lv_residential", "41402"),
        ("hv_single_source", "41401"),
        ("lv_residential", "41401"),
    )

    def group(pair: tuple[str, str], **extra: str) -> dict[str, str]:
        return {"customer_class": pair[0], "unit": pair[1], **extra}

    assert value("yekuo_process_energised_cases", **group(low)) == 2  # R2 and R3; R1 is before the window
    assert value("yekuo_process_energised_cases", **group(first_seen)) == 1
    assert value("yekuo_process_days_to_power", **group(low, quantile="0.5")) == pytest.approx((18 + 2) / 2)
    assert value("yekuo_process_days_to_power", **group(low, quantile="0.9")) == pytest.approx(2 + 0.9 * 16)
    assert value("yekuo_process_days_to_power", **group(high, quantile="0.5")) == pytest.approx(17)
    assert value("yekuo_process_calendar_days_to_power", **group(low, quantile="0.5")) == pytest.approx(13)
    assert value("yekuo_process_days_to_power", **group(first_seen, quantile="0.5")) is None
    assert value("yekuo_process_within_commitment_ratio", **group(low)) == pytest.approx(0.5)
    assert value("yekuo_process_within_commitment_ratio", **group(high)) == 1.0
    assert value("yekuo_process_within_target_ratio", **group(high)) == 0.0
    assert value("yekuo_process_within_commitment_ratio", **group(first_seen)) is None
    # Four cases in the window, one (R2) returned for an information error.
    assert value("yekuo_process_rework_ratio", cause="information_error") == pytest.approx(1 / 4)
    assert value("yekuo_process_rework_ratio", cause="unspecified") == 0.0
    assert value("yekuo_process_findings_total", category="information_error") == 2
    assert value("yekuo_process_findings_total", category="documents_missing") == 1
    assert value("yekuo_scrape_dependency_up", dependency="database") == 1


def test_without_cases_the_process_gauges_have_no_samples(sqlite_engine: Engine) -> None:
    metrics = HubMetrics(sqlite_engine, lambda: open_bus("memory://"), [], clock=lambda: NOW)
    families = {
        family.name: family for family in text_string_to_metric_families(metrics.exposition().decode())
    }
    assert families["yekuo_process_energised_cases"].samples == []
    assert families["yekuo_process_rework_ratio"].samples == []


def test_process_gauges_are_recomputed_after_the_refresh_interval(sqlite_engine: Engine) -> None:
    now = datetime(2026, 4, 5, 4, 0, tzinfo=UTC)

    def energised(metrics: HubMetrics) -> list[float]:
        families = text_string_to_metric_families(metrics.exposition().decode())
        return [
            sample.value
            for family in families
            if family.name == "yekuo_process_energised_cases"
            for sample in family.samples
        ]

    cached = HubMetrics(sqlite_engine, lambda: open_bus("memory://"), [], clock=lambda: now)
    fresh = HubMetrics(
        sqlite_engine,
        lambda: open_bus("memory://"),
        [],
        clock=lambda: now,
        process=ProcessSettings(refresh_s=0),
    )
    assert energised(cached) == [] and energised(fresh) == []
    with frozen_at(now), sqlite_engine.begin() as conn:
        steps = [("acceptance", "03-30"), ("energisation", "03-31"), ("archived", "04-01")]
        _feed_case(
            conn,
            CaseTracker(load_workflow_config(PROJECT_ROOT)),
            "R3",
            steps,
            customer_class="lv_residential",
        )
    # Within a minute of its last computation a process serves the same figures; with no interval, new ones.
    assert energised(cached) == []
    assert energised(fresh) == [1.0]
