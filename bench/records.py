"""Realistic legacy input for the hub paths: a seeded marketing world in the SOAP adapter's order."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from adapters.marketing.source import SYSTEM
from canonical_model.envelope import CloudEvent
from pipeline.config import load_hub_config
from pipeline.records import EventDraft, RawRecord
from pipeline.routing import Router
from simulators.marketing.seed import generate_world
from store.database import utcnow

# Customers to applications as in a prefecture's change stream: most customers have one open application.
APPLICATIONS_PER_CUSTOMER = 3
PAGE_SIZE = 200


def legacy_records(count: int, *, seed: int = 10) -> list[RawRecord]:
    """About count raw records: pages of applications, each preceded by the customers it references.

    That is the order MarketingSource yields them in, so the mix of customer and application events
    (and their sizes) is the one the hub sees.
    """
    applications = max(1, count * APPLICATIONS_PER_CUSTOMER // (APPLICATIONS_PER_CUSTOMER + 1))
    customers = max(1, count // APPLICATIONS_PER_CUSTOMER)
    world = generate_world(seed, customers=customers, applications=applications)
    rows = world.all_applications()
    records: list[RawRecord] = []
    for start in range(0, len(rows), PAGE_SIZE):
        page = rows[start : start + PAGE_SIZE]
        for customer in world.customers([row["CONS_NO"] for row in page]):
            records.append(RawRecord(SYSTEM, "customer", customer["CONS_NO"], dict(customer)))
        records.extend(RawRecord(SYSTEM, "application", row["APP_NO"], dict(row)) for row in page)
    return records[:count]


def envelope(
    routed: EventDraft, sequence: int, correlation_id: str, data: dict[str, Any] | None = None
) -> CloudEvent:
    """The CloudEvent the outbox would wrap a routed event in; data replaces the routed event's own."""
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=routed.source,
        type=routed.event_type,
        subject=routed.subject,
        time=utcnow(),
        dataschema=routed.dataschema,
        correlationid=correlation_id,
        sequence=sequence,
        data=routed.data if data is None else data,
    )


def bench_router(config_dir: Path, exchange: str) -> Router:
    """The hub's router from its route table and mappings, with every route publishing to exchange."""
    config = load_hub_config(config_dir)
    return Router([replace(route, exchange=exchange) for route in config.routes], config.mappings)
