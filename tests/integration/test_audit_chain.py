"""The audit log is a keyed hash chain: verify passes on an untouched chain and names the first entry that
was modified, deleted, reordered or cut off; operator actions and configuration loads are chained, and
concurrent appenders on PostgreSQL keep one linear chain. (Keying, anchors and chains written before
keying: tests/unit/store/test_audit.py.)"""

from __future__ import annotations

import itertools
import shutil
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ground.settings import PROJECT_ROOT
from pipeline.operations import NotParkedError, Operations
from store.audit import (
    GENESIS_HASH,
    append_entry,
    audit_log,
    chain_key_of,
    entry_hash,
    list_entries,
    record_pii_read,
    unkeyed_entry_hash,
    verify_chain,
)
from tests.unit.pipeline.parked_samples import park_invalid_record, shipped_ingestor
from yekuo.audit import record_config_loaded
from yekuo.cli import main


def chain_of(engine: Engine, entries: int) -> None:
    with engine.begin() as conn:
        for number in range(1, entries + 1):
            append_entry(
                conn, actor="op-li", action="test.step", subject=f"thing/{number}", detail={"n": number}
            )


def verdict(engine: Engine) -> tuple[int | None, str]:
    with engine.connect() as conn:
        found = verify_chain(conn)
    return (found.broken.entry_id, found.broken.reason) if found.broken else (None, "")


def test_entries_link_to_their_predecessor_and_verify(sqlite_engine: Engine) -> None:
    chain_of(sqlite_engine, 5)

    with sqlite_engine.connect() as conn:
        entries = list_entries(conn)
        found = verify_chain(conn)
    assert [entry.id for entry in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(entries))
    assert found.ok and found.entries == 5 and found.head == 5


def test_a_modified_detail_is_named(sqlite_engine: Engine) -> None:
    chain_of(sqlite_engine, 5)
    with sqlite_engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.id == 3).values(detail={"n": 30}))

    assert verdict(sqlite_engine) == (
        3,
        "entry 3 was modified or hashed with another key: its content does not match its hash under the "
        "configured chain key",
    )


def test_a_modified_entry_rehashed_without_the_key_is_named(sqlite_engine: Engine) -> None:
    chain_of(sqlite_engine, 5)
    with sqlite_engine.begin() as conn:
        (entry,) = [entry for entry in list_entries(conn) if entry.id == 3]
        forged = unkeyed_entry_hash(
            id=3, at=entry.at, actor="someone-else", action=entry.action, subject=entry.subject,
            detail=entry.detail, prev_hash=entry.prev_hash,
        )  # fmt: skip
        conn.execute(audit_log.update().where(audit_log.c.id == 3).values(actor="someone-else", hash=forged))

    entry_id, reason = verdict(sqlite_engine)
    assert entry_id == 3 and "rewritten without the chain key" in reason


def test_a_modified_entry_rehashed_with_the_key_breaks_the_next_link(sqlite_engine: Engine) -> None:
    chain_of(sqlite_engine, 5)
    with sqlite_engine.begin() as conn:
        (entry,) = [entry for entry in list_entries(conn) if entry.id == 3]
        forged = entry_hash(
            chain_key_of(conn.dialect), id=3, at=entry.at, actor="someone-else", action=entry.action,
            subject=entry.subject, detail=entry.detail, prev_hash=entry.prev_hash,
        )  # fmt: skip
        conn.execute(audit_log.update().where(audit_log.c.id == 3).values(actor="someone-else", hash=forged))

    entry_id, reason = verdict(sqlite_engine)
    assert entry_id == 4 and "does not follow entry 3" in reason


def test_a_deleted_entry_is_named(sqlite_engine: Engine) -> None:
    chain_of(sqlite_engine, 5)
    with sqlite_engine.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.id == 3))

    assert verdict(sqlite_engine) == (3, "entry 3 is missing (next is 4)")


def test_entries_cut_off_the_end_are_found(sqlite_engine: Engine) -> None:
    chain_of(sqlite_engine, 5)
    with sqlite_engine.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.id >= 4))

    assert verdict(sqlite_engine) == (4, "entries 4..5 are missing from the end")


def test_swapped_entries_are_found(sqlite_engine: Engine) -> None:
    chain_of(sqlite_engine, 5)
    with sqlite_engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.id == 2).values(id=-2))
        conn.execute(audit_log.update().where(audit_log.c.id == 3).values(id=2))
        conn.execute(audit_log.update().where(audit_log.c.id == -2).values(id=3))

    entry_id, _ = verdict(sqlite_engine)
    assert entry_id == 2


def test_audit_verify_exits_1_naming_the_entry(
    sqlite_engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain_of(sqlite_engine, 3)
    url = sqlite_engine.url.render_as_string(hide_password=False)
    anchors = ["--anchor-path", str(tmp_path / "anchors.jsonl")]

    assert main(["audit", "verify", "--db-url", url, *anchors]) == 0
    assert "audit chain intact: 3 entries" in capsys.readouterr().out
    with sqlite_engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.id == 2).values(subject="thing/other"))
    assert main(["audit", "verify", "--db-url", url, *anchors]) == 1
    assert "BROKEN at entry 2" in capsys.readouterr().err
    assert main(["audit", "list", "--db-url", url, "--after", "2"]) == 0
    assert "thing/3" in capsys.readouterr().out


def test_a_pii_read_names_reader_subject_and_fields_not_values(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        entry = record_pii_read(conn, "agent-wang", "customer/0000000101", ["identity_document.number"])

    assert (entry.actor, entry.action, entry.subject) == ("agent-wang", "pii.read", "customer/0000000101")
    assert entry.detail == {"fields": ["identity_document.number"]}


def test_operator_actions_are_chained_and_refusals_are_not(sqlite_engine: Engine) -> None:
    replayed = park_invalid_record(sqlite_engine)
    discarded = park_invalid_record(sqlite_engine)
    operations = Operations(sqlite_engine, ingestor=shipped_ingestor(sqlite_engine))

    operations.replay(replayed, operator="op-zhang")
    operations.discard(discarded, operator="op-li")
    with pytest.raises(NotParkedError):
        operations.discard(discarded, operator="op-li")

    with sqlite_engine.connect() as conn:
        entries = list_entries(conn)
        assert verify_chain(conn).ok
    assert [(entry.actor, entry.action, entry.subject) for entry in entries] == [
        ("op-zhang", "parked.replay", f"parked/{replayed}"),
        ("op-li", "parked.discard", f"parked/{discarded}"),
    ]
    assert entries[0].detail["reparked_id"] is not None  # the record is still invalid: parked again
    assert entries[1].detail == {
        "kind": "invalid",
        "origin": "marketing/application A2",
        "reason_code": "mapping",
    }


def test_each_start_chains_the_configuration_and_names_changed_files(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    for folder in ("mappings", "routes", "workflow", "feasibility"):
        shutil.copytree(
            PROJECT_ROOT / folder, config / folder, ignore=shutil.ignore_patterns("*.py", "__pycache__")
        )

    first = record_config_loaded(sqlite_engine, config, actor="hub@test")
    unchanged = record_config_loaded(sqlite_engine, config, actor="hub@test")
    volt_codes = config / "mappings" / "codes" / "marketing" / "volt_code.yaml"
    volt_codes.write_text(volt_codes.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    changed = record_config_loaded(sqlite_engine, config, actor="hub@test")

    assert (
        "routes/marketing.yaml" in first.detail["files"] and "workflow/stages.yaml" in first.detail["files"]
    )
    assert "feasibility/rules.yaml" in first.detail["files"]
    assert first.detail["changed"] == sorted(first.detail["files"])
    assert unchanged.detail["changed"] == []
    assert changed.detail["changed"] == ["mappings/codes/marketing/volt_code.yaml"]
    assert changed.prev_hash == unchanged.hash


@pytest.mark.postgres
def test_concurrent_appenders_on_postgres_keep_one_linear_chain(postgres_engine: Engine) -> None:
    writers, entries_each = 6, 25
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            start.wait()
            for number in range(entries_each):
                with postgres_engine.begin() as conn:
                    append_entry(
                        conn, actor=f"w{writer}", action="test.step", subject=f"s{number}", detail={}
                    )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(writer,)) for writer in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with postgres_engine.connect() as conn:
        found = verify_chain(conn)
        ids = list(conn.execute(sa.select(audit_log.c.id).order_by(audit_log.c.id)).scalars())
    assert found.ok, found.broken
    assert ids == list(range(1, writers * entries_each + 1))
