"""Realistic legacy input for the hub paths: a seeded marketing world in the SOAP adapter's order."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from adapters.marketing.source import SYSTEM
from adapters.records import RawRecord
from routes.config import load_hub_config
from routes.router import Router
from simulators.marketing.seed import generate_world

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


def bench_router(config_dir: Path, exchange: str) -> Router:
    """The hub's router from its route table and mappings, with every route publishing to exchange."""
    config = load_hub_config(config_dir)
    return Router([replace(route, exchange=exchange) for route in config.routes], config.mappings)
