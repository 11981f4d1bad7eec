"""The PMS checkpoint: JSON round trip, unreadable checkpoints, and when a sync counts as settled."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from adapters.pms.state import Position, SyncState, TableState, settled
from ground.errors import ConfigError


def state() -> SyncState:
    table = TableState(
        phase="changes",
        main=Position(datetime(2026, 11, 26, 10, 0, 0, 500000), "PB0000001"),
        joined=Position(datetime(2026, 11, 26, 9, 59), None),
        main_caught_up=True,
        joined_caught_up=True,
        scan_started=datetime(2026, 11, 26, 2, 0, tzinfo=UTC),
        reconciling=True,
        reconcile_after="PB0000100",
        reconcile_started=datetime(2026, 11, 26, 2, 1, tzinfo=UTC),
    )
    return SyncState(
        tables={"transformer": table, "feeder": TableState()},
        pending={
            "transformer": {"PB0000001": ("0123456789abcdef", "2026-11-26 10:00:00"), "PB0000002": None}
        },
    )


def test_a_state_survives_the_json_round_trip_exactly() -> None:
    original = state()
    stored = json.loads(json.dumps(original.to_json()))
    assert SyncState.from_checkpoint("pms", stored) == original


def test_empty_pending_versions_are_left_out() -> None:
    assert SyncState(pending={"feeder": {}}).to_json()["pending"] == {}


def test_no_checkpoint_is_a_fresh_start() -> None:
    assert SyncState.from_checkpoint("pms", None) == SyncState()
    assert SyncState.from_checkpoint("pms", {}) == SyncState()


@pytest.mark.parametrize(
    "broken",
    [
        {"changed_at": "2026-11-26 10:00:00", "key": "A"},
        {"format": 1, "tables": [], "pending": {}},
        {"format": 1, "tables": {"x": {"phase": "later"}}, "pending": {}},
        {"format": 1, "tables": {"x": {"phase": "changes", "main": ["yesterday", None]}}, "pending": {}},
        {"format": 1, "tables": {}, "pending": {"x": {"K": ["v"]}}},
    ],
)
def test_an_unreadable_checkpoint_is_a_config_error_that_says_what_to_do(broken: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"checkpoint of source 'pms' is not a PMS checkpoint.*delete it"):
        SyncState.from_checkpoint("pms", broken)


def test_settled_needs_every_table_caught_up_and_no_reconciliation_running() -> None:
    current = state()
    assert not settled(current.to_json())
    current.tables["transformer"].reconciling = False
    assert not settled(current.to_json())  # the feeder table has not been read yet
    del current.tables["feeder"]
    assert settled(current.to_json())
    current.tables["transformer"].joined_caught_up = False
    assert not settled(current.to_json())
    assert not settled(None)
