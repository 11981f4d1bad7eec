"""`yekuo dlq` lists parked messages as a table, shows one in detail, and replays or discards it by name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bus import open_bus
from bus.memory import discard_broker, unique_url
from pipeline.outbox import pending_count
from store.audit import AuditEntry, list_entries
from store.operations import list_actions
from store.parking import count_parked
from yekuo.cli import main

from ..pipeline.parked_samples import (
    IDENTITY_NO,
    MOBILES,
    NOT_PERSONAL,
    PERSONAL_VALUES,
    WORKFLOW_QUEUE,
    config_knowing_voltage,
    dead_letter_payload,
    declare_consumers,
    park_dead_letter,
    park_invalid_envelope,
    park_invalid_record,
    personal_customer_record,
    personal_dead_letter_payload,
)


@pytest.fixture
def bus_url() -> Iterator[str]:
    url = unique_url("cli-dlq")
    declare_consumers(url)
    yield url
    discard_broker(url)


@pytest.fixture
def db(sqlite_engine: Engine) -> list[str]:
    return ["--db-url", sqlite_engine.url.render_as_string(hide_password=False)]


def test_list_prints_a_table_of_parked_messages_filtered_by_kind(
    sqlite_engine: Engine, db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    dead_id = park_dead_letter(sqlite_engine, dead_letter_payload(WORKFLOW_QUEUE))
    invalid_id = park_invalid_record(sqlite_engine)

    assert main(["dlq", "list", *db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "KIND", "STATUS", "CREATED", "(UTC)", "CODE", "ORIGIN", "REASON"]
    dead_row = next(line for line in lines if line.startswith(f"{dead_id} "))
    invalid_row = next(line for line in lines if line.startswith(f"{invalid_id} "))
    assert "dead" in dead_row and WORKFLOW_QUEUE in dead_row and "retries_exhausted" in dead_row
    assert "invalid" in invalid_row and "marketing/application A2" in invalid_row and "mapping" in invalid_row
    assert lines[-1] == "2 of 2 shown (kind any, status parked)"

    assert main(["dlq", "list", "--kind", "dead", *db]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 shown (kind dead, status parked)" in out and "marketing/application" not in out


def test_list_pages_and_says_how_to_get_the_next_page(
    sqlite_engine: Engine, db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [park_dead_letter(sqlite_engine, dead_letter_payload(application_no=f"A{n}")) for n in range(3)]
    assert main(["dlq", "list", "--limit", "2", *db]) == 0
    out = capsys.readouterr().out
    assert f"next page: yekuo dlq list --after {ids[1]}" in out and "2 of 3 shown" in out
    assert main(["dlq", "list", "--after", str(ids[1]), *db]) == 0
    assert "1 of 3 shown" in capsys.readouterr().out


def test_show_prints_the_failures_and_the_original_message(
    sqlite_engine: Engine, db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    payload = dead_letter_payload(WORKFLOW_QUEUE)
    dead_id = park_dead_letter(sqlite_engine, payload)

    assert main(["dlq", "show", str(dead_id), *db]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"parked message #{dead_id}\n")
    assert "#3 at 2026-11-20T09:13:00+00:00: database is locked (try 3)" in out
    assert payload["message_id"] in out and payload["body"] in out
    assert "actions: none" in out


def test_replay_with_an_operator_sends_the_message_back_and_records_who(
    sqlite_engine: Engine, db: list[str], bus_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = dead_letter_payload(WORKFLOW_QUEUE)
    dead_id = park_dead_letter(sqlite_engine, payload)

    assert main(["dlq", "replay", str(dead_id), "--operator", "alice", "--bus-url", bus_url, *db]) == 0

    assert capsys.readouterr().out.startswith(f"replayed #{dead_id} (operator alice): republished message")
    bus = open_bus(bus_url)
    [delivery] = bus.fetch(WORKFLOW_QUEUE, 10, 0.1)
    assert delivery.message.message_id == payload["message_id"]
    bus.close()
    with sqlite_engine.connect() as conn:
        [action] = list_actions(conn)
    assert (action.operator, action.action, action.parked_id) == ("alice", "replay", dead_id)

    assert main(["dlq", "show", str(dead_id), *db]) == 0
    assert "alice  replay: republished message" in capsys.readouterr().out


def test_discard_defaults_to_the_os_user_and_a_second_discard_fails(
    sqlite_engine: Engine, db: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("yekuo.dlq.getpass.getuser", lambda: "ops-night-shift")
    envelope_id = park_invalid_envelope(sqlite_engine)

    assert main(["dlq", "discard", str(envelope_id), *db]) == 0
    assert f"discarded #{envelope_id} (operator ops-night-shift)" in capsys.readouterr().out

    assert main(["dlq", "discard", str(envelope_id), *db]) == 1
    assert "already discarded" in capsys.readouterr().err
    with sqlite_engine.connect() as conn:
        assert [(a.operator, a.action) for a in list_actions(conn)] == [("ops-night-shift", "discard")]


def test_replaying_an_invalid_record_through_a_fixed_code_table_lets_it_flow(
    sqlite_engine: Engine, db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    invalid_id = park_invalid_record(sqlite_engine)
    config = config_knowing_voltage(tmp_path / "config")

    code = main(["dlq", "replay", str(invalid_id), "--operator", "carol", "--config-dir", str(config), *db])

    assert code == 0 and "ingested again" in capsys.readouterr().out
    with sqlite_engine.connect() as conn:
        assert count_parked(conn) == 0 and pending_count(conn) >= 1


def test_refusals_name_what_was_wrong(
    sqlite_engine: Engine, db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    envelope_id = park_invalid_envelope(sqlite_engine)
    assert main(["dlq", "replay", str(envelope_id), "--operator", "alice", *db]) == 1
    assert "not a readable event" in capsys.readouterr().err
    assert main(["dlq", "show", "4711", *db]) == 1
    assert "no parked message with id 4711" in capsys.readouterr().err
    assert main(["dlq", "list", *db, "--kind", "dead"]) == 0
    assert "no parked messages (kind dead, status parked)" in capsys.readouterr().out


def _pii_reads(engine: Engine) -> list[AuditEntry]:
    with engine.connect() as conn:
        return list_entries(conn, action="pii.read")


def _personal_shown(text: str) -> list[str]:
    return [value for value in PERSONAL_VALUES if value in text]


def test_list_masks_personal_data_in_reasons_and_keeps_the_rest(
    sqlite_engine: Engine, db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    dead_id = park_dead_letter(sqlite_engine, personal_dead_letter_payload())
    invalid_id = park_invalid_record(sqlite_engine)

    assert main(["dlq", "list", *db]) == 0

    out = capsys.readouterr().out
    assert MOBILES[0] not in out and "duplicate key (contact_phone)=(*******0001)" in out
    assert "marketing/application A2" in out and "retries_exhausted" in out
    assert f"{dead_id} " in out and f"{invalid_id} " in out and "2 of 2 shown" in out
    assert _pii_reads(sqlite_engine) == []


def test_show_masks_an_invalid_record_by_default_and_writes_no_audit_entry(
    sqlite_engine: Engine, db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    invalid_id = park_invalid_record(sqlite_engine, personal_customer_record())

    assert main(["dlq", "show", str(invalid_id), *db]) == 0

    out = capsys.readouterr().out
    assert _personal_shown(out) == []
    assert all(value in out for value in NOT_PERSONAL)
    assert '"CERT_NO": "**************1234"' in out and "identity_document.number" in out
    assert "masked       payload.BANK_ACCT, payload.CERT_NO, payload.CONTACTS[].MOBILE, reason" in out
    assert _pii_reads(sqlite_engine) == []


def test_show_unmask_prints_personal_data_and_audits_the_read_under_the_operator(
    sqlite_engine: Engine, db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    invalid_id = park_invalid_record(sqlite_engine, personal_customer_record())

    assert main(["dlq", "show", str(invalid_id), "--unmask", "--operator", "alice", *db]) == 0

    out = capsys.readouterr().out
    assert _personal_shown(out) == list(PERSONAL_VALUES) and "masked " not in out
    assert all(value in out for value in NOT_PERSONAL)
    [read] = _pii_reads(sqlite_engine)
    assert (read.actor, read.subject, read.detail["view"]) == (
        "alice",
        f"parked/{invalid_id}",
        "yekuo dlq show --unmask",
    )
    assert read.detail["fields"] == [
        "payload.BANK_ACCT",
        "payload.CERT_NO",
        "payload.CONTACTS[].MOBILE",
        "reason",
    ]


def test_show_unmask_of_a_dead_letter_names_the_os_user_and_needs_someone_to_name(
    sqlite_engine: Engine, db: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = personal_dead_letter_payload()
    dead_id = park_dead_letter(sqlite_engine, payload)

    assert main(["dlq", "show", str(dead_id), *db]) == 0
    masked = capsys.readouterr().out
    assert _personal_shown(masked) == [] and payload["message_id"] in masked and "李明" in masked
    assert "#3 at 2026-11-20T09:13:00+00:00: duplicate key (contact_phone)=(*******0001)" in masked

    monkeypatch.setattr("yekuo.dlq.getpass.getuser", lambda: "ops-night-shift")
    assert main(["dlq", "show", str(dead_id), "--unmask", *db]) == 0
    assert payload["body"] in capsys.readouterr().out
    [read] = _pii_reads(sqlite_engine)
    assert (read.actor, read.subject) == ("ops-night-shift", f"parked/{dead_id}")

    def nobody() -> str:
        raise KeyError("uid 4711 has no name")

    monkeypatch.setattr("yekuo.dlq.getpass.getuser", nobody)
    assert main(["dlq", "show", str(dead_id), "--unmask", *db]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "give --operator NAME" in captured.err
    assert len(_pii_reads(sqlite_engine)) == 1


def test_an_action_result_is_printed_masked(
    sqlite_engine: Engine, db: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    invalid_id = park_invalid_record(sqlite_engine, personal_customer_record())

    assert main(["dlq", "replay", str(invalid_id), "--operator", "carol", *db]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"replayed #{invalid_id} (operator carol): still invalid, parked again as #")
    assert IDENTITY_NO not in out and "**************1234" in out
    assert _pii_reads(sqlite_engine) == []
