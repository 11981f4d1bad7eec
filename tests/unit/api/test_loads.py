"""The load API: profiles filtered and paged, and uploads that feed the dispatch intake safely."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from adapters.dispatch.curves_csv import POINT_COLUMNS
from adapters.dispatch.dropfolder import DropFolder
from adapters.dispatch.intake import DispatchFeed, DispatchFile
from adapters.dispatch.upload import DropFolderUploads
from api.context import ApiContext, install_context
from api.loads import router as loads_router
from api.problems import PROBLEM_CONTENT_TYPE, install_problem_handlers
from canonical_model.envelope import CloudEvent
from canonical_model.events import LOAD_PROFILE_RECORDED
from canonical_model.registry import schema_uri
from ground.settings import PROJECT_ROOT, DispatchSettings, Settings
from pipeline.config import load_hub_config
from pipeline.decoded import DecodedEvent
from pipeline.files import FileIngestor
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer
from workflow.loads import handle_load_event

GIB = 1024**3


class Usage(NamedTuple):
    total: int
    used: int
    free: int


class FakeDisk:
    """The drop folder's file system as disk_usage reports it; a test fills and frees it."""

    def __init__(self, free: int, total: int = 100 * GIB) -> None:
        self.free = free
        self.total = total

    def __call__(self, path: Path) -> Usage:
        return Usage(self.total, self.total - self.free, self.free)


def app_for(engine: Engine, settings: Settings | None, disk: FakeDisk | None = None) -> FastAPI:
    app = FastAPI()
    dispatch = (settings or Settings(dispatch=None)).dispatch
    uploads = DropFolderUploads(dispatch, disk_usage=disk or FakeDisk(free=50 * GIB)) if dispatch else None
    install_context(app, ApiContext(engine, dispatch_uploads=uploads))
    app.include_router(loads_router)
    install_problem_handlers(app)
    return app


def client_for(engine: Engine, settings: Settings | None, disk: FakeDisk | None = None) -> TestClient:
    return TestClient(app_for(engine, settings, disk))


def post_in_chunks(app: FastAPI, name: str, chunks: Iterator[bytes]) -> tuple[int, dict[str, Any]]:
    """POST a body without Content-Length to the ASGI app, handing over one chunk per receive as a server
    does, so the test sees how much of the body the endpoint read (the test client reads it all first)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        chunk = next(chunks, None)
        return {"type": "http.request", "body": chunk or b"", "more_body": chunk is not None}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/dispatch/files",
        "raw_path": b"/v1/dispatch/files",
        "query_string": urlencode({"name": name}).encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"transfer-encoding", b"chunked")],
        "client": ("testclient", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


@pytest.fixture
def drop_dir(tmp_path: Path) -> Path:
    return tmp_path / "drop"


@pytest.fixture
def client(sqlite_engine: Engine, drop_dir: Path) -> TestClient:
    dispatch = DispatchSettings(drop_dir=drop_dir, stable_s=0.0, max_file_bytes=20_000)
    return client_for(sqlite_engine, Settings(dispatch=dispatch))


def curves(*equipment: str) -> bytes:
    header = "ID,DATA_DATE,DATA_TYPE," + ",".join(POINT_COLUMNS)
    rows = [",".join([item, "2026-11-20", "1", *(["10.5"] * 96)]) for item in equipment]
    return ("\n".join([header, *rows]) + "\n").encode()


def test_an_upload_lands_in_incoming_under_a_unique_name(client: TestClient, drop_dir: Path) -> None:
    data = curves("PB0000001")
    response = client.post("/v1/dispatch/files", params={"name": "负荷曲线.csv"}, content=data)
    assert response.status_code == 202
    body = response.json()
    assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["size_bytes"] == len(data)
    assert body["status_url"] == f"/v1/dispatch/files/{body['sha256']}" and body["duplicate_of"] is None
    assert body["file_name"].startswith("upload-") and body["file_name"].endswith("-负荷曲线.csv")
    assert os.listdir(drop_dir / "incoming") == [body["file_name"]]
    assert (drop_dir / "incoming" / body["file_name"]).read_bytes() == data


@pytest.mark.parametrize(
    "name",
    [
        "../escape.csv",
        "../../etc/passwd",
        "a/b.csv",
        "..\\win.csv",
        "..",
        ".",
        "",
        ".hidden.csv",
        "x.csv.part",
        "x.tmp",
        "bad\x00name.csv",
        "line\nbreak.csv",
        "x" * 201 + ".csv",
    ],
)
def test_names_that_are_not_plain_file_names_are_refused(
    client: TestClient, drop_dir: Path, name: str
) -> None:
    response = client.post("/v1/dispatch/files", params={"name": name}, content=b"ID\n")
    assert response.status_code == 400
    assert "file name" in response.json()["detail"]
    incoming = drop_dir / "incoming"
    assert not incoming.exists() or os.listdir(incoming) == []
    assert not (drop_dir.parent / "escape.csv").exists()


def test_an_oversized_body_is_refused_by_its_length(client: TestClient, drop_dir: Path) -> None:
    response = client.post("/v1/dispatch/files", params={"name": "big.csv"}, content=b"x" * 20_001)
    assert response.status_code == 413 and "20000 bytes allowed" in response.json()["detail"]
    assert not (drop_dir / "incoming").exists() or os.listdir(drop_dir / "incoming") == []


def test_an_oversized_streamed_body_is_refused_and_leaves_nothing(client: TestClient, drop_dir: Path) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(30):
            yield b"y" * 1000

    response = client.post("/v1/dispatch/files", params={"name": "big.csv"}, content=chunks())
    assert response.status_code == 413
    assert os.listdir(drop_dir / "incoming") == []


def test_without_a_drop_folder_the_upload_is_unavailable(sqlite_engine: Engine) -> None:
    response = client_for(sqlite_engine, None).post(
        "/v1/dispatch/files", params={"name": "a.csv"}, content=b"x"
    )
    assert response.status_code == 503 and "YEKUO_DISPATCH__DROP_DIR" in response.json()["detail"]


def test_an_upload_goes_through_the_intake_and_its_status_can_be_read(
    client: TestClient, sqlite_engine: Engine, drop_dir: Path
) -> None:
    data = curves("PB0000001", "PB0000002")
    digest = client.post("/v1/dispatch/files", params={"name": "a.csv"}, content=data).json()["sha256"]
    assert client.get(f"/v1/dispatch/files/{digest}").status_code == 404
    intake = FileIngestor(
        sqlite_engine,
        load_hub_config(PROJECT_ROOT).router,
        DispatchFeed(DropFolder(drop_dir, stable_s=0.0), scan_interval_s=1e-9),
    )
    while intake.step() or intake.step():
        pass
    status = client.get(f"/v1/dispatch/files/{digest}").json()
    assert status["published"]["file_name"].endswith("-a.csv")
    [outcome] = status["outcomes"]
    assert (outcome["outcome"], outcome["events"], outcome["invalid"]) == ("published", 2, 0)
    again = client.post("/v1/dispatch/files", params={"name": "a-again.csv"}, content=data).json()
    assert again["duplicate_of"] == status["published"]["file_name"]
    while intake.step() or intake.step():
        pass
    outcomes = client.get(f"/v1/dispatch/files/{digest}").json()["outcomes"]
    assert [item["outcome"] for item in outcomes] == ["published", "duplicate"]
    not_a_hash = client.get("/v1/dispatch/files/NOT-A-HASH")
    assert not_a_hash.status_code == 422 and "SHA-256" in not_a_hash.json()["detail"]


def run_intake(intake: FileIngestor[DispatchFile]) -> None:
    while intake.step() or intake.step():
        pass


def intake_for(engine: Engine, dispatch: DispatchSettings, disk: FakeDisk) -> FileIngestor[DispatchFile]:
    """The intake the hub would run over this drop folder, seeing the same (fake) disk as the API."""
    feed = DispatchFeed(
        DropFolder.from_settings(dispatch, disk_usage=disk),
        max_file_bytes=dispatch.max_file_bytes,
        scan_interval_s=1e-9,
    )
    return FileIngestor(engine, load_hub_config(PROJECT_ROOT).router, feed)


def test_an_upload_over_the_limit_gets_413_mid_stream_while_one_under_it_is_taken(
    sqlite_engine: Engine, drop_dir: Path
) -> None:
    dispatch = DispatchSettings(drop_dir=drop_dir, stable_s=0.0, max_file_bytes=20_000)
    disk = FakeDisk(free=50 * GIB)
    app = app_for(sqlite_engine, Settings(dispatch=dispatch), disk)
    client = TestClient(app)
    sent: list[int] = []

    def endless_upload() -> Iterator[bytes]:
        for index in range(1000):
            sent.append(index)
            yield b"y" * 1000

    status, problem = post_in_chunks(app, "huge.csv", endless_upload())
    assert status == 413 and problem["code"] == "payload-too-large"
    assert "20000 bytes allowed" in problem["detail"]
    assert len(sent) == 21, "reading stops at the first chunk past the limit"
    assert os.listdir(drop_dir / "incoming") == [], "no partial file is left behind"
    declared = client.post("/v1/dispatch/files", params={"name": "huge.csv"}, content=b"y" * 20_001)
    assert declared.status_code == 413 and declared.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert os.listdir(drop_dir / "incoming") == []

    # A file put straight into incoming/ over the limit still goes to error/ with its reason.
    dropped = curves("PB0000009") * 30
    assert len(dropped) > 20_000
    (drop_dir / "incoming" / "dropped-huge.csv").write_bytes(dropped)
    good = curves("PB0000001")
    accepted = client.post("/v1/dispatch/files", params={"name": "good.csv"}, content=good)
    assert accepted.status_code == 202
    run_intake(intake_for(sqlite_engine, dispatch, disk))
    [outcome] = client.get(accepted.json()["status_url"]).json()["outcomes"]
    assert (outcome["outcome"], outcome["events"]) == ("published", 1)
    assert [name.endswith("-good.csv") for name in os.listdir(drop_dir / "done")] == [True]
    [reason] = [name for name in os.listdir(drop_dir / "error") if name.endswith(".reason")]
    assert reason.endswith("_dropped-huge.csv.reason")
    assert "more than the 20000 bytes allowed" in (drop_dir / "error" / reason).read_text(encoding="utf-8")
    assert os.listdir(drop_dir / "incoming") == []


def test_a_full_disk_refuses_uploads_with_507_and_files_in_incoming_wait_until_space_is_back(
    sqlite_engine: Engine, drop_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.dispatch.dropfolder")
    dispatch = DispatchSettings(drop_dir=drop_dir, stable_s=0.0, min_free_bytes=GIB)
    disk = FakeDisk(free=5 * GIB)
    client = client_for(sqlite_engine, Settings(dispatch=dispatch), disk)
    intake = intake_for(sqlite_engine, dispatch, disk)
    waiting = client.post("/v1/dispatch/files", params={"name": "first.csv"}, content=curves("PB0000001"))
    assert waiting.status_code == 202

    disk.free = GIB - 1
    refused = client.post("/v1/dispatch/files", params={"name": "second.csv"}, content=curves("PB0000002"))
    assert refused.status_code == 507 and refused.headers["content-type"] == PROBLEM_CONTENT_TYPE
    problem = refused.json()
    assert problem["code"] == "insufficient-storage"
    assert (problem["free_bytes"], problem["min_free_bytes"]) == (GIB - 1, GIB)
    assert f"{GIB - 1} bytes" in problem["detail"] and f"at least {GIB} bytes" in problem["detail"]
    run_intake(intake)
    assert os.listdir(drop_dir / "incoming") == [waiting.json()["file_name"]], "it waits, nothing is lost"
    assert os.listdir(drop_dir / "error") == [] and os.listdir(drop_dir / "done") == []
    assert client.get(waiting.json()["status_url"]).status_code == 404
    warnings = [record for record in caplog.records if record.name == "adapters.dispatch.dropfolder"]
    assert len(warnings) == 1 and "1 file(s) wait in incoming/" in warnings[0].getMessage()

    disk.free = 5 * GIB
    again = client.post("/v1/dispatch/files", params={"name": "second.csv"}, content=curves("PB0000002"))
    assert again.status_code == 202
    run_intake(intake)
    assert os.listdir(drop_dir / "incoming") == []
    for accepted in (waiting, again):
        [outcome] = client.get(accepted.json()["status_url"]).json()["outcomes"]
        assert (outcome["outcome"], outcome["events"]) == ("published", 1)
    assert any("has space again" in record.getMessage() for record in caplog.records)


def test_an_upload_that_would_take_the_disk_below_its_floor_is_refused_and_a_smaller_one_fits(
    sqlite_engine: Engine, drop_dir: Path
) -> None:
    dispatch = DispatchSettings(drop_dir=drop_dir, stable_s=0.0, min_free_bytes=0, min_free_percent=10.0)
    disk = FakeDisk(free=10_000 + 5_000, total=100_000)  # the floor is 10 % of the disk: room for 5,000 bytes
    client = client_for(sqlite_engine, Settings(dispatch=dispatch), disk)
    declared = client.post("/v1/dispatch/files", params={"name": "big.csv"}, content=b"x" * 5_001)
    assert declared.status_code == 507 and "5001 bytes would take it below" in declared.json()["detail"]
    assert declared.json()["min_free_bytes"] == 10_000

    def streamed() -> Iterator[bytes]:
        for _ in range(6):
            yield b"x" * 1_000

    unknown_length = client.post("/v1/dispatch/files", params={"name": "big.csv"}, content=streamed())
    assert unknown_length.status_code == 507 and "passed 6000 bytes" in unknown_length.json()["detail"]
    assert os.listdir(drop_dir / "incoming") == []
    fits = client.post("/v1/dispatch/files", params={"name": "small.csv"}, content=b"x" * 5_000)
    assert fits.status_code == 202
    assert os.listdir(drop_dir / "incoming") == [fits.json()["file_name"]]


def _profile_event(equipment: str, day: str, source: str = "dispatch") -> CloudEvent:
    data: dict[str, Any] = {
        "equipment_id": equipment,
        "equipment_name": f"{equipment}线",
        "data_date": day,
        "source": source,
        "points": [{"load_kw": float(n), "quality": 0} for n in range(96)],
    }
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=f"/dispatch/{source}",
        type=LOAD_PROFILE_RECORDED,
        subject=equipment,
        time=datetime.now(UTC),
        dataschema=schema_uri("load_profile.v1"),
        correlationid="c",
        sequence=1,
        data=data,
    )


def test_profiles_are_filtered_and_paged_with_a_cursor(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        for day in ("2026-11-19", "2026-11-20", "2026-11-21"):
            for equipment in ("XL000001", "XL000002", "PB0000001"):
                handle_load_event(conn, DecodedEvent(_profile_event(equipment, day)))
        handle_load_event(conn, DecodedEvent(_profile_event("XL000001", "2026-11-20", source="metering")))
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH), headers=bearer("viewer"))
    seen = []
    cursor = None
    while True:
        params: dict[str, Any] = {"date_from": "2026-11-20", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/load-profiles", params=params).json()
        seen += [(item["data_date"], item["equipment_id"], item["source"]) for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [
        ("2026-11-20", "PB0000001", "dispatch"),
        ("2026-11-20", "XL000001", "dispatch"),
        ("2026-11-20", "XL000001", "metering"),
        ("2026-11-20", "XL000002", "dispatch"),
        ("2026-11-21", "PB0000001", "dispatch"),
        ("2026-11-21", "XL000001", "dispatch"),
        ("2026-11-21", "XL000002", "dispatch"),
    ]
    one = client.get("/v1/load-profiles", params={"equipment": "XL000001", "source": "metering"}).json()
    [item] = one["items"]
    assert item["peak_kw"] == 95.0 and item["good_points"] == 96 and len(item["points"]) == 96
    ranged = client.get(
        "/v1/load-profiles", params={"date_from": "2026-11-19", "date_to": "2026-11-19"}
    ).json()
    assert {item["data_date"] for item in ranged["items"]} == {"2026-11-19"} and len(ranged["items"]) == 3


def test_bad_listing_parameters_are_refused(sqlite_engine: Engine) -> None:
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH), headers=bearer("viewer"))
    assert client.get("/v1/load-profiles", params={"cursor": "not-a-cursor"}).status_code == 400
    backwards = client.get("/v1/load-profiles", params={"date_from": "2026-11-21", "date_to": "2026-11-20"})
    assert backwards.status_code == 422 and backwards.json()["code"] == "invalid-parameter"
    assert client.get("/v1/load-profiles", params={"source": "scada"}).status_code == 422
    assert client.get("/v1/load-profiles", params={"limit": 0}).status_code == 422
