"""The dispatch drop folder as a file-fed source: which file to read next, and its rows.

The feed takes files from the drop folder (see dropfolder.py for the life cycle and the claim): first any
file a stopped process left in processing/ (looked for every ``recover_interval_s``), then the complete
files of incoming/ (looked for every ``scan_interval_s``). Each claimed file is a DispatchFile: its size,
its SHA-256, its format (CIM/E or curve CSV) and then its rows as raw records with their file and line,
broken rows with the parser's reason, and rows of record types nobody takes as skipped.

A file larger than ``max_file_bytes`` is refused unread. The bytes read for the rows are hashed again, so
a file that changed after it was hashed (its producer still writing) is a file-level problem like an
unreadable encoding, a truncated CIM/E or a CSV without its header: MalformedInputError after the rows
before it. What is published, parked and recorded is the pipeline's part (pipeline/files.py); the feed
persists nothing but the files themselves.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import BinaryIO

from adapters.dispatch.dropfolder import Claim, Destination, DropFolder
from adapters.dispatch.encoding import TextEncoding
from adapters.dispatch.records import SYSTEM, FileFormat, iter_file_records, sniff_format
from ground.errors import MalformedInputError
from ground.settings import DEFAULT_MAX_FILE_BYTES, DispatchSettings
from pipeline.records import FileItem

_HASH_CHUNK = 1024 * 1024
_SNIFF_BYTES = 64 * 1024


class _HashingReader:
    """A binary reader that hashes and counts what passes through it."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._hash = hashlib.sha256()
        self.bytes_read = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._file.read(size)
        self._hash.update(data)
        self.bytes_read += len(data)
        return data

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class DispatchFile:
    """A file the feed holds in processing/: its names and size, then its hash, format and rows."""

    def __init__(self, claim: Claim, max_file_bytes: int) -> None:
        self.claim = claim
        self.name = claim.original
        self.stored_name = claim.claimed_name
        self.size_bytes = os.fstat(claim.file.fileno()).st_size
        self.encoding: TextEncoding | None = None
        self._max_file_bytes = max_file_bytes
        self._sha256: str | None = None
        self._format: FileFormat | None = None
        self._reader: _HashingReader | None = None

    @property
    def bytes_read(self) -> int:
        """How far rows() has read the file."""
        return self._reader.bytes_read if self._reader is not None else 0

    def refusal(self) -> str | None:
        """Why the file is refused unread (larger than allowed), or None."""
        if self.size_bytes > self._max_file_bytes:
            return f"{self.name}: {self.size_bytes} bytes, more than the {self._max_file_bytes} bytes allowed"
        return None

    def sha256(self) -> str:
        """The content hash, read once from the whole file."""
        if self._sha256 is None:
            file = self.claim.file
            file.seek(0)
            digest = hashlib.sha256()
            while chunk := file.read(_HASH_CHUNK):
                digest.update(chunk)
            self._sha256 = digest.hexdigest()
        return self._sha256

    def file_format(self) -> FileFormat:
        """cime or csv, by the file's first lines."""
        if self._format is None:
            file = self.claim.file
            file.seek(0)
            self._format = sniff_format(file.read(_SNIFF_BYTES))
        return self._format

    def rows(self, wanted: Callable[[str], bool]) -> Iterator[FileItem]:
        """Every data row as a record (of the record types wanted), a skipped row or a broken row.

        Sets ``encoding`` once the parser has settled it. Raises MalformedInputError for a file-level
        problem, after the rows before it; and after the last row when the bytes read are not the ones
        hashed.
        """
        file_format = self.file_format()
        self.claim.file.seek(0)
        reader = self._reader = _HashingReader(self.claim.file)
        yield from iter_file_records(
            reader, source_name=self.name, file_format=file_format, wanted=wanted, on_encoding=self._read_as
        )
        if reader.hexdigest() != self.sha256():
            raise MalformedInputError(
                f"{self.name}: the file changed while it was read (still being written?); "
                "it was not published"
            )

    def _read_as(self, encoding: TextEncoding) -> None:
        self.encoding = encoding


class DispatchFeed:
    """The drop folder as a file-fed source: next_file() claims at most one file, finish() puts it away."""

    name = SYSTEM

    def __init__(
        self,
        folder: DropFolder,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        scan_interval_s: float = 1.0,
        recover_interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = folder
        self._max_file_bytes = max_file_bytes
        self._scan_interval_s = scan_interval_s
        self._recover_interval_s = recover_interval_s
        self._clock = clock
        self._next_scan = 0.0
        self._next_recovery = 0.0
        self._queue: deque[str] = deque()
        self._held: deque[Claim] = deque()

    @classmethod
    def from_settings(cls, settings: DispatchSettings) -> DispatchFeed:
        """A feed over the configured drop folder, with its free-space floor, retentions and size limit."""
        return cls(
            DropFolder.from_settings(settings),
            max_file_bytes=settings.max_file_bytes,
            scan_interval_s=settings.scan_interval_s,
        )

    def next_file(self) -> DispatchFile | None:
        """A file left behind by a stopped process, else a ready one claimed now; None when there is none."""
        now = self._clock()
        if now >= self._next_recovery:
            self._next_recovery = now + self._recover_interval_s
            self._held.extend(self.folder.orphans())
        if self._held:
            return self.open(self._held.popleft())
        if not self._queue:
            if now < self._next_scan:
                return None
            self._next_scan = now + self._scan_interval_s
            self._queue.extend(self.folder.ready())
        while self._queue:
            claim = self.folder.claim(self._queue.popleft())
            if claim is not None:
                return self.open(claim)
        return None

    def open(self, claim: Claim) -> DispatchFile:
        """A claimed file, to be read."""
        return DispatchFile(claim, self._max_file_bytes)

    def finish(self, file: DispatchFile, destination: Destination, reason: str | None = None) -> None:
        """Move the file to done/ or error/ (with its reason file)."""
        self.folder.finish(file.claim, destination, reason)

    def release(self, file: DispatchFile) -> None:
        """Leave the file in processing/ unlocked, to be taken over again at the next step."""
        file.claim.release()
        # Retry it (and any other file left behind) at the next step, after the loop's back-off.
        self._next_recovery = 0.0
