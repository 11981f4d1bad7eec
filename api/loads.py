"""Load API: daily load profiles with filters and cursor pagination, and the dispatch file upload.

POST /v1/dispatch/files?name=<file name> takes the raw file as the request body (any content type) and
drops it into the intake's incoming/ folder, so an upload goes through the same pipeline as a file put
there by a producer: same claim, duplicate check, streaming, invalid channel and error/ folder. The body
is streamed to a hidden temporary file and renamed into place once complete; bodies larger than the
intake's max_file_bytes are refused (413), as are names that are not a plain file name (400).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import secrets
import unicodedata
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from adapters.dispatch.dropfolder import TEMPORARY_SUFFIXES, DropFolder
from canonical_model.load import LoadPhase, LoadSource
from store.loads import ProfileFilter, ProfileKey, file_history, list_profiles, published_file
from yekuo.settings import Settings

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_NAME_BYTES = 200
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def encode_cursor(key: ProfileKey) -> str:
    """An opaque cursor for the position after a profile."""
    raw = json.dumps([key[0].isoformat(), *key[1:]], ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> ProfileKey:
    """The position a cursor stands for; HTTP 400 when it was not made by encode_cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        day, equipment_id, phase, source = json.loads(raw)
        key = (date.fromisoformat(day), equipment_id, phase, source)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise HTTPException(400, f"cursor {cursor!r} is not a cursor this API returned") from exc
    if not all(isinstance(part, str) for part in key[1:]):
        raise HTTPException(400, f"cursor {cursor!r} is not a cursor this API returned")
    return key


def check_file_name(name: str) -> str:
    """The name if it is a plain file name the drop folder may hold; HTTP 400 naming the problem if not."""
    problem = None
    if not name or name in (".", ".."):
        problem = "is empty or a directory reference"
    elif "/" in name or "\\" in name:
        problem = "contains a path separator"
    elif any(unicodedata.category(char).startswith("C") for char in name):
        problem = "contains a control character"
    elif name.startswith("."):
        problem = "starts with '.' (hidden files are not taken)"
    elif name.lower().endswith(TEMPORARY_SUFFIXES):
        problem = f"ends in a temporary suffix ({', '.join(TEMPORARY_SUFFIXES)}) that the intake never takes"
    elif len(name.encode("utf-8")) > MAX_NAME_BYTES:
        problem = f"is longer than {MAX_NAME_BYTES} bytes"
    if problem is not None:
        raise HTTPException(400, f"file name {name!r} {problem}; give a plain file name like loads.csv")
    return name


def loads_router(engine: Engine, *, settings: Settings | None = None) -> APIRouter:
    """The /v1/load-profiles and /v1/dispatch/files routes over the given database.

    settings gives the dispatch drop folder and size limit (default: read from the environment); without a
    configured drop folder the upload answers 503.
    """
    router = APIRouter()
    dispatch = (settings or Settings()).dispatch

    @router.get("/v1/load-profiles", tags=["loads"], summary="Daily load profiles, filtered and paged")
    def read_profiles(
        equipment: Annotated[str | None, Query(description="PMS equipment id")] = None,
        date_from: Annotated[date | None, Query(description="first day, inclusive")] = None,
        date_to: Annotated[date | None, Query(description="last day, inclusive")] = None,
        source: Annotated[LoadSource | None, Query(description="measuring system")] = None,
        phase: Annotated[LoadPhase | None, Query(description="total or one phase")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    ) -> dict[str, Any]:
        if date_from is not None and date_to is not None and date_from > date_to:
            raise HTTPException(400, f"date_from {date_from} is after date_to {date_to}")
        where = ProfileFilter(
            equipment_id=equipment,
            date_from=date_from,
            date_to=date_to,
            source=source.value if source else None,
            phase=phase.value if phase else None,
        )
        after = decode_cursor(cursor) if cursor else None
        with engine.connect() as conn:
            items, following = list_profiles(conn, where, limit=limit, after=after)
        next_cursor = encode_cursor(following) if following else None
        return {"items": items, "limit": limit, "next_cursor": next_cursor}

    @router.post(
        "/v1/dispatch/files",
        tags=["loads"],
        summary="Upload a CIM/E or curve CSV file into the dispatch intake",
        status_code=202,
    )
    async def upload_file(
        request: Request,
        name: Annotated[str, Query(description="file name, e.g. metering_power_curve_20261120.csv")],
    ) -> JSONResponse:
        check_file_name(name)
        if dispatch is None:
            raise HTTPException(503, "the dispatch intake is not configured (YEKUO_DISPATCH__DROP_DIR)")
        limit = dispatch.max_file_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, f"the file is {declared} bytes, more than the {limit} bytes allowed")
        incoming = DropFolder(dispatch.drop_dir, stable_s=dispatch.stable_s).incoming
        stored, digest, size = await _receive(request, incoming, name, limit)
        with engine.connect() as conn:
            earlier = published_file(conn, digest)
        body = {
            "file_name": stored,
            "sha256": digest,
            "size_bytes": size,
            "status_url": f"/v1/dispatch/files/{digest}",
            "duplicate_of": earlier["file_name"] if earlier else None,
        }
        return JSONResponse(body, status_code=202)

    @router.get(
        "/v1/dispatch/files/{sha256}",
        tags=["loads"],
        summary="What the intake did with a file, by the SHA-256 of its content",
    )
    def read_file_status(sha256: str) -> dict[str, Any]:
        if not _SHA256.match(sha256):
            raise HTTPException(400, f"{sha256!r} is not a lower-case hex SHA-256")
        with engine.connect() as conn:
            published = published_file(conn, sha256)
            history = file_history(conn, sha256)
        if published is None and not history:
            raise HTTPException(404, f"no file with content {sha256} has been finished by the intake yet")
        return {"sha256": sha256, "published": published, "outcomes": history}

    return router


async def _receive(request: Request, incoming: Path, name: str, limit: int) -> tuple[str, str, int]:
    """Stream the body into incoming/ under a unique name; return it, the content hash and the size."""
    token = secrets.token_hex(6)
    temporary = incoming / f".upload-{token}.part"
    digest = hashlib.sha256()
    size = 0
    try:
        with temporary.open("wb") as file:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"the file is more than the {limit} bytes allowed")
                digest.update(chunk)
                # Chunks are small and land in the page cache; the event loop is not held up noticeably.
                file.write(chunk)
        stored = f"upload-{token}-{name}"
        os.replace(temporary, incoming / stored)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return stored, digest.hexdigest(), size
