"""The audit log: an append-only, keyed hash chain of who read personal data, acted on parked messages,
rotated keys or started the hub with which configuration.

Entry n carries the hash of entry n-1 (prev_hash), and its own hash is HMAC-SHA256, under a chain key
held outside the database, over a canonical JSON encoding of its position, time, actor, action, subject,
detail and prev_hash. Changing an entry breaks its own hash, and without the key nobody can compute a
new one: a plain SHA-256 or an HMAC under another key does not match. Deleting or reordering entries
leaves a gap or a broken link; cutting entries off the end leaves the chain short of the head counter,
and when the counter was rolled back as well, short of the last anchor (store/anchors.py), which
verify_chain compares the chain with. verify_chain finds the first such break.

Chains written before the chain was keyed hold entries hashed with plain SHA-256. An entry cannot vouch
for its own scheme (whoever rewrites it could claim either), so the boundary comes from outside the
database: verify_chain accepts a plain hash only for positions up to `unkeyed_through`
(YEKUO_AUDIT__UNKEYED_THROUGH, set once by the operator to the last entry written before keying). The
first keyed entry's HMAC covers its prev_hash, so the unkeyed entries before it cannot change either.

The key is bound to an engine like the PII keyring (bind_chain_key); an engine without one uses the key
the settings configure (YEKUO_AUDIT__CHAIN_KEY) or, when none is, the public development key with a
warning. `yekuo run` refuses to start without a configured key.

Appenders take the next position from a counter row (subject_sequences, key "audit|chain") whose row
lock is held to the end of their transaction: concurrent appenders on PostgreSQL and MariaDB wait in
turn and SQLite has one writer anyway, so the chain stays linear. An entry commits with the action it
records (same transaction) or not at all.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import logging
import os
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ground.errors import ConfigError
from ground.settings import AuditSettings, Settings
from store.anchors import Anchor
from store.schema import KEY, UtcDateTime, metadata, subject_sequences
from store.sequences import next_sequence
from store.submissions import utcnow

log = logging.getLogger(__name__)

CHAIN_SEQUENCE = "audit|chain"
GENESIS_HASH = "0" * 64
MIN_KEY_BYTES = 32
# Public on purpose: anyone can derive it, so it protects nothing; it only lets the demo and the tests run
# the same code path as production. `yekuo run` refuses to start with it.
_DEVELOPMENT_KEY = hashlib.sha256(
    b"yekuo-hub public development audit chain key; never for a real log"
).digest()

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
    sa.Column("hash", sa.String(64), nullable=False, comment="HMAC-SHA256 under the chain key (hex)"),
)


class AuditKeyError(ConfigError):
    """The audit chain key is missing where one is required, or malformed."""


@dataclass(frozen=True)
class ChainKey:
    """The secret the chain's hashes are keyed with; development marks the public development key."""

    secret: bytes = field(repr=False)
    development: bool = False

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_BYTES:
            raise AuditKeyError(
                f"the audit chain key is {len(self.secret)} bytes long; HMAC-SHA256 needs at least "
                f"{MIN_KEY_BYTES}"
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
    """What verify_chain found: how many entries it checked, the sequence counter, the first break (None:
    intact), the hash of the last entry checked, and how many were accepted with an unkeyed hash."""

    entries: int
    head: int
    broken: ChainBreak | None
    last_hash: str = GENESIS_HASH
    unkeyed: int = 0

    @property
    def ok(self) -> bool:
        """Whether the whole chain holds."""
        return self.broken is None


def development_chain_key() -> ChainKey:
    """The public development key: for the demo and tests, never for a real audit log."""
    return ChainKey(_DEVELOPMENT_KEY, development=True)


def chain_key_from_settings(audit: AuditSettings, *, allow_development: bool = True) -> ChainKey:
    """The configured chain key; without one, the development key if allowed, else AuditKeyError."""
    if audit.chain_key is not None:
        return ChainKey(_decode_key(audit.chain_key.get_secret_value()))
    if not allow_development:
        raise AuditKeyError(
            "no audit chain key is configured: set YEKUO_AUDIT__CHAIN_KEY to a base64 key of at least "
            f"{MIN_KEY_BYTES} bytes (e.g. from `yekuo audit new-key`)"
        )
    _warn_development_key()
    return development_chain_key()


def new_chain_key() -> str:
    """A fresh random chain key, base64-encoded as YEKUO_AUDIT__CHAIN_KEY expects it."""
    return base64.b64encode(os.urandom(MIN_KEY_BYTES)).decode("ascii")


# Per dialect, as for the PII keyring: a connection reaches its engine's dialect, and each engine has its own.
_chain_keys: weakref.WeakKeyDictionary[sa.Dialect, ChainKey] = weakref.WeakKeyDictionary()


def bind_chain_key(engine: Engine, key: ChainKey) -> None:
    """Make the engine key its audit entries (and check them) with this key."""
    _chain_keys[engine.dialect] = key


def chain_key_of(dialect: sa.Dialect) -> ChainKey:
    """The key bound to the engine of this dialect; unbound, the configured one (see the module text)."""
    key = _chain_keys.get(dialect)
    if key is None:
        key = _chain_keys[dialect] = chain_key_from_settings(Settings().audit)
    return key


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
    values["hash"] = entry_hash(chain_key_of(conn.dialect), **values)
    conn.execute(audit_log.insert().values(**values))
    return AuditEntry(**values)


def record_pii_read(conn: Connection, actor: str, subject: str, fields: Sequence[str]) -> AuditEntry:
    """Record that actor was shown the named personal fields of subject unmasked (e.g. customer/1234)."""
    return append_entry(
        conn, actor=actor, action="pii.read", subject=subject, detail={"fields": sorted(fields)}
    )


def entry_hash(
    key: ChainKey | None,
    *,
    id: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    detail: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """HMAC-SHA256 (hex) under the chain key over the canonical JSON of an entry and the previous hash.

    key None gives the plain SHA-256 of the same JSON: how entries were hashed before the chain was keyed.
    """
    canonical = _canonical(id, at, actor, action, subject, detail, prev_hash)
    if key is None:
        return hashlib.sha256(canonical).hexdigest()
    return hmac.new(key.secret, canonical, hashlib.sha256).hexdigest()


unkeyed_entry_hash = functools.partial(entry_hash, None)


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


def verify_chain(
    conn: Connection,
    *,
    key: ChainKey | None = None,
    unkeyed_through: int = 0,
    anchor: Anchor | None = None,
    batch_size: int = 1000,
) -> ChainVerdict:
    """Walk the chain from the first entry and report the first modified, missing or misplaced one, then
    compare its end with the sequence counter and with the anchor, if one is given.

    key defaults to the engine's chain key; entries up to unkeyed_through may carry a plain SHA-256
    (written before the chain was keyed).
    """
    key = key or chain_key_of(conn.dialect)
    # Read before the walk: every entry up to it had committed, so the walk must find them all, whatever
    # appenders do meanwhile (reading it afterwards could count an entry committed after the walk ended).
    head_before = _head(conn)
    expected, prev_hash, unkeyed, keyed_before = 1, GENESIS_HASH, 0, False
    anchored_hash = GENESIS_HASH if anchor is not None and anchor.sequence == 0 else None
    for entry in _all_entries(conn, batch_size):
        checked = expected - 1
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
        fields = _hashed_fields(entry)
        # As bytes: compare_digest refuses a str with anything but ASCII, which a forged row may hold.
        if hmac.compare_digest(entry_hash(key, **fields).encode(), entry.hash.encode()):
            keyed_before = True
        elif entry.id <= unkeyed_through and unkeyed_entry_hash(**fields) == entry.hash:
            unkeyed += 1
        else:
            return _verdict(conn, checked, ChainBreak(entry.id, _mismatch(entry, keyed_before)))
        if anchor is not None and entry.id == anchor.sequence:
            anchored_hash = entry.hash
        prev_hash, expected = entry.hash, expected + 1
    checked = expected - 1
    # Read after the walk: each entry seen was committed with its counter step, so the counter covers it.
    head_after = _head(conn)
    broken = _end_break(checked, head_before, head_after, anchor, anchored_hash)
    return ChainVerdict(checked, head_after, broken, last_hash=prev_hash, unkeyed=unkeyed)


def _mismatch(entry: AuditEntry, keyed_before: bool) -> str:
    if unkeyed_entry_hash(**_hashed_fields(entry)) != entry.hash:
        return (
            f"entry {entry.id} was modified or hashed with another key: its content does not match its hash "
            "under the configured chain key"
        )
    if keyed_before:
        return (
            f"entry {entry.id} was rewritten without the chain key: its hash is a plain SHA-256 of its "
            "content, and keyed entries come before it"
        )
    return (
        f"entry {entry.id} carries a plain SHA-256 hash, not the keyed one: it was rewritten without the "
        "chain key, or written before the chain was keyed (then set YEKUO_AUDIT__UNKEYED_THROUGH to the "
        "last entry written before keying)"
    )


def _end_break(
    checked: int, head_before: int, head_after: int, anchor: Anchor | None, anchored_hash: str | None
) -> ChainBreak | None:
    if head_before > checked:
        return ChainBreak(checked + 1, f"entries {checked + 1}..{head_before} are missing from the end")
    if head_after < checked:
        return ChainBreak(
            head_after + 1,
            f"the sequence counter was rolled back: it stands at {head_after}, the chain reaches {checked}",
        )
    if anchor is None:
        return None
    if anchor.sequence > checked:
        return ChainBreak(
            checked + 1,
            f"the chain was truncated and rolled back: it ends at entry {checked} and its sequence "
            f"counter at {head_after}, but {anchor.describe()}; entries {checked + 1}..{anchor.sequence} "
            "were deleted",
        )
    if anchored_hash != anchor.hash:
        return ChainBreak(
            anchor.sequence,
            f"entry {anchor.sequence} is not the anchored one: {anchor.describe()} and its hash now "
            "differs; the chain was rolled back and rewritten from there (or the anchor file belongs to "
            "another database)",
        )
    return None


def _take_position(conn: Connection) -> int:
    """The next position, holding the counter row's lock until the caller's transaction ends."""
    exists = conn.execute(
        sa.select(subject_sequences.c.subject_key).where(subject_sequences.c.subject_key == CHAIN_SEQUENCE)
    ).first()
    if exists is None:
        # Two first appenders may both miss the row; the loser's insert fails in its savepoint only.
        try:
            with conn.begin_nested():
                conn.execute(subject_sequences.insert().values(subject_key=CHAIN_SEQUENCE, last_sequence=0))
        except sa.exc.IntegrityError:
            pass
    return next_sequence(conn, CHAIN_SEQUENCE)


def _head(conn: Connection) -> int:
    head = conn.execute(
        sa.select(subject_sequences.c.last_sequence).where(subject_sequences.c.subject_key == CHAIN_SEQUENCE)
    ).scalar()
    return int(head or 0)


def _verdict(conn: Connection, checked: int, broken: ChainBreak) -> ChainVerdict:
    return ChainVerdict(checked, _head(conn), broken)


def _all_entries(conn: Connection, batch_size: int) -> Iterator[AuditEntry]:
    after = 0
    while batch := list_entries(conn, after=after, limit=batch_size):
        yield from batch
        after = batch[-1].id


def _canonical(
    id: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    detail: Mapping[str, Any],
    prev_hash: str,
) -> bytes:
    text = json.dumps(
        [id, at.strftime("%Y-%m-%dT%H:%M:%SZ"), actor, action, subject, detail, prev_hash],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return text.encode("utf-8")


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


def _decode_key(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip().replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AuditKeyError(
            f"the audit chain key (YEKUO_AUDIT__CHAIN_KEY) is not valid base64: {exc}"
        ) from exc


@functools.cache
def _warn_development_key() -> None:
    log.warning(
        "no audit chain key configured (YEKUO_AUDIT__CHAIN_KEY): the audit log is keyed with the public "
        "development key"
    )
