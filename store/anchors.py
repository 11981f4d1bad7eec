"""Anchors of the audit chain: its head (position and hash) at a time, kept outside the database.

The chain alone cannot show that its newest entries were deleted and the sequence counter rolled back:
what remains is a valid, shorter chain. An anchor records how far the chain reached and what its head
hash was, in an append-only JSON-lines file on other storage than the database, one object a line:
`{"sequence": 42, "hash": "<64 hex>", "at": "2026-03-01T08:00:00Z"}`. Each line is written with one
O_APPEND write and fsynced before the write is reported, so a crash leaves whole lines. Anyone who can
rewrite the database but not this file cannot hide a truncation from `yekuo audit verify`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ground.errors import ConfigError

_HASH = re.compile(r"^[0-9a-f]{64}$")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class AnchorFileError(ConfigError):
    """A line of the anchor file is not an anchor (file:line in the text)."""


@dataclass(frozen=True)
class Anchor:
    """The chain's head at a moment: its last position (0: empty chain), that entry's hash, and when."""

    sequence: int
    hash: str
    at: datetime

    def line(self) -> str:
        """The anchor as one line of the anchor file."""
        at = self.at.astimezone(UTC).strftime(_TIME_FORMAT)
        return json.dumps({"sequence": self.sequence, "hash": self.hash, "at": at}, sort_keys=True) + "\n"

    def describe(self) -> str:
        """How messages name the anchor: its position, when it was taken and the start of its hash."""
        return f"entry {self.sequence} (hash {self.hash[:16]}…) anchored at {self.at:%Y-%m-%d %H:%M:%S}Z"


def append_anchor(path: Path, anchor: Anchor) -> None:
    """Add an anchor at the end of the file, creating it (and its folder), and wait until it is on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, anchor.line().encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    if created:
        # A new file's name lives in its folder: without this a crash could lose the whole file.
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def latest_anchor(path: Path) -> Anchor | None:
    """The last anchor of the file; None when the file does not exist or holds none yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise AnchorFileError(f"cannot read the anchor file: {exc}", file=str(path)) from exc
    lines = text.splitlines()
    for number in range(len(lines), 0, -1):
        if lines[number - 1].strip():
            return _parse(lines[number - 1], path, number)
    return None


def _parse(text: str, path: Path, number: int) -> Anchor:
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnchorFileError(f"not a JSON object: {exc}", file=str(path), line=number) from exc
    if not isinstance(fields, dict):
        raise AnchorFileError("not a JSON object", file=str(path), line=number)
    sequence, digest, at = fields.get("sequence"), fields.get("hash"), fields.get("at")
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
        raise AnchorFileError(
            f"sequence must be a whole number >= 0, not {sequence!r}", file=str(path), line=number
        )
    if not isinstance(digest, str) or not _HASH.match(digest):
        raise AnchorFileError(
            f"hash must be 64 lower-case hex digits, not {digest!r}", file=str(path), line=number
        )
    try:
        taken = datetime.strptime(str(at), _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise AnchorFileError(
            f"at must be a UTC time like 2026-03-01T08:00:00Z, not {at!r}", file=str(path), line=number
        ) from exc
    return Anchor(sequence=sequence, hash=digest, at=taken)
