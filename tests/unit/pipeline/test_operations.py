"""The operator service replays dead letters to the failed consumer only, re-ingests invalid records,
discards, refuses a second action, and records every action with its operator."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bus import open_bus
from bus.memory import discard_broker, unique_url
from bus.port import Bus
from ground.errors import BusUnavailableError, UnroutableError
from ground.settings import Settings
from pipeline.config import load_hub_config
from pipeline.ingest import Ingestor
from pipeline.operations import (
    NotParkedError,
    NotReplayableError,
    OperationError,
    Operations,
    PiiReader,
    UnknownParkedError,
)
from pipeline.outbox import pending_count
from pipeline.sealing import seal_event_data
from store.audit import list_entries
from store.crypto import development_keyring
from store.operations import list_actions
from store.parking import count_parked
from store.schema import outbox
from tests.unit.workflow.events import customer_event

from .parked_samples import (
    AUDIT_QUEUE,
    BUSINESS_HEADERS,
    WORKFLOW_QUEUE,
    config_knowing_voltage,
    dead_letter_payload,
    declare_consumers,
    park_dead_letter,
    park_invalid_envelope,
    park_invalid_record,
    personal_customer_record,
    shipped_ingestor,
)


@pytest.fixture
def bus_url() -> Iterator[str]:
    url = unique_url("operations")
    declare_consumers(url)
    yield url
    discard_broker(url)


@pytest.fixture
def operations(sqlite_engine: Engine, bus_url: str) -> Operations:
    return Operations(
        sqlite_engine, open_bus=lambda: open_bus(bus_url), ingestor=shipped_ingestor(sqlite_engine)
    )


def _depths(bus: Bus) -> dict[str, int]:
    queues = [WORKFLOW_QUEUE, AUDIT_QUEUE, f"{WORKFLOW_QUEUE}.parking", f"{AUDIT_QUEUE}.parking"]
    return {queue: bus.queue_depth(queue) for queue in queues}


def test_replaying_a_dead_letter_puts_that_message_back_on_the_failed_consumers_queue_only(
    operations: Operations, sqlite_engine: Engine, bus_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    payload = dead_letter_payload(WORKFLOW_QUEUE)
    parked_id = park_dead_letter(sqlite_engine, payload)
    caplog.set_level(logging.INFO, logger="pipeline.operations")

    result = operations.replay(parked_id, operator="alice", kind="dead")

    bus = open_bus(bus_url)
    assert _depths(bus) == {
        WORKFLOW_QUEUE: 1,
        AUDIT_QUEUE: 0,
        f"{WORKFLOW_QUEUE}.parking": 0,
        f"{AUDIT_QUEUE}.parking": 0,
    }
    [delivery] = bus.fetch(WORKFLOW_QUEUE, 10, 0.1)
    message = delivery.message
    assert delivery.exchange == ""
    assert message.body == payload["body"].encode("utf-8")
    assert message.message_id == payload["message_id"]
    assert message.correlation_id == payload["correlation_id"]
    assert message.type == payload["type"]
    assert message.content_type == payload["content_type"]
    # The retry bookkeeping is gone, so the consumer's retries start afresh; the rest travels unchanged.
    assert dict(message.headers) == {**BUSINESS_HEADERS, "x-yekuo-replayed-by": "alice"}
    bus.close()

    assert result.message.status == "replayed" and result.operator == "alice"
    assert operations.show(parked_id).status == "replayed"
    with sqlite_engine.connect() as conn:
        [action] = list_actions(conn)
        assert count_parked(conn, "dead") == 0
    assert (action.operator, action.action, action.parked_id) == ("alice", "replay", parked_id)
    assert payload["message_id"] in action.detail and WORKFLOW_QUEUE in action.detail
    assert any(
        "alice" in record.getMessage() and "replayed" in record.getMessage() for record in caplog.records
    )


def test_a_dead_letter_of_another_consumer_goes_to_that_consumer(
    operations: Operations, sqlite_engine: Engine, bus_url: str
) -> None:
    parked_id = park_dead_letter(sqlite_engine, dead_letter_payload(AUDIT_QUEUE))
    operations.replay(parked_id, operator="bob")
    bus = open_bus(bus_url)
    assert (bus.queue_depth(WORKFLOW_QUEUE), bus.queue_depth(AUDIT_QUEUE)) == (0, 1)
    bus.close()


def test_a_failed_republish_changes_nothing(sqlite_engine: Engine, bus_url: str) -> None:
    parked_id = park_dead_letter(sqlite_engine, dead_letter_payload(WORKFLOW_QUEUE))

    def broker_down() -> Bus:
        raise BusUnavailableError("connection refused")

    with pytest.raises(BusUnavailableError):
        Operations(sqlite_engine, open_bus=broker_down).replay(parked_id, operator="alice")
    # A queue nobody declared: the publish to the default exchange is unroutable, and reported.
    gone = park_dead_letter(sqlite_engine, dead_letter_payload("yekuo.retired"))
    with pytest.raises(UnroutableError, match=r"yekuo\.retired"):
        Operations(sqlite_engine, open_bus=lambda: open_bus(bus_url)).replay(gone, operator="alice")

    with sqlite_engine.connect() as conn:
        assert count_parked(conn, "dead") == 2
        assert list_actions(conn) == []


def test_an_invalid_record_replayed_after_the_code_table_learnt_its_code_flows(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    parked_id = park_invalid_record(sqlite_engine)
    fixed = Ingestor(sqlite_engine, load_hub_config(config_knowing_voltage(tmp_path)).router)
    operations = Operations(sqlite_engine, ingestor=fixed)

    result = operations.replay(parked_id, operator="carol", kind="invalid")

    assert result.reparked_id is None and result.events >= 1
    assert result.message.status == "replayed"
    with sqlite_engine.connect() as conn:
        assert count_parked(conn) == 0
        assert pending_count(conn) == result.events
        bodies = [json.loads(body) for body in conn.execute(sa.select(outbox.c.body)).scalars()]
        [action] = list_actions(conn, parked_id)
    application = next(body["data"] for body in bodies if body["subject"] == "A2")
    assert application["requested_voltage_kv"] == 20
    assert action.operator == "carol" and "ingested again" in action.detail


def test_an_invalid_record_replayed_unchanged_is_parked_again_with_the_same_reason(
    operations: Operations, sqlite_engine: Engine
) -> None:
    parked_id = park_invalid_record(sqlite_engine)
    before = operations.show(parked_id)

    result = operations.replay(parked_id, operator="carol")

    assert result.reparked_id is not None and result.reparked_id != parked_id and result.events == 0
    again = operations.show(result.reparked_id)
    assert (again.kind, again.status, again.reason_code, again.reason) == (
        "invalid",
        "parked",
        before.reason_code,
        before.reason,
    )
    assert (again.source_system, again.record_type, again.record_key) == ("marketing", "application", "A2")
    assert again.payload == before.payload and again.position == before.position
    assert operations.show(parked_id).status == "replayed"
    with sqlite_engine.connect() as conn:
        assert pending_count(conn) == 0
        [action] = list_actions(conn, parked_id)
    assert f"parked again as #{result.reparked_id}" in action.detail and "AC99999" in action.detail


def test_an_invalid_envelope_cannot_be_replayed_but_can_be_discarded(
    operations: Operations, sqlite_engine: Engine
) -> None:
    parked_id = park_invalid_envelope(sqlite_engine)
    with pytest.raises(NotReplayableError, match="not a readable event"):
        operations.replay(parked_id, operator="dave")
    assert operations.show(parked_id).status == "parked"

    result = operations.discard(parked_id, operator="dave", kind="invalid")

    assert result.message.status == "discarded"
    with sqlite_engine.connect() as conn:
        [action] = list_actions(conn)
    assert (action.operator, action.action, action.parked_id) == ("dave", "discard", parked_id)


def test_a_message_no_longer_parked_refuses_a_second_action(
    operations: Operations, sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    parked_id = park_dead_letter(sqlite_engine, dead_letter_payload())
    caplog.set_level(logging.INFO, logger="pipeline.operations")
    operations.discard(parked_id, operator="erin")
    with pytest.raises(NotParkedError, match="already discarded"):
        operations.discard(parked_id, operator="erin")
    with pytest.raises(NotParkedError, match="already discarded"):
        operations.replay(parked_id, operator="frank")
    with sqlite_engine.connect() as conn:
        assert [action.operator for action in list_actions(conn)] == ["erin"]
    # The refused attempt is not an action that took effect, but who tried it is in the log.
    assert f"operator frank could not replay parked #{parked_id}" in caplog.text


def test_every_action_needs_an_operator(operations: Operations, sqlite_engine: Engine) -> None:
    parked_id = park_dead_letter(sqlite_engine, dead_letter_payload())
    for nobody in ("", "   "):
        with pytest.raises(OperationError, match="operator"):
            operations.replay(parked_id, operator=nobody)
        with pytest.raises(OperationError, match="operator"):
            operations.discard(parked_id, operator=nobody)
    assert operations.show(parked_id).status == "parked"


def test_a_message_is_found_only_under_its_own_kind(operations: Operations, sqlite_engine: Engine) -> None:
    invalid_id = park_invalid_envelope(sqlite_engine)
    with pytest.raises(UnknownParkedError, match=f"no dead letter with id {invalid_id}"):
        operations.show(invalid_id, kind="dead")
    with pytest.raises(UnknownParkedError):
        operations.replay(invalid_id, operator="alice", kind="dead")
    with pytest.raises(UnknownParkedError, match="no parked message with id 999"):
        operations.show(999)
    assert operations.show(invalid_id, kind="invalid").reason_code == "envelope"


def test_listing_filters_by_kind_and_status_and_pages_with_a_cursor(
    operations: Operations, sqlite_engine: Engine
) -> None:
    dead = [park_dead_letter(sqlite_engine, dead_letter_payload(application_no=f"A{n}")) for n in range(3)]
    invalid = park_invalid_envelope(sqlite_engine)
    operations.discard(dead[1], operator="alice")

    assert [m.id for m in operations.list_messages(kind="dead").items] == [dead[0], dead[2]]
    assert [m.id for m in operations.list_messages(kind="dead", status="discarded").items] == [dead[1]]
    assert [m.id for m in operations.list_messages(status=None).items] == [*dead, invalid]
    assert [m.id for m in operations.list_messages(kind="invalid").items] == [invalid]

    first = operations.list_messages(status=None, limit=2)
    assert ([m.id for m in first.items], first.total, first.next_after) == (dead[:2], 4, dead[1])
    second = operations.list_messages(status=None, limit=2, after=first.next_after)
    assert ([m.id for m in second.items], second.next_after) == ([dead[2], invalid], None)

    with pytest.raises(OperationError, match="limit"):
        operations.list_messages(limit=0)
    with pytest.raises(OperationError, match="status must be one of"):
        operations.list_messages(status="lost")  # type: ignore[arg-type]


def test_operator_views_are_masked_unless_a_reader_is_named_and_only_that_read_is_audited(
    operations: Operations, sqlite_engine: Engine
) -> None:
    parked_id = park_invalid_record(sqlite_engine, personal_customer_record())
    plain_id = park_invalid_record(sqlite_engine)

    masked = operations.inspect(parked_id)
    page = operations.browse(kind="invalid")

    assert masked.message.payload["CERT_NO"] == "**************1234" and "reason" in masked.hidden
    assert masked.message.payload["CONS_NAME"] == "南阳市宛城区李记餐馆"
    assert "110101199003071234" not in " ".join(message.reason for message in page.items)
    with sqlite_engine.connect() as conn:
        assert list_entries(conn, action="pii.read") == []

    reader = PiiReader("erin", "test view")
    unmasked = operations.inspect(parked_id, reader=reader)
    unmasked_page = operations.browse(kind="invalid", reader=reader)
    plain = operations.inspect(plain_id, reader=reader)

    assert unmasked.message == operations.show(parked_id) and unmasked.hidden == ()
    assert unmasked_page.items == operations.list_messages(kind="invalid").items
    assert plain.message == operations.show(plain_id)
    with sqlite_engine.connect() as conn:
        reads = list_entries(conn, action="pii.read")
    # One entry per message whose personal data was shown; the plain record had none to show.
    assert [(entry.actor, entry.subject) for entry in reads] == [
        ("erin", f"parked/{parked_id}"),
        ("erin", f"parked/{parked_id}"),
    ]
    assert [entry.detail["view"] for entry in reads] == ["test view", "test view"]


def test_a_reader_must_be_named(operations: Operations, sqlite_engine: Engine) -> None:
    parked_id = park_invalid_record(sqlite_engine, personal_customer_record())
    with pytest.raises(OperationError, match="operator name is required"):
        operations.inspect(parked_id, reader=PiiReader("  ", "test view"))
    with sqlite_engine.connect() as conn:
        assert list_entries(conn, action="pii.read") == []


def test_when_the_mappings_cannot_be_read_every_value_of_a_legacy_record_is_shown_masked(
    sqlite_engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    parked_id = park_invalid_record(sqlite_engine, personal_customer_record())
    operations = Operations(sqlite_engine, settings=Settings(config_dir=tmp_path))

    with caplog.at_level(logging.WARNING, logger="pipeline.operations"):
        shown = operations.inspect(parked_id).message

    assert shown.payload["CERT_NO"] == "**************1234" and shown.payload["ORG_NO"] == "*****"
    assert set(shown.payload) == set(personal_customer_record().payload)
    assert "mappings cannot be read" in caplog.text


def test_a_reader_sees_the_personal_fields_a_dead_letter_carries_sealed_opened(
    operations: Operations, sqlite_engine: Engine
) -> None:
    event = customer_event(
        "C5",
        identity_document={"type": "resident_id", "number": "110101199003071234"},
        contacts=[{"name": "李记", "phone": "13912345678"}],
    )
    sealed = seal_event_data(event.data, event.dataschema, development_keyring)
    payload = {**dead_letter_payload(), "body": event.model_copy(update={"data": sealed}).model_dump_json()}
    parked_id = park_dead_letter(sqlite_engine, payload)

    masked = operations.inspect(parked_id)
    unmasked = operations.inspect(parked_id, reader=PiiReader("erin", "test view"))

    assert "110101199003071234" not in masked.message.payload["body"]
    assert "enc:v1:" not in masked.message.payload["body"]
    opened = json.loads(unmasked.message.payload["body"])["data"]
    assert opened["identity_document"]["number"] == "110101199003071234"
    assert opened["contacts"][0]["phone"] == "13912345678"
    # Stored as it came off the bus: sealed, ready for a replay.
    assert "110101199003071234" not in operations.show(parked_id).payload["body"]
