"""The workflow changes a case's findings only under the case's keyed lock, on PostgreSQL.

A transformer change or a customer record change re-checks other cases' findings. The cases it locked
were read before the locks were taken; a case it did not lock (a finding raised meanwhile, an application
that joined the customer meanwhile) is left for its own next event, never written without its lock.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from canonical_model.envelope import CloudEvent
from ground import clock
from ground.settings import PROJECT_ROOT
from pipeline.decoded import DecodedEvent
from store.database import create_engine, create_schema, drop_schema
from store.locks import lock_keys
from tests.conftest import POSTGRES_URL, require_service
from tests.unit.workflow.records import low_voltage, the_customer, transformer_event
from tests.unit.workflow.test_findings import FOUND, projection_update
from workflow.cases import CaseTracker, customer_key, transformer_key
from workflow.config import load_workflow_config
from workflow.consistency_config import load_consistency_config
from workflow.findings import findings_of
from workflow.grid import handle_grid_event
from workflow.workdays import WorkingCalendar


@pytest.fixture
def engine() -> Iterator[Engine]:
    require_service("PostgreSQL", 5432)
    engine = create_engine(POSTGRES_URL)
    drop_schema(engine)
    create_schema(engine)
    with clock.frozen_at(FOUND):
        yield engine
    engine.dispose()


@pytest.fixture
def tracker() -> CaseTracker:
    return CaseTracker(
        load_workflow_config(PROJECT_ROOT),
        WorkingCalendar(),
        consistency=load_consistency_config(PROJECT_ROOT),
    )


def _apply(engine: Engine, tracker: CaseTracker, event: CloudEvent, keys: list[str] | None = None) -> None:
    """Apply an event in a transaction holding the given keys, or those the tracker names for it."""
    decoded = DecodedEvent(event)
    with engine.begin() as conn:
        if event.type.startswith("cn.yekuo.grid."):
            handle_grid_event(conn, decoded)
            return
        lock_keys(conn, tracker.keys(conn, decoded) if keys is None else keys)
        tracker(conn, decoded)


def _standing(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [row["rule"] for row in findings_of(conn, "A1", unmasked=False) if row["cleared_at"] is None]


def test_a_transformer_change_clears_only_the_findings_of_the_cases_it_locked(
    engine: Engine, tracker: CaseTracker
) -> None:
    _apply(engine, tracker, transformer_event("TG0000002", transformer_id="PB2"))
    _apply(engine, tracker, the_customer())
    _apply(engine, tracker, low_voltage("A1"))
    assert _standing(engine) == ["transformer_district_known"]
    _apply(engine, tracker, transformer_event("TG0000001"))

    # A1's finding was not among those read when this transaction took its locks.
    _apply(engine, tracker, projection_update("PB1"), keys=[transformer_key("PB1")])
    assert _standing(engine) == ["transformer_district_known"]

    _apply(engine, tracker, projection_update("PB1"))
    assert _standing(engine) == []


def test_a_customer_change_rechecks_only_the_open_cases_it_locked(
    engine: Engine, tracker: CaseTracker
) -> None:
    _apply(engine, tracker, transformer_event("TG0000001"))
    _apply(engine, tracker, the_customer())
    _apply(engine, tracker, low_voltage("A1"))
    assert _standing(engine) == []

    # A1 joined the customer after this transaction read the customer's open cases.
    moved = the_customer(2, transformer_district_id="TG0000404")
    _apply(engine, tracker, moved, keys=[customer_key("4130000001")])
    assert _standing(engine) == []

    _apply(engine, tracker, the_customer(3, transformer_district_id="TG0000404"))
    assert _standing(engine) == ["transformer_district_known"]
