"""Ingest commits the good records' events, the bad records' parked entries and the checkpoint together."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from ground.settings import PROJECT_ROOT
from pipeline.config import load_hub_config
from pipeline.ingest import Ingestor
from pipeline.outbox import pending_count
from pipeline.records import RawRecord, SourceBatch
from store.checkpoints import load_checkpoint
from store.parking import list_parked

from ..mappings.samples import application_record, customer_record


def _application(no: str, **changes: Any) -> RawRecord:
    return RawRecord("marketing", "application", no, application_record(APP_NO=no, **changes), {"key": no})


class ScriptedSource:
    """A source that returns prepared batches, or fails when told to."""

    name = "scripted"

    def __init__(self, *batches: SourceBatch) -> None:
        self.batches = list(batches)
        self.seen: list[Mapping[str, Any] | None] = []

    def poll(self, checkpoint: Mapping[str, Any] | None) -> SourceBatch:
        self.seen.append(checkpoint)
        return self.batches.pop(0)


@pytest.fixture
def ingestor(sqlite_engine: Engine) -> Ingestor:
    return Ingestor(sqlite_engine, load_hub_config(PROJECT_ROOT).router)


def test_bad_records_are_parked_and_the_good_ones_around_them_flow(
    ingestor: Ingestor, sqlite_engine: Engine
) -> None:
    records = [
        _application("A1"),
        _application("A2", VOLT_CODE="AC99999"),
        RawRecord("marketing", "customer", "C1", customer_record(CONS_NO="C1")),
        _application("A3", APPLY_CAP=None),
        RawRecord("marketing", "meter", "M1", {"METER_NO": "M1"}),
        _application("A4"),
    ]
    source = ScriptedSource(SourceBatch(records, {"changed_at": "2026-11-20 09:00:00", "key": "A4"}, False))
    assert ingestor.poll_source(source) is False
    with sqlite_engine.connect() as conn:
        assert pending_count(conn) == 3
        parked = {p.record_key: p for p in list_parked(conn, "invalid")}
        assert load_checkpoint(conn, "scripted") == {"changed_at": "2026-11-20 09:00:00", "key": "A4"}
    assert set(parked) == {"A2", "A3", "M1"}
    assert parked["A2"].reason_code == "mapping"
    assert "mappings/marketing/application.yaml:" in parked["A2"].reason
    assert "AC99999" in parked["A2"].reason and "requested_voltage_kv" in parked["A2"].reason
    assert parked["A3"].reason_code == "mapping" and "requested_capacity_kva" in parked["A3"].reason
    assert parked["M1"].reason_code == "no_route"
    assert parked["A2"].payload["VOLT_CODE"] == "AC99999"
    assert parked["A2"].position == {"key": "A2"}
    assert ingestor.stats.invalid == 3 and ingestor.stats.events == 3


def test_an_unknown_load_type_is_parked_naming_it_and_a_known_one_flows(
    ingestor: Ingestor, sqlite_engine: Engine
) -> None:
    records = [_application("A1", LOAD_TYPE="01"), _application("A2", LOAD_TYPE="07")]
    source = ScriptedSource(SourceBatch(records, {"changed_at": "2026-11-20 09:00:00", "key": "A2"}, False))
    ingestor.poll_source(source)
    with sqlite_engine.connect() as conn:
        [parked] = list_parked(conn, "invalid")
        assert pending_count(conn) == 1
    assert (parked.record_key, parked.reason_code) == ("A2", "mapping")
    assert "field 'load_type' (source LOAD_TYPE)" in parked.reason
    assert "unknown code in table marketing/load_type_code: '07'" in parked.reason
    assert parked.payload["LOAD_TYPE"] == "07"


def test_the_next_poll_starts_from_the_committed_checkpoint(ingestor: Ingestor) -> None:
    first = SourceBatch([_application("A1")], {"changed_at": "t1", "key": "A1"}, True)
    second = SourceBatch([], {"changed_at": "t1", "key": "A1"}, False)
    source = ScriptedSource(first, second)
    assert ingestor.poll_source(source) is True
    assert ingestor.poll_source(source) is False
    assert source.seen == [None, {"changed_at": "t1", "key": "A1"}]


def test_a_failed_commit_keeps_neither_events_nor_checkpoint(
    ingestor: Ingestor, sqlite_engine: Engine
) -> None:
    class Unserialisable:
        pass

    # A payload that cannot be stored as JSON makes the parked insert fail inside the transaction.
    records = [_application("A1"), _application("A2", VOLT_CODE=Unserialisable())]
    source = ScriptedSource(SourceBatch(records, {"changed_at": "t9", "key": "A2"}, False))
    with pytest.raises(Exception, match="JSON serializable"):
        ingestor.poll_source(source)
    with sqlite_engine.connect() as conn:
        assert pending_count(conn) == 0
        assert load_checkpoint(conn, "scripted") is None
