"""The running hub takes dispatch files end to end: drop folder or upload -> intake -> bus -> loads -> API.

A GBK CIM/E file with Chinese names (declared, and undeclared so its encoding is detected) comes back from
the API as canonical profiles whose names are intact, with points converted from MW to kW and peaks taken
over good points only.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from adapters.dispatch.cime import CimeRow, iter_cime
from ground.settings import DISPATCH_DROPFOLDER, DispatchSettings, Settings, SourceSettings
from simulators.dispatch.equipment import Equipment, EquipmentKind, LoadClass
from simulators.dispatch.faults import Fault
from simulators.dispatch.files import power_curve_bytes, readings
from simulators.dispatch.writer import DispatchWriter
from store.database import create_engine
from store.loads import load_measurements
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer
from yekuo.hub import Hub

DAY = date(2026, 1, 14)
FEEDERS = [
    Equipment("XL000101", "10kV白河Ⅰ线", EquipmentKind.FEEDER, 7560.0, LoadClass.RESIDENTIAL),
    Equipment("XL000102", "10kV卧龙岗商业2线", EquipmentKind.FEEDER, 6000.0, LoadClass.COMMERCIAL),
    Equipment("XL000201", "10kV独山工业园3线", EquipmentKind.FEEDER, 7560.0, LoadClass.INDUSTRIAL),
]


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Hub, Path, TestClient]]:
    drop_dir = tmp_path / "dispatch"
    # The API reads the drop folder from the environment, as `yekuo run` does.
    monkeypatch.setenv("YEKUO_DISPATCH__DROP_DIR", str(drop_dir))
    dispatch = DispatchSettings(drop_dir=drop_dir, stable_s=0.2, scan_interval_s=0.1)
    settings = Settings(
        bus_url=f"memory://{uuid.uuid4()}",
        db_url=f"sqlite:///{tmp_path}/hub.db",
        sources=[SourceSettings(name="dispatch", kind=DISPATCH_DROPFOLDER, settings=dispatch.model_dump())],
    )
    engine = create_engine(settings.db_url)
    hub = Hub(settings, engine=engine)
    hub.start()
    try:
        app = hub_app(engine, auth=TEST_AUTH)
        yield hub, drop_dir, TestClient(app, headers=bearer("viewer", "integrator"))
    finally:
        hub.stop()
        engine.dispose()


def _profiles(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get("/v1/load-profiles", params={"limit": 500, **params}).json()[
        "items"
    ]
    return items


def _good_peak_kw(row: CimeRow) -> float:
    return max(
        float(row.values[f"P{n}"] or 0) * 1000
        for n in range(1, 97)
        if row.values[f"P{n}"] is not None and row.values[f"Q{n}"] == "0"
    )


def test_gbk_cime_files_come_back_from_the_api_with_their_chinese_names(
    running: tuple[Hub, Path, TestClient],
) -> None:
    hub, drop_dir, client = running
    writer = DispatchWriter(drop_dir / "incoming", FEEDERS, seed=8)
    day_files = writer.write_day(DAY)
    undeclared = writer.write_fault(Fault.UNDECLARED_ENCODING, date(2026, 1, 15))
    _wait(lambda: len(_profiles(client, source="dispatch")) == 6, "the dispatch profiles")
    _wait(lambda: hub.status().pending == 0, "the outbox to drain")
    assert hub.health["intake:dispatch"].ok
    assert [item.outcome for item in [*day_files, undeclared]] == ["published"] * 3

    by_key = {
        (item["equipment_id"], item["data_date"]): item for item in _profiles(client, source="dispatch")
    }
    [declared_file] = (drop_dir / "done").glob("*_dispatch_loadcurve_20260114.cime")
    assert b"Code=GBK" in declared_file.read_bytes().split(b"\n")[0]
    with declared_file.open("rb") as file:
        rows = [item for item in iter_cime(file, source_name=declared_file.name) if isinstance(item, CimeRow)]
    assert len(rows) == 3
    for row in rows:
        profile = by_key[(row.values["mRID"], "2026-01-14")]
        assert profile["equipment_name"] == row.values["name"]
        assert profile["peak_kw"] == pytest.approx(_good_peak_kw(row))
        assert profile["points"][0]["load_kw"] == pytest.approx(float(row.values["P1"] or 0) * 1000)
        assert profile["good_points"] == sum(row.values[f"Q{n}"] == "0" for n in range(1, 97))
    detected = {by_key[(item.equipment_id, "2026-01-15")]["equipment_name"] for item in FEEDERS}
    assert detected == {"10kV白河Ⅰ线", "10kV卧龙岗商业2线", "10kV独山工业园3线"}
    with hub.engine.connect() as conn:
        snapshot = conn.execute(sa.select(load_measurements.c.equipment_id)).scalars().all()
    assert sorted(snapshot) == ["XL000101", "XL000102", "XL000201"]


def test_an_uploaded_file_goes_through_the_same_pipeline(running: tuple[Hub, Path, TestClient]) -> None:
    _, _, client = running
    transformer = Equipment(
        "PB0000009", "建设路9号公变", EquipmentKind.TRANSFORMER, 360.0, LoadClass.RESIDENTIAL
    )
    data = power_curve_bytes(readings([transformer], DAY, random.Random(1)))
    response = client.post(
        "/v1/dispatch/files", params={"name": "metering_power_curve_20260114.csv"}, content=data
    )
    assert response.status_code == 202
    status_url = response.json()["status_url"]
    _wait(lambda: client.get(status_url).status_code == 200, "the intake to finish the upload")
    [outcome] = client.get(status_url).json()["outcomes"]
    assert (outcome["outcome"], outcome["events"]) == ("published", 1)
    _wait(lambda: len(_profiles(client, equipment="PB0000009")) == 1, "the uploaded profile")
    [profile] = _profiles(client, equipment="PB0000009")
    assert profile["source"] == "metering" and profile["data_date"] == "2026-01-14"
