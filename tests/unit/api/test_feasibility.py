"""Tests of the feasibility preview's input: the same strict text and numbers, and range, as a submission."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.context import ApiContext, install_context
from api.feasibility import router as feasibility_router
from api.problems import install_problem_handlers
from feasibility.config import load_feasibility_config
from ground import clock
from ground.settings import PROJECT_ROOT, SubmissionSettings
from tests.unit.feasibility.builders import (
    NOW,
    SITE,
    store_one_transformer_grid,
)

PREVIEW: dict[str, Any] = {
    "requested_capacity_kva": 50,
    "site_location": {"lon": 112.53, "lat": 33.0},
    "customer_class": "lv_residential",
    "importance_grade": "none",
    "urban_rural": "urban",
    "province": "henan",
}
PLACEHOLDER = "@value@"


def _client(engine: Engine, limits: SubmissionSettings | None = None) -> TestClient:
    app = FastAPI()
    rules = load_feasibility_config(PROJECT_ROOT)
    context = ApiContext(engine, feasibility_rules=rules)
    if limits is not None:
        context.submissions = limits
    install_context(app, context)
    app.include_router(feasibility_router)
    install_problem_handlers(app)
    return TestClient(app)


@pytest.fixture
def client(sqlite_engine: Engine) -> TestClient:
    return _client(sqlite_engine)


def _preview(client: TestClient, path: tuple[str, ...], text: str) -> Any:
    body: dict[str, Any] = json.loads(json.dumps(PREVIEW))
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = PLACEHOLDER
    raw = json.dumps(body).replace(f'"{PLACEHOLDER}"', text)
    return client.post("/v1/feasibility/preview", content=raw, headers={"Content-Type": "application/json"})


def _locations(response: Any) -> list[list[str]]:
    return [error["loc"] for error in response.json()["errors"]]


def test_a_good_preview_is_answered(client: TestClient) -> None:
    response = client.post("/v1/feasibility/preview", json=PREVIEW)
    assert response.status_code == 200
    assert response.json()["requested_capacity_kva"] == 50


NUMBER_PATHS = [("requested_capacity_kva",), ("site_location", "lon"), ("site_location", "lat")]
BAD_NUMBERS = ["true", '"50"', "NaN", "Infinity", "-Infinity", "1e400", "1e308", "-1e308"]


@pytest.mark.parametrize(
    ("path", "text"),
    [(path, text) for path in NUMBER_PATHS for text in BAD_NUMBERS]
    # A subnormal capacity is a positive number, but not a capacity anyone connects.
    + [(("requested_capacity_kva",), "1e-320")],
)
def test_a_number_that_is_not_finite_or_in_range_is_refused_naming_the_field(
    client: TestClient, path: tuple[str, ...], text: str
) -> None:
    response = _preview(client, path, text)
    assert response.status_code == 422
    assert ["body", *path] in _locations(response)
    assert client.post("/v1/feasibility/preview", json=PREVIEW).status_code == 200


@pytest.mark.parametrize(
    "path", [("province",), ("customer_class",), ("urban_rural",), ("importance_grade",)]
)
@pytest.mark.parametrize("character", ["\\u0000", "\\t", "\\u007f", "\\u0085", "\\ud800"])
def test_a_control_character_in_a_text_field_is_refused_naming_the_field(
    client: TestClient, path: tuple[str, ...], character: str
) -> None:
    response = _preview(client, path, f'"henan{character}"')
    assert response.status_code == 422
    assert _locations(response) == [["body", *path]]
    assert response.json()["errors"][0]["type"] == "control_character"
    assert client.post("/v1/feasibility/preview", json=PREVIEW).status_code == 200


def test_the_previewed_capacity_is_held_to_the_configured_range(sqlite_engine: Engine) -> None:
    client = _client(sqlite_engine, SubmissionSettings(min_capacity_kva=10, max_capacity_kva=100))
    for capacity in (9, 101):
        response = client.post(
            "/v1/feasibility/preview", json={**PREVIEW, "requested_capacity_kva": capacity}
        )
        assert response.status_code == 422
        assert response.json()["errors"] == [
            {
                "loc": ["body", "requested_capacity_kva"],
                "msg": "must be between 10 and 100 kVA",
                "type": "capacity_range",
            }
        ]
    assert (
        client.post("/v1/feasibility/preview", json={**PREVIEW, "requested_capacity_kva": 100}).status_code
        == 200
    )


def test_an_unknown_field_is_refused(client: TestClient) -> None:
    response = client.post("/v1/feasibility/preview", json={**PREVIEW, "capacity": 50})
    assert response.status_code == 422
    assert _locations(response) == [["body", "capacity"]]


def _one_transformer_grid(engine: Engine, *, feeder_kw: float) -> None:
    """T1 at 150 kW on F1 (peak feeder_kw) from S1, an unclassed substation."""
    with engine.begin() as conn:
        store_one_transformer_grid(conn, transformer_kw=150.0, feeder_kw=feeder_kw)


def test_a_preview_shows_existing_grid_conditions_apart_from_the_applicants_result(
    sqlite_engine: Engine,
) -> None:
    # F1: 4500 kW / 0.9 = 5000 kVA of 8400.45 = 59.5%, past its one-tie N-1 limit of 50%.
    _one_transformer_grid(sqlite_engine, feeder_kw=4_500.0)
    body = {**PREVIEW, "site_location": SITE.model_dump(), "customer_class": "lv_non_residential"}
    body.pop("province")
    with clock.frozen_at(NOW):  # the profiles are of the builders' day
        response = _client(sqlite_engine).post(
            "/v1/feasibility/preview", json={**body, "industry_code": "F5211"}
        )
    assert response.status_code == 200
    answer = response.json()
    assert answer["verdict"] == "feasible_with_conditions"
    assert "reinforcement" not in answer or answer["reinforcement"] == []
    (existing,) = answer["existing_grid"]
    assert (existing["equipment_id"], existing["rule"], existing["max_load_rate"]) == (
        "F1",
        "feeder_n_minus_1",
        0.5,
    )
    # Wholesale and retail (F) count 0.7: 50 kVA x 0.7 = 35 kVA is what the request adds.
    assert (answer["demand_factor"], answer["increment_kva"]) == (0.7, 35)
    assert existing["increment_kva"] == 35


def test_an_industry_code_that_is_not_gb_t_4754_is_refused(client: TestClient) -> None:
    response = client.post("/v1/feasibility/preview", json={**PREVIEW, "industry_code": "31"})
    assert response.status_code == 422
    assert ["body", "industry_code"] in _locations(response)


def test_a_preview_takes_the_business_type_and_the_requested_voltage(client: TestClient) -> None:
    renamed = client.post("/v1/feasibility/preview", json={**PREVIEW, "business_type": "name_change"})
    assert renamed.status_code == 200
    assert renamed.json()["verdict"] == "no_capacity_check"
    # 50 kVA x 0.9 = 45 kW could be low voltage; a valid 10 kV request is honoured.
    asked = client.post("/v1/feasibility/preview", json={**PREVIEW, "requested_voltage_kv": 10})
    assert asked.json()["recommended_voltage_kv"] == 10
    # 400 kVA contracted, 50 kept: 350 kVA freed and nothing to reinforce.
    reduced = client.post(
        "/v1/feasibility/preview",
        json={**PREVIEW, "business_type": "capacity_reduction", "existing_capacity_kva": 400},
    )
    assert reduced.json()["verdict"] == "feasible"
    assert reduced.json()["existing_capacity_kva"] == 400
    unknown = client.post("/v1/feasibility/preview", json={**PREVIEW, "business_type": "relabel"})
    assert unknown.status_code == 422
    assert ["body", "business_type"] in _locations(unknown)


def test_a_preview_takes_the_load_type(sqlite_engine: Engine) -> None:
    _one_transformer_grid(sqlite_engine, feeder_kw=3_000.0)
    client = _client(sqlite_engine)
    body = {**PREVIEW, "site_location": SITE.model_dump(), "requested_capacity_kva": 16}
    body.pop("province")
    with clock.frozen_at(NOW):  # the profiles are of the builders' day
        pile = client.post("/v1/feasibility/preview", json={**body, "load_type": "ev_charging"})
        household = client.post("/v1/feasibility/preview", json=body)
    assert pile.status_code == 200
    # 16 kVA of charging piles x 0.5 = 8 kVA added; as ordinary household load, x 0.4 = 6.4 kVA.
    assert (pile.json()["demand_factor"], pile.json()["increment_kva"]) == (0.5, 8)
    assert (household.json()["demand_factor"], household.json()["increment_kva"]) == (0.4, 6.4)
    unknown = client.post("/v1/feasibility/preview", json={**body, "load_type": "tram"})
    assert unknown.status_code == 422
    assert ["body", "load_type"] in _locations(unknown)
