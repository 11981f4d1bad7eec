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
- Finishing stamps the file (and its reason) with the hub clock's time as its mtime, so a file's age in
  done/ and error/ counts from when it got there, not from when a producer wrote it (rsync and cp -p keep
  old mtimes; only a file owned by another user, whose times the hub may not set, keeps its own).
  sweep() deletes files whose mtime is older than their folder's retention, each with its reason file;
  with_sweeps() runs it periodically in the drop folder's worker.
- Free space: when the drop folder's file system has less free than the floor (min_free_bytes, or
  min_free_percent of the disk, the larger), ready() and claim() hand out nothing, so files in incoming/
  wait there untouched (a warning says so) and are taken once space is back. The upload API checks the same
  floor before it stores a file. disk_usage is passed in (shutil.disk_usage by default) so a test can fill
  the disk.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import math
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from ground import clock
from ground.settings import DispatchSettings

log = logging.getLogger(__name__)

TEMPORARY_SUFFIXES = (".part", ".tmp", ".partial")
REASON_SUFFIX = ".reason"
_CLAIMED = re.compile(r"^\d{8}T\d{6}-[0-9a-f]{8}_(.+)$")

Destination = Literal["done", "error"]
# While space stays low, the warning is repeated this often so it is not lost in a long log.
LOW_SPACE_REMINDER_S = 300.0


class DiskUsage(Protocol):
    """What shutil.disk_usage tells: the size of a file system and the bytes still free on it."""

    @property
    def total(self) -> int: ...

    @property
    def free(self) -> int: ...


@dataclass(frozen=True)
class FreeSpace:
    """Free space on the drop folder's file system against the floor the hub keeps free."""

    free_bytes: int
    total_bytes: int
    floor_bytes: int

    @property
    def low(self) -> bool:
        """Whether free space is below the floor: no new file is taken or accepted."""
        return self.free_bytes < self.floor_bytes

    @property
    def room_bytes(self) -> int:
        """How much may still be written before free space falls below the floor."""
        return max(self.free_bytes - self.floor_bytes, 0)

    def describe(self) -> str:
        """Free space and floor in words, for logs and error details."""
        return (
            f"{_amount(self.free_bytes)} free of {_amount(self.total_bytes)}; "
            f"the hub keeps at least {_amount(self.floor_bytes)} free"
        )


def is_candidate(name: str) -> bool:
    """Whether a name in incoming/ may be taken: not hidden and not a temporary name."""
    return not name.startswith(".") and not name.lower().endswith(TEMPORARY_SUFFIXES)


def original_name(claimed: str) -> str:
    """The name a file arrived under, from its claimed name (a foreign name is its own original)."""
    match = _CLAIMED.match(claimed)
    return match.group(1) if match else claimed


def _claimed_name(original: str) -> str:
    stamp = clock.now().strftime("%Y%m%dT%H%M%S")
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
    min_free_bytes: int = 0
    min_free_percent: float = 0.0
    disk_usage: Callable[[Path], DiskUsage] = shutil.disk_usage
    done_retention: timedelta | None = None
    error_retention: timedelta | None = None
    sweep_interval_s: float = 3600.0
    _next_sweep: float = field(default=-math.inf, init=False, repr=False)
    _space_low: bool = field(default=False, init=False, repr=False)
    _next_space_warning: float = field(default=-math.inf, init=False, repr=False)

    def __post_init__(self) -> None:
        for folder in (self.incoming, self.processing, self.done, self.error):
            folder.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_settings(
        cls, settings: DispatchSettings, *, disk_usage: Callable[[Path], DiskUsage] = shutil.disk_usage
    ) -> DropFolder:
        """The configured drop folder, with its free-space floor and retentions."""
        return cls(
            settings.drop_dir,
            stable_s=settings.stable_s,
            min_free_bytes=settings.min_free_bytes,
            min_free_percent=settings.min_free_percent,
            disk_usage=disk_usage,
            done_retention=timedelta(days=settings.done_retention_days),
            error_retention=timedelta(days=settings.error_retention_days),
            sweep_interval_s=settings.sweep_interval_s,
        )

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
        # Files keep being watched while space is low, so they are taken as soon as it is back.
        if self._refuses_new_files():
            return []
        return [name for _, name in sorted(ready)]

    def claim(self, name: str) -> Claim | None:
        """Move incoming/<name> into processing/ and lock it.

        None when another process got there first, or when free space is below the floor (the file then
        stays in incoming/).
        """
        if self._refuses_new_files():
            return None
        self._seen.pop(name, None)
        return self._take(self.incoming / name, original_name=name)

    def free_space(self) -> FreeSpace | None:
        """Free space against the floor; None when no floor is configured."""
        if self.min_free_bytes <= 0 and self.min_free_percent <= 0:
            return None
        usage = self.disk_usage(self.root)
        floor = max(self.min_free_bytes, math.ceil(usage.total * self.min_free_percent / 100))
        return FreeSpace(free_bytes=usage.free, total_bytes=usage.total, floor_bytes=floor)

    def sweep(self) -> list[Path]:
        """Delete files in done/ and error/ older than their retention, each with its reason; return them.

        A file's age is the hub clock's now minus its mtime.
        """
        now = clock.now()
        removed: list[Path] = []
        for folder, retention in ((self.done, self.done_retention), (self.error, self.error_retention)):
            if retention is not None:
                removed += self._sweep(folder, retention, now)
        return removed

    def sweep_if_due(self) -> list[Path]:
        """sweep() when sweep_interval_s has passed since the last one (the first call always sweeps)."""
        now = self.clock()
        if now < self._next_sweep:
            return []
        self._next_sweep = now + self.sweep_interval_s
        return self.sweep()

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
        stamp = clock.now().timestamp()
        try:
            if destination == "error":
                reason_path = folder / f"{claim.claimed_name}{REASON_SUFFIX}"
                _write_reason(reason_path, reason or "unknown reason")
                _stamp(reason_path, stamp)
            # Stamped before the move: a sweep must never see it in done/ or error/ with a producer's mtime.
            _stamp(claim.path, stamp)
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

    def _refuses_new_files(self) -> bool:
        space = self.free_space()
        if space is None:
            return False
        if not space.low:
            if self._space_low:
                self._space_low = False
                log.info("drop folder %s has space again (%s); taking new files", self.root, space.describe())
            return False
        now = self.clock()
        if not self._space_low or now >= self._next_space_warning:
            self._space_low = True
            self._next_space_warning = now + LOW_SPACE_REMINDER_S
            waiting = sum(1 for name in os.listdir(self.incoming) if is_candidate(name))
            log.warning(
                "drop folder %s is low on space (%s): %d file(s) wait in incoming/ until space is back",
                self.root,
                space.describe(),
                waiting,
            )
        return True

    def _sweep(self, folder: Path, retention: timedelta, now: datetime) -> list[Path]:
        cutoff = (now - retention).timestamp()
        expired: dict[str, float] = {}
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    if entry.is_file(follow_symlinks=False):
                        mtime = entry.stat(follow_symlinks=False).st_mtime
                        if mtime < cutoff:
                            expired[entry.name] = mtime
                except FileNotFoundError:
                    continue
        removed = []
        for name in sorted(expired):
            if name.endswith(REASON_SUFFIX) and (folder / name[: -len(REASON_SUFFIX)]).exists():
                continue  # a reason goes with its file, never before it
            path = folder / name
            if not _remove(path):
                continue
            with_reason = _remove(folder / f"{name}{REASON_SUFFIX}")
            removed.append(path)
            log.info(
                "retention: deleted %s/%s%s, last changed %s, older than %d days",
                folder.name,
                name,
                " and its reason file" if with_reason else "",
                datetime.fromtimestamp(expired[name], UTC).isoformat(timespec="seconds"),
                retention.days,
            )
        return removed


def with_sweeps(folder: DropFolder, step: Callable[[], bool]) -> Callable[[], bool]:
    """A worker step that sweeps the folder's done/ and error/ when a sweep is due, then runs `step`."""

    def tended() -> bool:
        folder.sweep_if_due()
        return step()

    return tended


def _remove(path: Path) -> bool:
    """Delete a file; False when it is already gone (another hub process swept it) or cannot be."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("retention: could not delete %s: %s", path, exc)
        return False
    return True


def _stamp(path: Path, at: float) -> None:
    try:
        os.utime(path, (at, at))
    except PermissionError:
        # Only a file's owner may set its times: a file a producer owns keeps its mtime and ages from it.
        log.debug("could not stamp %s with the time it was finished; it keeps its own mtime", path)


def _amount(size: int) -> str:
    # Rounded down, so a free space just under the floor never reads as equal to it.
    return f"{size} bytes ({math.floor(size * 100 / 1024**3) / 100:.2f} GiB)"


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
