"""The demand forecast and the analyses over HTTP: answers from the stored history, and their problems."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.context import ApiContext, install_context
from api.demand import router as demand_router
from api.problems import install_problem_handlers
from forecast.demand_config import load_demand_config
from ground import clock
from ground.clock import FixedClock
from ground.settings import PROJECT_ROOT
from simulators.dispatch.equipment import Equipment, EquipmentKind, LoadClass
from simulators.dispatch.history import history
from tests.unit.forecast.demand_builders import simulated_applications, store_cases, store_curves

# 10:00 on 10 January 2026 in Asia/Shanghai: the history's last complete month is December 2025.
NOW = datetime(2026, 1, 10, 2, 0, tzinfo=UTC)
MALL = Equipment("T-MALL", "商业综合体专变", EquipmentKind.TRANSFORMER, 800.0, LoadClass.COMMERCIAL)


def _client(engine: Engine) -> Iterator[TestClient]:
    app = FastAPI()
    install_problem_handlers(app)
    install_context(app, ApiContext(engine, demand=load_demand_config(PROJECT_ROOT)))
    app.include_router(demand_router)
    with clock.use(FixedClock(NOW)):
        yield TestClient(app)


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    """Five simulated years of applications (2021-2025) and two years of a commercial complex's curves."""
    with sqlite_engine.begin() as conn:
        store_cases(conn, simulated_applications(8, 2021, 5, 300))
        store_curves(conn, history([MALL], date(2024, 1, 1), 2, seed=6))
    yield from _client(sqlite_engine)


@pytest.fixture
def empty(sqlite_engine: Engine) -> Iterator[TestClient]:
    yield from _client(sqlite_engine)


def test_demand_answers_the_asked_months_for_a_load_type(client: TestClient) -> None:
    response = client.get("/v1/forecast/demand", params={"load_type": "ev_charging", "months": 6})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["load_type"] == "ev_charging"
    assert [month["month"] for month in body["forecast"]] == [f"2026-{m:02d}" for m in range(1, 7)]
    assert body["history"][-1]["month"] == "2025-12"
    assert [band["level"] for band in body["forecast"][0]["requested_kva"]["intervals"]] == [80, 95]
    assert body["unreadable_cases"] == 0
    default = client.get("/v1/forecast/demand", params={"unit": "41401", "section": "Q"}).json()
    assert len(default["forecast"]) == 12


def test_demand_refuses_bad_parameters(client: TestClient) -> None:
    too_far = client.get("/v1/forecast/demand", params={"months": 37})
    assert too_far.status_code == 422
    assert "at most 36" in too_far.json()["detail"]
    assert client.get("/v1/forecast/demand", params={"section": "Z"}).status_code == 422
    assert client.get("/v1/forecast/demand", params={"load_type": "pv"}).status_code == 422


def test_load_share_of_the_complex_from_its_stored_curves(client: TestClient) -> None:
    response = client.get("/v1/forecast/analyses/load-share", params={"equipment": ["T-MALL", "T-NONE"]})
    assert response.status_code == 200, response.text
    body = response.json()
    # The simulator's 60% within 0.03 for two summers of one complex; its 14:00-17:00.
    assert body["years"] == [2024, 2025]
    assert body["share_at_peak"] == pytest.approx(0.6, abs=0.03)
    assert (body["concentrated_from"], body["concentrated_to"]) == ("14:00", "17:00")
    assert len(body["component_kw"]) == 96


def test_ev_growth_over_the_five_complete_years(client: TestClient) -> None:
    response = client.get("/v1/forecast/analyses/ev-growth")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [year["year"] for year in body["years"]] == [2021, 2022, 2023, 2024, 2025]
    assert [year["year"] for year in body["projection"]] == [2026, 2027, 2028]
    # 68% a year simulated; at 300 applications a year the counts are small (some 10 to 90), hence 0.25.
    assert body["applications_growth"] == pytest.approx(0.68, abs=0.25)


def test_without_history_every_answer_is_a_409(empty: TestClient) -> None:
    for path, params in (
        ("/v1/forecast/demand", {}),
        ("/v1/forecast/analyses/ev-growth", {}),
        ("/v1/forecast/analyses/load-share", {"equipment": "T-MALL"}),
    ):
        response = empty.get(path, params=params)
        assert response.status_code == 409, path
        assert response.headers["content-type"] == "application/problem+json"
