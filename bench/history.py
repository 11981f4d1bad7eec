"""The consume path against the length of a case's history: cases holding few events against many.

Every case is a high-voltage application that goes back and forth between acceptance and scheme reply, so
each of its events is a stage move that adds a visit and a timeline entry. The history is applied through
the workflow consumer's handler, unmeasured; then one more move of every case is queued and consumed by
the workflow consumer as in the consume path. The rate should not depend on how long the history is.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from bench import hub_paths
from bus.port import Message
from bus.rabbitmq import RabbitMQBus
from canonical_model.envelope import CloudEvent
from canonical_model.events import APPLICATION_CHANGED
from canonical_model.registry import schema_uri
from pipeline.consumers import ConsumerSpec
from pipeline.decoded import DecodedEvent
from store.database import utcnow

SOURCE = "/marketing/application"
CUSTOMER_CLASS = "hv_single_source"
# Two steps of the high-voltage flow: every event moves the case forward or back (a rework).
STAGES = ("acceptance", "scheme_reply")
# Applied in transactions of this many events, as a consumer's batch would.
PREFILL_BATCH = 500


def _event(number: str, sequence: int, submitted: datetime) -> CloudEvent:
    """The application's sequence-th version, an hour after the one before."""
    updated = submitted + timedelta(hours=sequence - 1)
    document = {
        "application_no": number,
        "business_type": "new_connection",
        "customer_no": f"C{number}",
        "requested_capacity_kva": 630.0,
        "customer_class": CUSTOMER_CLASS,
        "channel": "service_hall",
        "submitted_at": submitted.isoformat(),
        "updated_at": updated.isoformat(),
        "org_no": "41401",
        "stage": STAGES[(sequence - 1) % len(STAGES)],
    }
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=SOURCE,
        type=APPLICATION_CHANGED,
        subject=number,
        time=utcnow(),
        dataschema=schema_uri("application.v1"),
        correlationid=str(uuid.uuid4()),
        sequence=sequence,
        data=document,
    )


def _history(numbers: list[str], events_per_case: int, submitted: datetime) -> Iterator[CloudEvent]:
    for sequence in range(1, events_per_case + 1):
        for number in numbers:
            yield _event(number, sequence, submitted)


def measure_history(
    engine: Engine, bus_url: str, exchange: str, spec: ConsumerSpec, cases: int, events_per_case: int
) -> hub_paths.ConsumeFigures:
    """Give `cases` cases a history of events_per_case events each, then consume one more event of each."""
    # Back from the hub's clock by an hour an event and a day more, so that the history ends before now.
    submitted = utcnow() - timedelta(hours=events_per_case + 24)
    numbers = [f"H{events_per_case}-{index:05d}" for index in range(cases)]
    batch: list[CloudEvent] = []
    for event in _history(numbers, events_per_case, submitted):
        batch.append(event)
        if len(batch) >= PREFILL_BATCH:
            _apply(engine, spec, batch)
            batch = []
    _apply(engine, spec, batch)
    last = [_event(number, events_per_case + 1, submitted) for number in numbers]
    with RabbitMQBus(bus_url) as bus:
        bus.publish(
            exchange,
            [
                Message(
                    body=event.model_dump_json().encode("utf-8"),
                    routing_key=f"application.changed.{CUSTOMER_CLASS}",
                    message_id=event.id,
                    correlation_id=event.correlationid,
                    type=event.type,
                )
                for event in last
            ],
        )
    return hub_paths.measure_consume(engine, bus_url, spec, len(last))


def _apply(engine: Engine, spec: ConsumerSpec, events: list[CloudEvent]) -> None:
    with engine.begin() as conn:
        for event in events:
            spec.handler(conn, DecodedEvent(event))
