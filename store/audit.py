"""The audit log: an append-only, hash-chained record of who read personal data, acted on parked
messages, rotated keys or started the hub with which configuration.

Entry n carries the hash of entry n-1 (prev_hash), and its own hash is SHA-256 over a canonical JSON
encoding of its position, time, actor, action, subject, detail and prev_hash. Changing an entry breaks
its own hash; recomputing that hash breaks the next entry's prev_hash; deleting or reordering entries
leaves a gap or a broken link; cutting entries off the end leaves the chain short of the head counter.
verify_chain finds the first such break.

Appenders take the next position from a counter row (subject_sequences, key "audit|chain") whose row
lock is held to the end of their transaction: concurrent appenders on PostgreSQL and MariaDB wait in
turn and SQLite has one writer anyway, so the chain stays linear. An entry commits with the action it
records (same transaction) or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.schema import KEY, UtcDateTime, metadata, subject_sequences
from store.sequences import next_sequence
from store.submissions import utcnow

CHAIN_KEY = "audit|chain"
GENESIS_HASH = "0" * 64

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False, comment="position in the chain"),
    sa.Column("at", UtcDateTime(), nullable=False, comment="whole seconds: every backend keeps them exactly"),
    sa.Column("actor", KEY, nullable=False, comment="who: operator, API caller, or process@host"),
    sa.Column("action", sa.String(64), nullable=False, comment="e.g. pii.read, parked.replay, config.loaded"),
    sa.Column("subject", KEY, nullable=False, comment="what it was done to, e.g. customer/1234567"),
    sa.Column("detail", sa.JSON, nullable=False, comment="never personal data itself"),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the chain."""

    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainBreak:
    """The first place the chain does not hold, and why."""

    entry_id: int
    reason: str


@dataclass(frozen=True)
class ChainVerdict:
    """What verify_chain found: how many entries it checked and the first break (None: intact)."""

    entries: int
    head: int
    broken: ChainBreak | None

    @property
    def ok(self) -> bool:
        """Whether the whole chain holds."""
        return self.broken is None


def append_entry(
    conn: Connection, *, actor: str, action: str, subject: str, detail: Mapping[str, Any]
) -> AuditEntry:
    """Add an entry at the end of the chain inside the caller's transaction."""
    position = _take_position(conn)
    prev_hash = conn.execute(
        sa.select(audit_log.c.hash).where(audit_log.c.id < position).order_by(audit_log.c.id.desc()).limit(1)
    ).scalar()
    entry_at = utcnow().replace(microsecond=0)
    values: dict[str, Any] = {
        "id": position,
        "at": entry_at,
        "actor": actor,
        "action": action,
        "subject": subject,
        "detail": dict(detail),
        "prev_hash": prev_hash or GENESIS_HASH,
    }
    values["hash"] = entry_hash(**values)
    conn.execute(audit_log.insert().values(**values))
    return AuditEntry(**values)


def record_pii_read(conn: Connection, actor: str, subject: str, fields: Sequence[str]) -> AuditEntry:
    """Record that actor was shown the named personal fields of subject unmasked (e.g. customer/1234)."""
    return append_entry(
        conn, actor=actor, action="pii.read", subject=subject, detail={"fields": sorted(fields)}
    )


def entry_hash(
    *,
    id: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    detail: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 (hex) over the canonical JSON of an entry's fields and the previous entry's hash."""
    canonical = json.dumps(
        [id, at.strftime("%Y-%m-%dT%H:%M:%SZ"), actor, action, subject, detail, prev_hash],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def list_entries(
    conn: Connection, *, after: int = 0, limit: int = 100, action: str | None = None
) -> list[AuditEntry]:
    """Entries after a position, oldest first, optionally of one action."""
    query = sa.select(audit_log).where(audit_log.c.id > after).order_by(audit_log.c.id).limit(limit)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    return [_entry(row) for row in conn.execute(query)]


def last_entry(conn: Connection, action: str) -> AuditEntry | None:
    """The newest entry of an action."""
    row = conn.execute(
        sa.select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.id.desc()).limit(1)
    ).first()
    return _entry(row) if row is not None else None


def verify_chain(conn: Connection, *, batch_size: int = 1000) -> ChainVerdict:
    """Walk the chain from the first entry and report the first modified, missing or misplaced one."""
    expected, prev_hash, checked = 1, GENESIS_HASH, 0
    for entry in _all_entries(conn, batch_size):
        if entry.id != expected:
            return _verdict(
                conn, checked, ChainBreak(expected, f"entry {expected} is missing (next is {entry.id})")
            )
        if entry.prev_hash != prev_hash:
            return _verdict(
                conn,
                checked,
                ChainBreak(
                    entry.id,
                    f"entry {entry.id} does not follow entry {entry.id - 1}: its prev_hash differs from that "
                    "entry's hash (the earlier entry was changed or replaced)",
                ),
            )
        if entry_hash(**_hashed_fields(entry)) != entry.hash:
            return _verdict(
                conn,
                checked,
                ChainBreak(entry.id, f"entry {entry.id} was modified: its content does not match its hash"),
            )
        prev_hash, expected, checked = entry.hash, expected + 1, checked + 1
    head = _head(conn)
    if head > checked:
        return ChainVerdict(
            checked, head, ChainBreak(checked + 1, f"entries {checked + 1}..{head} are missing from the end")
        )
    return ChainVerdict(checked, head, None)


def _take_position(conn: Connection) -> int:
    """The next position, holding the counter row's lock until the caller's transaction ends."""
    exists = conn.execute(
        sa.select(subject_sequences.c.subject_key).where(subject_sequences.c.subject_key == CHAIN_KEY)
    ).first()
    if exists is None:
        # Two first appenders may both miss the row; the loser's insert fails in its savepoint only.
        try:
            with conn.begin_nested():
                conn.execute(subject_sequences.insert().values(subject_key=CHAIN_KEY, last_sequence=0))
        except sa.exc.IntegrityError:
            pass
    return next_sequence(conn, CHAIN_KEY)


def _head(conn: Connection) -> int:
    head = conn.execute(
        sa.select(subject_sequences.c.last_sequence).where(subject_sequences.c.subject_key == CHAIN_KEY)
    ).scalar()
    return int(head or 0)


def _verdict(conn: Connection, checked: int, broken: ChainBreak) -> ChainVerdict:
    return ChainVerdict(checked, _head(conn), broken)


def _all_entries(conn: Connection, batch_size: int) -> Iterator[AuditEntry]:
    after = 0
    while batch := list_entries(conn, after=after, limit=batch_size):
        yield from batch
        after = batch[-1].id


def _hashed_fields(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "subject": entry.subject,
        "detail": entry.detail,
        "prev_hash": entry.prev_hash,
    }


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=int(row.id),
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        detail=dict(row.detail),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
