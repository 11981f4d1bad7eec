"""The grid API: listings with feeder, substation and bounding-box filters, cursor pages, single items."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.context import ApiContext, install_context
from api.grid import MAX_LIMIT, OpenCapacityReader, encode_cursor
from api.grid import router as grid_router
from canonical_model.envelope import CloudEvent
from canonical_model.grid import SupplyAreaClass
from canonical_model.registry import schema_uri
from feasibility.config import load_feasibility_config
from ground import clock
from ground.clock import FixedClock
from pipeline.decoded import DecodedEvent
from store.feasibility import capacity_reservations
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer
from tests.unit.feasibility.builders import (
    NOW,
    ROOT,
    TODAY,
    at,
    store_grid,
    store_one_transformer_grid,
    store_peak,
    transformer,
)
from workflow.grid import handle_grid_event

SCHEMAS = {"substation": "substation.v1", "feeder": "feeder.v1", "transformer": "distribution_transformer.v1"}


def project(engine: Engine, kind: str, document: dict[str, Any], change: str = "changed") -> None:
    subject = (
        document.get("equipment_id") or document[f"{'transformer' if kind == 'transformer' else kind}_id"]
    )
    event = CloudEvent(
        id=str(uuid.uuid4()),
        source=f"/pms/{kind}",
        type=f"cn.yekuo.grid.{kind}.{change}.v1",
        subject=subject,
        time=datetime(2026, 11, 26, tzinfo=UTC),
        dataschema=schema_uri("equipment_deletion.v1" if change == "deleted" else SCHEMAS[kind]),
        correlationid="c",
        sequence=1,
        data=document,
    )
    with engine.begin() as conn:
        handle_grid_event(conn, DecodedEvent(event))


@pytest.fixture
def client(sqlite_engine: Engine) -> TestClient:
    for n in (1, 2):
        project(
            sqlite_engine,
            "substation",
            {
                "substation_id": f"DZ{n}",
                "name": f"110kV{n}号变",
                "status": "in_service",
                "voltage_kv": 110.0,
                "location": {"lon": 112.0 + n, "lat": 33.0},
            },
        )
    for n in range(1, 4):
        project(
            sqlite_engine,
            "feeder",
            {
                "feeder_id": f"XL{n}",
                "name": f"10kV{n}线",
                "status": "in_service",
                "substation_id": "DZ1" if n < 3 else "DZ2",
            },
        )
    for n in range(1, 13):
        project(
            sqlite_engine,
            "transformer",
            {
                "transformer_id": f"PB{n:02d}",
                "name": f"{n}号公变",
                "status": "decommissioned" if n == 12 else "in_service",
                "rated_capacity_kva": 400.0,
                "feeder_id": f"XL{n % 3 + 1}",
                "substation_id": "DZ1" if n % 3 + 1 < 3 else "DZ2",
                "location": {"lon": 112.0 + n / 100, "lat": 33.0},
                "transformer_district_id": f"TG{n:07d}",
            },
        )
    project(
        sqlite_engine,
        "transformer",
        {"equipment_id": "PB11", "kind": "transformer", "detected_at": "2026-11-26T10:00:00+08:00"},
        change="deleted",
    )
    app = FastAPI()
    install_context(app, ApiContext(sqlite_engine, open_capacity=OpenCapacityReader()))
    app.include_router(grid_router)
    return TestClient(app)


def ids(body: dict[str, Any], field: str) -> list[str]:
    return [item[field] for item in body["items"]]


def test_transformers_page_through_with_an_opaque_cursor(client: TestClient) -> None:
    first = client.get("/v1/grid/transformers", params={"limit": 5}).json()
    second = client.get("/v1/grid/transformers", params={"limit": 5, "cursor": first["next_cursor"]}).json()
    last = client.get("/v1/grid/transformers", params={"limit": 5, "cursor": second["next_cursor"]}).json()
    assert ids(first, "transformer_id") + ids(second, "transformer_id") + ids(last, "transformer_id") == [
        f"PB{n:02d}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12)
    ]
    assert first["limit"] == 5 and last["next_cursor"] is None
    assert first["items"][0] == {
        "transformer_id": "PB01",
        "name": "1号公变",
        "status": "in_service",
        "rated_capacity_kva": 400.0,
        "feeder_id": "XL2",
        "substation_id": "DZ1",
        "location": {"lon": 112.01, "lat": 33.0},
        "transformer_district_id": "TG0000001",
        "source_refs": [],
    }


def test_transformers_by_feeder_substation_bbox_and_status(client: TestClient) -> None:
    def query(**params: Any) -> list[str]:
        return ids(client.get("/v1/grid/transformers", params=params).json(), "transformer_id")

    assert query(feeder="XL1") == ["PB03", "PB06", "PB09", "PB12"]
    assert query(substation="DZ2") == ["PB02", "PB05", "PB08"]
    assert query(bbox="112.025,32.9,112.055,33.1") == ["PB03", "PB04", "PB05"]
    assert query(feeder="XL1", status="decommissioned") == ["PB12"]


def test_substations_and_feeders(client: TestClient) -> None:
    assert ids(
        client.get("/v1/grid/substations", params={"bbox": "112.5,32,113.5,34"}).json(), "substation_id"
    ) == ["DZ1"]
    assert ids(client.get("/v1/grid/feeders", params={"substation": "DZ1"}).json(), "feeder_id") == [
        "XL1",
        "XL2",
    ]
    assert client.get("/v1/grid/feeders/XL3").json()["substation_id"] == "DZ2"
    assert client.get("/v1/grid/substations/DZ2").json()["voltage_kv"] == 110.0


def test_single_items_and_deleted_ones(client: TestClient) -> None:
    assert client.get("/v1/grid/transformers/PB02").json()["name"] == "2号公变"
    gone = client.get("/v1/grid/transformers/PB11")
    assert gone.status_code == 404 and "PB11" in gone.json()["detail"]


@pytest.mark.parametrize(
    ("params", "status", "text"),
    [
        ({"limit": MAX_LIMIT + 1}, 422, "less than or equal to 1000"),
        ({"limit": 0}, 422, "greater than or equal to 1"),
        ({"cursor": "not-a-cursor"}, 400, "not a cursor of this listing"),
        ({"cursor": encode_cursor("feeder", "XL1")}, 400, "not a cursor of this listing"),
        ({"bbox": "112,33,113"}, 422, "four numbers"),
        ({"bbox": "113,33,112,34"}, 422, "min <= max"),
        ({"status": "broken"}, 422, "Input should be"),
    ],
)
def test_bad_parameters_are_rejected_with_a_reason(
    client: TestClient, params: dict[str, Any], status: int, text: str
) -> None:
    response = client.get("/v1/grid/transformers", params=params)
    assert response.status_code == status
    assert text in response.text


def test_the_hub_api_serves_the_grid_and_documents_it(sqlite_engine: Engine) -> None:
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH), headers=bearer("viewer"))
    assert client.get("/v1/grid/transformers").json() == {"items": [], "limit": 100, "next_cursor": None}
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/v1/grid/substations",
        "/v1/grid/feeders",
        "/v1/grid/transformers",
        "/v1/grid/transformers/{equipment_id}",
    } <= set(paths)


@pytest.fixture
def capacity(sqlite_engine: Engine) -> Iterator[TestClient]:
    """S1 (two 50 MVA units) feeding F1 (485 A, one tie, class B) feeding T1 (400 kVA), with today's loads
    on a clock fixed at the builders' NOW."""
    with sqlite_engine.begin() as conn:
        store_one_transformer_grid(conn, transformer_kw=180.0, feeder_kw=2_700.0, area=SupplyAreaClass.B)
    app = FastAPI()
    rules = load_feasibility_config(ROOT)
    install_context(
        app, ApiContext(sqlite_engine, feasibility_rules=rules, open_capacity=OpenCapacityReader(rules))
    )
    app.include_router(grid_router)
    with clock.use(FixedClock(NOW)):
        yield TestClient(app)


def open_kva(client: TestClient, equipment_id: str) -> float | None:
    body = client.get("/v1/grid/open-capacity").json()
    found = {item["equipment_id"]: item for item in body["items"]}
    return cast(float | None, found[equipment_id]["load"]["open_kva"])


def test_open_capacity_lists_substations_feeders_and_transformers_with_their_figures(
    capacity: TestClient,
) -> None:
    body = capacity.get("/v1/grid/open-capacity").json()
    assert [(item["kind"], item["equipment_id"]) for item in body["items"]] == [
        ("substation", "S1"),
        ("feeder", "F1"),
        ("transformer", "T1"),
    ]
    s1, f1, t1 = body["items"]
    # T1: 0.8 x 400 - 180 / 0.9 = 320 - 200 = 120 kVA; PV 0.8 x 400 = 320 kW, green.
    assert t1["load"]["open_kva"] == 120.0
    assert t1["load"]["binding_limit"]["rule"] == "transformer_load_rate"
    assert (t1["pv"]["open_kw"], t1["pv"]["grade"]) == (320.0, "green")
    # F1: 0.5 (N-1, one tie) x 8400.446 - 3000 = 1200.2 kVA.
    assert f1["load"]["open_kva"] == 1200.2
    assert f1["load"]["binding_limit"]["rule"] == "feeder_n_minus_1"
    # S1: 0.65 x 100000 - 20000 = 45000 kVA; 100000 kVA / 18000 kW = 5.556, above moderate 1.6-1.9.
    assert s1["load"]["open_kva"] == 45_000.0
    assert (s1["capacity_to_load"]["ratio"], s1["capacity_to_load"]["position"]) == (5.556, "above")
    assert body["next_cursor"] is None


def test_open_capacity_filters_and_pages(capacity: TestClient) -> None:
    def listed(**params: Any) -> list[str]:
        return [
            item["equipment_id"]
            for item in capacity.get("/v1/grid/open-capacity", params=params).json()["items"]
        ]

    assert listed(kind="feeder") == ["F1"]
    assert listed(voltage_kv=110) == ["S1"]
    assert listed(voltage_kv=10) == ["F1", "T1"]
    s1 = at(0, 600)
    assert listed(bbox=f"{s1.lon - 0.001},{s1.lat - 0.001},{s1.lon + 0.001},{s1.lat + 0.001}") == ["S1"]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = capacity.get("/v1/grid/open-capacity", params=params).json()
        seen += [item["equipment_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["S1", "F1", "T1"]


def test_a_new_reservation_a_new_load_day_and_a_grid_change_show_in_the_next_answer(
    capacity: TestClient, sqlite_engine: Engine
) -> None:
    assert open_kva(capacity, "T1") == 120.0
    with sqlite_engine.begin() as conn:
        conn.execute(
            capacity_reservations.insert().values(
                application_no="A1",
                equipment_id="T1",
                feeder_id="F1",
                substation_id="S1",
                kva=50,
                reserved_at=NOW,
            )
        )
    assert open_kva(capacity, "T1") == 80.0  # 120 - 50 x 0.8
    with sqlite_engine.begin() as conn:
        store_peak(conn, "T1", 216.0, TODAY - timedelta(days=1))  # a higher day: 216 / 0.9 = 240 kVA
    assert open_kva(capacity, "T1") == 40.0  # 320 - 240 - 40
    with sqlite_engine.begin() as conn:
        store_grid(conn, transformer("T2", "F1", "S1", 80, rated_kva=630))
    assert open_kva(capacity, "T2") is None  # on the grid now, but no load data yet: unknown


def test_substation_views_carry_the_capacity_to_load_ratio(capacity: TestClient) -> None:
    one = capacity.get("/v1/grid/substations/S1").json()
    assert one["substation_id"] == "S1"
    assert one["capacity_to_load"] == {
        "status": "known",
        "main_transformer_kva": 100_000.0,
        "load_basis_kw": 18_000.0,
        "ratio": 5.556,
        "growth": "moderate",
        "range_low": 1.6,
        "range_high": 1.9,
        "position": "above",
        "reasons": [],
    }
    listed = capacity.get("/v1/grid/substations").json()["items"]
    assert listed[0]["capacity_to_load"]["ratio"] == 5.556


@pytest.mark.parametrize(
    ("path", "params", "status", "text"),
    [
        ("/v1/grid/open-capacity", {"kind": "pole"}, 422, "Input should be"),
        ("/v1/grid/open-capacity", {"voltage_kv": 0}, 422, "greater than 0"),
        (
            "/v1/grid/open-capacity",
            {"cursor": encode_cursor("feeder", "F1")},
            400,
            "not a cursor of this listing",
        ),
        ("/v1/grid/open-capacity", {"province": "atlantis"}, 422, "no rule set"),
        ("/v1/grid/open-capacity", {"sort": "open_kva"}, 422, "not accepted here"),
        ("/v1/grid/substations/S1", {"province": "atlantis"}, 422, "no rule set"),
        ("/v1/grid/load-types", {"province": "atlantis"}, 422, "no rule set"),
    ],
)
def test_bad_open_capacity_parameters_are_rejected_with_a_reason(
    capacity: TestClient, path: str, params: dict[str, Any], status: int, text: str
) -> None:
    response = capacity.get(path, params=params)
    assert response.status_code == status
    assert text in response.text


def test_the_hub_api_serves_open_capacity_to_viewers(sqlite_engine: Engine) -> None:
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH), headers=bearer("viewer"))
    assert client.get("/v1/grid/open-capacity").json() == {"items": [], "limit": 100, "next_cursor": None}
    assert "/v1/grid/open-capacity" in client.get("/openapi.json").json()["paths"]
    assert TestClient(hub_app(sqlite_engine, auth=TEST_AUTH)).get("/v1/grid/open-capacity").status_code == 401


def _load_types_client(engine: Engine, config_dir: Path = ROOT) -> TestClient:
    app = FastAPI()
    rules = load_feasibility_config(config_dir)
    install_context(app, ApiContext(engine, feasibility_rules=rules, open_capacity=OpenCapacityReader(rules)))
    app.include_router(grid_router)
    return TestClient(app)


def test_load_types_publish_each_factor_and_a_96_point_profile(sqlite_engine: Engine) -> None:
    body = _load_types_client(sqlite_engine).get("/v1/grid/load-types").json()
    assert (body["province"], body["interval_minutes"]) == ("default", 15)
    items = {item["load_type"]: item for item in body["items"]}
    assert set(items) == {"ev_charging", "heat_pump"}  # general load has no factor of its own
    ev, heat = items["ev_charging"], items["heat_pump"]
    assert (ev["demand_factor"], heat["demand_factor"]) == (0.5, 0.7)
    assert len(ev["profile"]) == len(heat["profile"]) == 96
    assert max(ev["profile"]) == max(heat["profile"]) == 1.0
    # rules.yaml gives hours: hour 21 (1.0) fills points 85-88, 21:00-22:00; hour 6 (1.0) fills 25-28.
    assert ev["profile"][84:88] == [1.0] * 4 and ev["profile"][:4] == [0.7] * 4
    assert heat["profile"][24:28] == [1.0] * 4


def test_load_types_follow_the_provinces_rules(sqlite_engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "feasibility").mkdir()
    text = (ROOT / "feasibility" / "rules.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "      single_phase_max_kw: 12\n",
        "      single_phase_max_kw: 12\n    load_types: {heat_pump: {demand_factor: 0.85}}\n",
    )
    (tmp_path / "feasibility" / "rules.yaml").write_text(text, encoding="utf-8")
    client = _load_types_client(sqlite_engine, tmp_path)
    henan = client.get("/v1/grid/load-types", params={"province": "henan"}).json()
    default = client.get("/v1/grid/load-types").json()
    assert henan["province"] == "henan"
    factors = {item["load_type"]: item["demand_factor"] for item in henan["items"]}
    assert factors == {"ev_charging": 0.5, "heat_pump": 0.85}
    profiles = [
        {item["load_type"]: item["profile"] for item in answer["items"]}["heat_pump"]
        for answer in (henan, default)
    ]
    assert profiles[0] == profiles[1]  # the default profile is kept


def test_the_hub_api_serves_load_types_to_viewers(sqlite_engine: Engine) -> None:
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH), headers=bearer("viewer"))
    response = client.get("/v1/grid/load-types")
    assert response.status_code == 200 and len(response.json()["items"]) == 2
    assert "/v1/grid/load-types" in client.get("/openapi.json").json()["paths"]
    assert TestClient(hub_app(sqlite_engine, auth=TEST_AUTH)).get("/v1/grid/load-types").status_code == 401
