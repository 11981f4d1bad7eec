"""Load API: daily load profiles with filters and cursor pagination, and the dispatch file upload.

POST /v1/dispatch/files?name=<file name> takes the raw file as the request body (any content type) and
drops it into the intake's incoming/ folder (adapters/dispatch/upload.py), so an upload goes through the
same pipeline as a file put there by a producer: same claim, duplicate check, streaming, invalid channel
and error/ folder. Refused, with nothing left in incoming/:
- a name that is not a plain file name (400);
- a body larger than the intake's max_file_bytes (413): by its Content-Length before anything is read, or
  while it streams, as soon as the bytes received pass the limit;
- any file while the drop folder's disk has less free than its floor, or a body that would take it below
  (507, naming the free space and the floor); files already in incoming/ wait there meanwhile.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field

from adapters.dispatch.dropfolder import TEMPORARY_SUFFIXES
from adapters.dispatch.upload import DropFolderUploads, NoRoomError, UploadTooLargeError
from api.context import Context, Database
from api.listing import LIST_PROBLEMS, CursorParam, Page, check_sort, limit_param, page, sort_param
from api.listing import decode_cursor as decode_cursor_of
from api.listing import encode_cursor as encode_cursor_of
from api.problems import ProblemError, problem_responses
from api.problems import problem as problem_error
from canonical_model.common import SourceRef
from canonical_model.load import LoadPhase, LoadPoint, LoadSource
from store.loads import ProfileFilter, ProfileKey, file_history, list_profiles, published_file

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_NAME_BYTES = 200
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
EXAMPLE_SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


LISTING = "load-profiles"
SORTS = ("date",)  # (date, equipment, phase, source) is the key the profile store pages by


def encode_cursor(key: ProfileKey) -> str:
    """An opaque cursor for the position after a profile."""
    return encode_cursor_of(LISTING, [key[0].isoformat(), *key[1:]])


def decode_cursor(cursor: str) -> ProfileKey:
    """The position a cursor stands for; 400 invalid-cursor when this listing did not make it."""
    day, equipment_id, phase, source = decode_cursor_of(LISTING, cursor, 4)
    try:
        key = (date.fromisoformat(day), equipment_id, phase, source)
    except (TypeError, ValueError):
        key = None
    if key is None or not all(isinstance(part, str) for part in key[1:]):
        raise problem_error("invalid-cursor", f"cursor {cursor[:80]!r} is not a cursor of this listing")
    return key


def check_file_name(name: str) -> str:
    """The name if it is a plain file name the drop folder may hold; 400 invalid-file-name if not."""
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
        raise problem_error(
            "invalid-file-name", f"file name {name[:100]!r} {problem}; give a plain file name like loads.csv"
        )
    return name


class LoadProfileView(BaseModel):
    """A daily load profile (load.v1) with its peak and the number of usable points."""

    equipment_id: str = Field(description="PMS equipment id: feeder or transformer (设备ID)")
    equipment_name: str | None = Field(default=None, description="equipment name in the source (设备名称)")
    data_date: date = Field(description="the day the points cover, Asia/Shanghai (数据日期)")
    phase: LoadPhase = Field(default=LoadPhase.TOTAL, description="total or per-phase active power")
    source: LoadSource = Field(description="the measuring system: dispatch automation or metering")
    points: list[LoadPoint] = Field(description="points[n] covers minutes 15n to 15(n+1) of the day")
    source_refs: list[SourceRef] = Field(default=[], description="legacy records this came from")
    peak_kw: float | None = Field(description="the highest usable point; null when none is usable")
    good_points: int = Field(description="how many points are usable (present and not flagged)")


class LoadProfilePage(Page[LoadProfileView]):
    """One page of daily load profiles."""


class DispatchFileAccepted(BaseModel):
    """A file taken into the drop folder; the intake reads it in the background."""

    file_name: str = Field(
        description="name the file is stored under", examples=["upload-3f9a1c2b4d5e-a.csv"]
    )
    sha256: str = Field(description="SHA-256 of the content", examples=[EXAMPLE_SHA256])
    size_bytes: int = Field(description="size of the content", examples=[1024])
    status_url: str = Field(
        description="where to follow it", examples=[f"/v1/dispatch/files/{EXAMPLE_SHA256}"]
    )
    duplicate_of: str | None = Field(description="the file already published with this content, if any")


class PublishedDispatchFile(BaseModel):
    """The file whose content the intake published."""

    sha256: str = Field(description="SHA-256 of the content")
    file_name: str = Field(description="name the file arrived under")
    stored_name: str = Field(description="name in the drop folder's done/")
    format: str = Field(description="cime or csv")
    size_bytes: int = Field(description="size of the content")
    worker: str = Field(description="host:pid of the hub process that published it")
    published_at: AwareDatetime = Field(description="when it was published")


class DispatchFileOutcome(BaseModel):
    """What the intake did with one file of this content."""

    id: int = Field(description="id of the outcome")
    sha256: str | None = Field(description="SHA-256 of the content")
    file_name: str = Field(description="name the file arrived under")
    stored_name: str = Field(description="name in the drop folder")
    outcome: str = Field(description="published, duplicate or error")
    reason: str | None = Field(description="why it was an error or a duplicate")
    size_bytes: int = Field(description="size of the content")
    rows: int = Field(description="data rows read, broken ones included")
    events: int = Field(description="events published")
    invalid: int = Field(description="rows parked on the invalid channel")
    skipped: int = Field(description="rows of record types without a route")
    encoding: str | None = Field(description="UTF-8, GBK, GB18030 or ASCII; null when not read")
    encoding_source: str | None = Field(description="declared, bom or detected")
    encoding_declared: str | None = Field(description="the Code= the file declared")
    worker: str = Field(description="host:pid of the hub process that finished it")
    finished_at: AwareDatetime = Field(description="when the intake finished it")


class DispatchFileStatus(BaseModel):
    """What the intake did with a file content."""

    sha256: str = Field(description="SHA-256 of the content")
    published: PublishedDispatchFile | None = Field(description="the published file; null when none was")
    outcomes: list[DispatchFileOutcome] = Field(description="every finished file of this content, in order")


router = APIRouter()


def dispatch_uploads(context: Context) -> DropFolderUploads:
    """Where uploaded dispatch files go; 503 dispatch-not-configured without a drop folder."""
    if context.dispatch_uploads is None:
        raise problem_error(
            "dispatch-not-configured",
            "the dispatch intake is not configured "
            "(set YEKUO_DISPATCH__DROP_DIR or declare a dispatch_dropfolder source)",
        )
    return context.dispatch_uploads


@router.get(
    "/v1/load-profiles",
    tags=["loads"],
    summary="Daily load profiles, filtered and paged",
    responses={200: {"model": LoadProfilePage}, **LIST_PROBLEMS},
)
def read_profiles(
    engine: Database,
    equipment: Annotated[str | None, Query(max_length=64, description="PMS equipment id")] = None,
    date_from: Annotated[date | None, Query(description="first day, inclusive")] = None,
    date_to: Annotated[date | None, Query(description="last day, inclusive")] = None,
    source: Annotated[LoadSource | None, Query(description="measuring system")] = None,
    phase: Annotated[LoadPhase | None, Query(description="total or one phase")] = None,
    limit: Annotated[int, limit_param(DEFAULT_LIMIT, MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    sort: Annotated[str | None, sort_param(SORTS)] = None,
) -> dict[str, Any]:
    check_sort(sort, SORTS)
    if date_from is not None and date_to is not None and date_from > date_to:
        raise problem_error("invalid-parameter", f"date_from {date_from} is after date_to {date_to}")
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
    return page(items, limit, encode_cursor(following) if following else None)


@router.post(
    "/v1/dispatch/files",
    tags=["loads"],
    summary="Upload a CIM/E or curve CSV file into the dispatch intake",
    status_code=202,
    responses={
        202: {"model": DispatchFileAccepted},
        **problem_responses(
            "invalid-file-name", "payload-too-large", "dispatch-not-configured", "insufficient-storage"
        ),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload_file(
    request: Request,
    name: Annotated[str, Query(description="file name, e.g. metering_power_curve_20261120.csv")],
    context: Context,
) -> JSONResponse:
    check_file_name(name)
    uploads = dispatch_uploads(context)
    engine = context.engine
    header = request.headers.get("content-length")
    declared = int(header) if header is not None and header.isdigit() else None
    try:
        upload = await uploads.store(request.stream(), name, declared)
    except UploadTooLargeError as exc:
        raise problem_error("payload-too-large", str(exc)) from exc
    except NoRoomError as exc:
        raise _no_room(exc, name) from exc
    digest = upload.sha256
    with engine.connect() as conn:
        earlier = published_file(conn, digest)
    body = {
        "file_name": upload.stored_name,
        "sha256": digest,
        "size_bytes": upload.size_bytes,
        "status_url": f"/v1/dispatch/files/{digest}",
        "duplicate_of": earlier["file_name"] if earlier else None,
    }
    return JSONResponse(body, status_code=202)


@router.get(
    "/v1/dispatch/files/{sha256}",
    tags=["loads"],
    summary="What the intake did with a file, by the SHA-256 of its content",
    responses={
        200: {"model": DispatchFileStatus},
        **problem_responses("invalid-parameter", "dispatch-file-not-found"),
    },
)
def read_file_status(sha256: str, engine: Database) -> dict[str, Any]:
    if not _SHA256.match(sha256):
        raise problem_error("invalid-parameter", f"{sha256[:80]!r} is not a lower-case hex SHA-256")
    with engine.connect() as conn:
        published = published_file(conn, sha256)
        history = file_history(conn, sha256)
    if published is None and not history:
        raise problem_error(
            "dispatch-file-not-found",
            f"no file with content {sha256} has been finished by the intake yet",
        )
    return {"sha256": sha256, "published": published, "outcomes": history}


def _no_room(refusal: NoRoomError, name: str) -> ProblemError:
    """507 insufficient-storage for a file the drop folder's disk cannot take now."""
    space = refusal.space
    log.warning("refused the upload of %s: the drop folder's disk has %s", name, space.describe())
    return problem_error(
        "insufficient-storage",
        f"{refusal}; try again once space is freed",
        free_bytes=space.free_bytes,
        min_free_bytes=space.floor_bytes,
    )
