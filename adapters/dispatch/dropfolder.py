"""The drop folder's file life cycle: incoming -> processing -> done | error, safe for several hub processes.

Layout under the root: incoming/ (producers and the upload API put files here), processing/, done/ and
error/ (each file in error has a ``<name>.reason`` text file beside it).

- A file is ready when it is a regular file, its name does not start with '.' and does not end in a
  temporary suffix (.part, .tmp, .partial: producers write under such a name and rename when done), and
  its size and modification time stayed the same across two looks at least ``stable_s`` apart.
- Claim: os.rename of incoming/<name> to processing/<stamp>-<token>_<name>. The rename is atomic, so of
  several processes only one wins; the others get FileNotFoundError and move on. The claimed name is
  unique, so a new file of the same name can never replace one being processed, and it stays the name in
  done/ and error/.
- The claimant then holds an exclusive flock on the file until it has moved it on. A file in processing/
  that nobody holds locked belongs to a process that died: any process may take it over by the same
  rename under a new claimed name (locks vanish with their process, so there is no timeout to tune). The
  lock is advisory and needs a local file system or one with working locks (NFSv4); every process of
  the hub uses it.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Literal

log = logging.getLogger(__name__)

TEMPORARY_SUFFIXES = (".part", ".tmp", ".partial")
REASON_SUFFIX = ".reason"
_CLAIMED = re.compile(r"^\d{8}T\d{6}-[0-9a-f]{8}_(.+)$")

Destination = Literal["done", "error"]


def is_candidate(name: str) -> bool:
    """Whether a name in incoming/ may be taken: not hidden and not a temporary name."""
    return not name.startswith(".") and not name.lower().endswith(TEMPORARY_SUFFIXES)


def original_name(claimed: str) -> str:
    """The name a file arrived under, from its claimed name (a foreign name is its own original)."""
    match = _CLAIMED.match(claimed)
    return match.group(1) if match else claimed


def _claimed_name(original: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{secrets.token_hex(4)}_{original}"


@dataclass
class Claim:
    """A file this process holds in processing/: its open (and locked) binary file and its names."""

    path: Path
    original: str
    file: BinaryIO

    @property
    def claimed_name(self) -> str:
        """The unique name under processing/, kept in done/ and error/."""
        return self.path.name

    def release(self) -> None:
        """Close the file, which drops the lock; the file stays where it is (for a later take-over)."""
        self.file.close()


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float


@dataclass
class DropFolder:
    """One drop folder as seen by one process; observations of incoming/ are kept in memory only."""

    root: Path
    stable_s: float = 2.0
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, _Seen] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for folder in (self.incoming, self.processing, self.done, self.error):
            folder.mkdir(parents=True, exist_ok=True)

    @property
    def incoming(self) -> Path:
        """Where producers put files."""
        return self.root / "incoming"

    @property
    def processing(self) -> Path:
        """Files claimed by a hub process."""
        return self.root / "processing"

    @property
    def done(self) -> Path:
        """Files published (or recognised as duplicates)."""
        return self.root / "done"

    @property
    def error(self) -> Path:
        """Files that could not be taken, each with a .reason file."""
        return self.root / "error"

    def ready(self) -> list[str]:
        """Names in incoming/ that are complete by the stable-size rule, oldest first."""
        now = self.clock()
        present: dict[str, tuple[int, int]] = {}
        with os.scandir(self.incoming) as entries:
            for entry in entries:
                if not is_candidate(entry.name):
                    continue
                try:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                present[entry.name] = (stat.st_size, stat.st_mtime_ns)
        ready: list[tuple[int, str]] = []
        for name, (size, mtime_ns) in present.items():
            seen = self._seen.get(name)
            if seen is None or (seen.size, seen.mtime_ns) != (size, mtime_ns):
                self._seen[name] = _Seen(size, mtime_ns, now)
            elif now - seen.since >= self.stable_s:
                ready.append((mtime_ns, name))
        for gone in self._seen.keys() - present.keys():
            del self._seen[gone]
        return [name for _, name in sorted(ready)]

    def claim(self, name: str) -> Claim | None:
        """Move incoming/<name> into processing/ and lock it; None when another process got there first."""
        self._seen.pop(name, None)
        return self._take(self.incoming / name, original_name=name)

    def orphans(self) -> list[Claim]:
        """Take over every file in processing/ whose claimant died (its lock is gone)."""
        taken = []
        with os.scandir(self.processing) as entries:
            names = [entry.name for entry in entries if entry.is_file(follow_symlinks=False)]
        for name in sorted(names):
            path = self.processing / name
            try:
                file = path.open("rb")
            except FileNotFoundError:
                continue
            if not _try_lock(file):
                file.close()
                continue
            target = self.processing / _claimed_name(original_name(name))
            try:
                os.rename(path, target)
            except FileNotFoundError:
                # Its claimant finished and moved it on between our open and our lock.
                file.close()
                continue
            log.warning("took over %s, left in processing/ by a hub process that stopped", name)
            taken.append(Claim(target, original_name(name), file))
        return taken

    def finish(self, claim: Claim, destination: Destination, reason: str | None = None) -> Path:
        """Move a claimed file to done/ or error/ (writing its reason file first), then release it."""
        folder = self.done if destination == "done" else self.error
        try:
            if destination == "error":
                _write_reason(folder / f"{claim.claimed_name}{REASON_SUFFIX}", reason or "unknown reason")
            target = folder / claim.claimed_name
            os.rename(claim.path, target)
            return target
        finally:
            claim.release()

    def _take(self, source: Path, *, original_name: str) -> Claim | None:
        target = self.processing / _claimed_name(original_name)
        try:
            os.rename(source, target)
        except FileNotFoundError:
            return None
        try:
            file = target.open("rb")
        except FileNotFoundError:
            # Taken over as an orphan in the instant between our rename and our lock.
            return None
        if not _try_lock(file):
            file.close()
            return None
        return Claim(target, original_name, file)


def _try_lock(file: BinaryIO) -> bool:
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _write_reason(path: Path, reason: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(reason.rstrip("\n") + "\n", encoding="utf-8")
    os.replace(temporary, path)
