"""The keyed audit chain: an untouched chain verifies; a rewrite without the key (plain SHA-256, another
key) is named; entries cut off the end with the sequence counter rolled back are caught by the anchor;
a chain written before keying verifies only up to the configured boundary."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from ground import clock
from ground.settings import AuditSettings
from store.anchors import Anchor, AnchorFileError, append_anchor, latest_anchor
from store.audit import (
    CHAIN_SEQUENCE,
    GENESIS_HASH,
    AuditKeyError,
    ChainKey,
    ChainVerdict,
    append_entry,
    audit_log,
    bind_chain_key,
    chain_key_from_settings,
    entry_hash,
    list_entries,
    new_chain_key,
    unkeyed_entry_hash,
    verify_chain,
)
from store.schema import subject_sequences

HUB_KEY = ChainKey(b"\x11" * 32)
WRONG_KEY = ChainKey(b"\x22" * 32)


@pytest.fixture
def keyed_engine(sqlite_engine: Engine) -> Engine:
    bind_chain_key(sqlite_engine, HUB_KEY)
    return sqlite_engine


def chain_of(engine: Engine, entries: int, first: int = 1) -> None:
    with engine.begin() as conn:
        for number in range(first, first + entries):
            append_entry(
                conn, actor="op-li", action="test.step", subject=f"thing/{number}", detail={"n": number}
            )


def verify(
    engine: Engine, *, key: ChainKey | None = None, anchor: Anchor | None = None, unkeyed_through: int = 0
) -> ChainVerdict:
    with engine.connect() as conn:
        return verify_chain(conn, key=key, anchor=anchor, unkeyed_through=unkeyed_through)


def rehash_from(engine: Engine, first: int, hash_of: str, key: ChainKey | None = None) -> None:
    """Recompute the hash of every entry from `first` on and relink the next one, as a forger would."""
    with engine.begin() as conn:
        entries = list_entries(conn, limit=1000)
        prev_hash = entries[first - 2].hash if first > 1 else GENESIS_HASH
        for entry in entries[first - 1 :]:
            fields: dict[str, Any] = {
                "id": entry.id,
                "at": entry.at,
                "actor": entry.actor,
                "action": entry.action,
                "subject": entry.subject,
                "detail": entry.detail,
                "prev_hash": prev_hash,
            }
            forged = (
                unkeyed_entry_hash(**fields) if hash_of == "sha256" else entry_hash(key or HUB_KEY, **fields)
            )
            conn.execute(
                audit_log.update().where(audit_log.c.id == entry.id).values(prev_hash=prev_hash, hash=forged)
            )
            prev_hash = forged


def roll_back_to(engine: Engine, last: int) -> None:
    """Delete every entry after `last` and set the sequence counter back to it."""
    with engine.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.id > last))
        conn.execute(
            subject_sequences.update()
            .where(subject_sequences.c.subject_key == CHAIN_SEQUENCE)
            .values(last_sequence=last)
        )


def head_anchor(engine: Engine) -> Anchor:
    verdict = verify(engine)
    assert verdict.ok, verdict.broken
    return Anchor(verdict.entries, verdict.last_hash, clock.now().replace(microsecond=0))


def test_an_untouched_keyed_chain_verifies_and_matches_its_anchor(keyed_engine: Engine) -> None:
    chain_of(keyed_engine, 5)
    anchor = head_anchor(keyed_engine)
    chain_of(keyed_engine, 2, first=6)  # the chain may grow past its anchor

    with keyed_engine.connect() as conn:
        entries = list_entries(conn)
        found = verify_chain(conn, anchor=anchor)
    assert found.ok and (found.entries, found.head, found.unkeyed) == (7, 7, 0)
    assert found.last_hash == entries[-1].hash
    assert anchor.hash == entries[4].hash
    assert entries[0].hash != unkeyed_entry_hash(
        id=1, at=entries[0].at, actor="op-li", action="test.step", subject="thing/1", detail={"n": 1},
        prev_hash=GENESIS_HASH,
    )  # fmt: skip


def test_an_edit_rehashed_with_plain_sha256_is_named_even_when_the_rest_is_relinked(
    keyed_engine: Engine,
) -> None:
    chain_of(keyed_engine, 5)
    with keyed_engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.id == 3).values(actor="someone-else"))
    rehash_from(keyed_engine, 3, "sha256")

    found = verify(keyed_engine)
    assert found.broken is not None and found.broken.entry_id == 3
    assert "rewritten without the chain key" in found.broken.reason
    assert "plain SHA-256" in found.broken.reason
    assert found.entries == 2  # the entries before the edit still verify


def test_a_whole_chain_rehashed_with_plain_sha256_fails_at_its_first_entry(keyed_engine: Engine) -> None:
    chain_of(keyed_engine, 4)
    rehash_from(keyed_engine, 1, "sha256")

    found = verify(keyed_engine)
    assert found.broken is not None and found.broken.entry_id == 1
    assert "plain SHA-256" in found.broken.reason and "YEKUO_AUDIT__UNKEYED_THROUGH" in found.broken.reason


def test_a_chain_recomputed_with_the_wrong_key_fails(keyed_engine: Engine) -> None:
    chain_of(keyed_engine, 4)
    with keyed_engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.id == 2).values(subject="thing/other"))
    rehash_from(keyed_engine, 1, "hmac", key=WRONG_KEY)

    found = verify(keyed_engine)
    assert found.broken is not None and found.broken.entry_id == 1
    assert "modified or hashed with another key" in found.broken.reason
    assert verify(keyed_engine, key=WRONG_KEY).ok  # the forger's own key agrees: only the real one refutes it


def test_an_edit_rehashed_with_the_real_key_breaks_the_next_link(keyed_engine: Engine) -> None:
    chain_of(keyed_engine, 5)
    with keyed_engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.id == 3).values(detail={"n": 30}))
    rehash_from(keyed_engine, 3, "hmac")
    with keyed_engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.id == 4).values(prev_hash="f" * 64))

    found = verify(keyed_engine)
    assert found.broken is not None and found.broken.entry_id == 4
    assert "does not follow entry 3" in found.broken.reason


def test_truncation_with_the_sequence_rolled_back_is_caught_only_by_the_anchor(keyed_engine: Engine) -> None:
    chain_of(keyed_engine, 5)
    anchor = head_anchor(keyed_engine)
    roll_back_to(keyed_engine, 3)

    assert verify(keyed_engine).ok  # what is left is a valid, shorter chain: the chain alone cannot tell
    found = verify(keyed_engine, anchor=anchor)
    assert found.broken is not None and found.broken.entry_id == 4
    assert "truncated and rolled back" in found.broken.reason
    assert "entries 4..5 were deleted" in found.broken.reason
    assert "entry 5" in found.broken.reason and "sequence counter at 3" in found.broken.reason


def test_a_rollback_followed_by_new_entries_differs_from_the_anchor(keyed_engine: Engine) -> None:
    chain_of(keyed_engine, 5)
    anchor = head_anchor(keyed_engine)
    roll_back_to(keyed_engine, 4)
    chain_of(keyed_engine, 3, first=100)  # appended at 5, 6, 7 as if nothing had happened

    assert verify(keyed_engine).ok
    found = verify(keyed_engine, anchor=anchor)
    assert found.broken is not None and found.broken.entry_id == 5
    assert "is not the anchored one" in found.broken.reason and "rolled back" in found.broken.reason


def test_entries_cut_off_the_end_without_a_rollback_are_named(keyed_engine: Engine) -> None:
    chain_of(keyed_engine, 5)
    with keyed_engine.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.id >= 4))

    found = verify(keyed_engine)
    assert found.broken is not None
    assert (found.broken.entry_id, found.broken.reason) == (4, "entries 4..5 are missing from the end")


def test_a_counter_rolled_back_below_the_entries_is_named(keyed_engine: Engine) -> None:
    chain_of(keyed_engine, 5)
    with keyed_engine.begin() as conn:
        conn.execute(
            subject_sequences.update()
            .where(subject_sequences.c.subject_key == CHAIN_SEQUENCE)
            .values(last_sequence=3)
        )

    found = verify(keyed_engine)
    assert found.broken is not None and found.broken.entry_id == 4
    assert "sequence counter was rolled back" in found.broken.reason


def test_an_anchor_of_the_empty_chain_holds_while_it_grows(keyed_engine: Engine) -> None:
    empty = head_anchor(keyed_engine)
    chain_of(keyed_engine, 2)

    assert (empty.sequence, empty.hash) == (0, GENESIS_HASH)
    assert verify(keyed_engine, anchor=empty).ok


def write_legacy_chain(engine: Engine, entries: int) -> None:
    """Entries as the hub wrote them before the chain was keyed: plain SHA-256, same counter."""
    chain_of(engine, entries)
    rehash_from(engine, 1, "sha256")


def test_a_chain_written_before_keying_verifies_up_to_the_configured_boundary(keyed_engine: Engine) -> None:
    write_legacy_chain(keyed_engine, 3)
    chain_of(keyed_engine, 2, first=4)

    refused = verify(keyed_engine)
    accepted = verify(keyed_engine, unkeyed_through=3)
    assert refused.broken is not None and refused.broken.entry_id == 1
    assert "YEKUO_AUDIT__UNKEYED_THROUGH" in refused.broken.reason
    assert accepted.ok and (accepted.entries, accepted.unkeyed) == (5, 3)


def test_the_unkeyed_prefix_is_pinned_by_the_first_keyed_entry(keyed_engine: Engine) -> None:
    write_legacy_chain(keyed_engine, 3)
    chain_of(keyed_engine, 2, first=4)
    with keyed_engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.id == 2).values(actor="someone-else"))
    with keyed_engine.begin() as conn:  # relink 2..3 with plain SHA-256, as the old code would have
        entries = list_entries(conn)
        prev_hash = entries[0].hash
        for entry in entries[1:3]:
            forged = unkeyed_entry_hash(
                id=entry.id, at=entry.at, actor=entry.actor, action=entry.action, subject=entry.subject,
                detail=entry.detail, prev_hash=prev_hash,
            )  # fmt: skip
            conn.execute(
                audit_log.update().where(audit_log.c.id == entry.id).values(prev_hash=prev_hash, hash=forged)
            )
            prev_hash = forged

    found = verify(keyed_engine, unkeyed_through=3)
    assert found.broken is not None and found.broken.entry_id == 4
    assert "does not follow entry 3" in found.broken.reason


def test_a_plain_hash_past_the_boundary_is_refused(keyed_engine: Engine) -> None:
    write_legacy_chain(keyed_engine, 2)
    chain_of(keyed_engine, 3, first=3)
    rehash_from(keyed_engine, 4, "sha256")

    found = verify(keyed_engine, unkeyed_through=2)
    assert found.broken is not None and found.broken.entry_id == 4
    assert "rewritten without the chain key" in found.broken.reason


def test_a_non_ascii_hash_is_a_break_not_a_crash(keyed_engine: Engine) -> None:
    chain_of(keyed_engine, 2)
    with keyed_engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.id == 2).values(hash="é" * 64))

    found = verify(keyed_engine)
    assert found.broken is not None and found.broken.entry_id == 2


def test_the_engine_key_is_the_one_entries_are_written_and_checked_with(keyed_engine: Engine) -> None:
    chain_of(keyed_engine, 2)
    bind_chain_key(keyed_engine, WRONG_KEY)

    found = verify(keyed_engine)
    assert found.broken is not None and found.broken.entry_id == 1
    assert verify(keyed_engine, key=HUB_KEY).ok


def test_the_configured_key_is_decoded_and_a_bad_one_is_refused_by_name() -> None:
    configured = new_chain_key()
    key = chain_key_from_settings(AuditSettings(chain_key=SecretStr(configured)))
    assert (key.secret, key.development) == (base64.b64decode(configured), False)
    assert "secret" not in repr(key) and configured not in repr(key)

    with pytest.raises(AuditKeyError, match="YEKUO_AUDIT__CHAIN_KEY"):
        chain_key_from_settings(AuditSettings(), allow_development=False)
    with pytest.raises(AuditKeyError, match="not valid base64"):
        chain_key_from_settings(AuditSettings(chain_key=SecretStr("not base64!")))
    with pytest.raises(AuditKeyError, match="16 bytes long"):
        chain_key_from_settings(AuditSettings(chain_key=SecretStr(base64.b64encode(b"k" * 16).decode())))
    assert chain_key_from_settings(AuditSettings()).development


def test_anchors_are_appended_as_lines_and_the_last_one_is_read(tmp_path: Path) -> None:
    path = tmp_path / "anchors" / "audit.jsonl"
    now = clock.now().replace(microsecond=0)
    first = Anchor(3, "a" * 64, now - timedelta(hours=1))
    second = Anchor(7, "b" * 64, now)

    assert latest_anchor(path) is None
    append_anchor(path, first)
    append_anchor(path, second)

    assert latest_anchor(path) == second
    assert path.read_text(encoding="utf-8").splitlines() == [first.line().strip(), second.line().strip()]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not a JSON object"),
        ('{"sequence": -1, "hash": "' + "a" * 64 + '", "at": "2026-01-01T00:00:00Z"}', "sequence"),
        ('{"sequence": 2, "hash": "xyz", "at": "2026-01-01T00:00:00Z"}', "hash must be 64"),
        ('{"sequence": 2, "hash": "' + "a" * 64 + '", "at": "yesterday"}', "at must be a UTC time"),
    ],
    ids=["not json", "negative sequence", "short hash", "bad time"],
)
def test_a_broken_anchor_line_is_named_with_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "anchors.jsonl"
    append_anchor(path, Anchor(1, "c" * 64, clock.now().replace(microsecond=0)))
    with path.open("a", encoding="utf-8") as out:
        out.write(line + "\n")

    with pytest.raises(AnchorFileError, match=message) as raised:
        latest_anchor(path)
    assert f"{path}:2:" in str(raised.value)
