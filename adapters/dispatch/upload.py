"""Uploaded dispatch files into the drop folder's incoming/, where the intake takes them like any producer's.

A file is streamed to a hidden temporary file and renamed into place once complete, so the intake never
sees half of it. It is refused, with nothing left in incoming/, when it is larger than the intake's
max_file_bytes (by its declared size before anything is read, or as soon as the bytes received pass the
limit), and while the drop folder's disk has less free than its floor or the file would take it below.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from pathlib import Path

from adapters.dispatch.dropfolder import DiskUsage, DropFolder, FreeSpace
from ground.errors import YekuoError
from ground.settings import DispatchSettings


class UploadTooLargeError(YekuoError):
    """The file is larger than the intake takes."""


class NoRoomError(YekuoError):
    """The drop folder's disk cannot take the file now; why says what about the file made it so."""

    def __init__(self, space: FreeSpace, why: str) -> None:
        super().__init__(f"the drop folder's disk has {space.describe()}, {why}")
        self.space = space
        self.why = why


@dataclass(frozen=True)
class StoredUpload:
    """A file put into incoming/: the name it is stored under, the SHA-256 of its content and its size."""

    stored_name: str
    sha256: str
    size_bytes: int


class DropFolderUploads:
    """Puts uploaded files into the drop folder of the given settings; disk_usage tells the free space."""

    def __init__(
        self, settings: DispatchSettings, *, disk_usage: Callable[[Path], DiskUsage] = shutil.disk_usage
    ) -> None:
        self.settings = settings
        self.disk_usage = disk_usage

    async def store(
        self, chunks: AsyncIterable[bytes], name: str, declared_bytes: int | None
    ) -> StoredUpload:
        """Stream a file into incoming/ under a unique name made from name, a plain file name.

        declared_bytes is the size the sender announced, if any. Raises UploadTooLargeError or NoRoomError,
        before reading when the declared size is enough to tell, else at the first chunk that crosses.
        """
        limit = self.settings.max_file_bytes
        if declared_bytes is not None and declared_bytes > limit:
            raise UploadTooLargeError(
                f"the file is {declared_bytes} bytes, more than the {limit} bytes allowed"
            )
        folder = DropFolder.from_settings(self.settings, disk_usage=self.disk_usage)
        space = folder.free_space()
        if space is not None and space.low:
            raise NoRoomError(space, "so no file is taken")
        if space is not None and declared_bytes is not None and declared_bytes > space.room_bytes:
            raise NoRoomError(space, f"and the file's {declared_bytes} bytes would take it below that")
        return await _receive(chunks, folder.incoming, name, limit, space)


async def _receive(
    chunks: AsyncIterable[bytes], incoming: Path, name: str, limit: int, space: FreeSpace | None
) -> StoredUpload:
    token = secrets.token_hex(6)
    temporary = incoming / f".upload-{token}.part"
    digest = hashlib.sha256()
    size = 0
    try:
        with temporary.open("wb") as file:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise UploadTooLargeError(f"the file is more than the {limit} bytes allowed")
                if space is not None and size > space.room_bytes:
                    raise NoRoomError(
                        space, f"and the file passed {size} bytes, which would take it below that"
                    )
                digest.update(chunk)
                # Chunks are small and land in the page cache; the event loop is not held up noticeably.
                file.write(chunk)
        stored = f"upload-{token}-{name}"
        os.replace(temporary, incoming / stored)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return StoredUpload(stored, digest.hexdigest(), size)
