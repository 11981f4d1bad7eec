"""The grid API: listings with feeder, substation and bounding-box filters, cursor pages, single items."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from api.grid import MAX_LIMIT, encode_cursor, grid_router
from canonical_model.envelope import CloudEvent
from canonical_model.registry import schema_uri
from tests.support.auth import TEST_AUTH, bearer
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
        handle_grid_event(conn, event)


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
    app.include_router(grid_router(sqlite_engine))
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
    client = TestClient(create_app(sqlite_engine, auth=TEST_AUTH), headers=bearer("viewer"))
    assert client.get("/v1/grid/transformers").json() == {"items": [], "limit": 100, "next_cursor": None}
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/v1/grid/substations",
        "/v1/grid/feeders",
        "/v1/grid/transformers",
        "/v1/grid/transformers/{equipment_id}",
    } <= set(paths)
