"""The forecast API: one equipment's monthly peaks with intervals and pipeline, and its problems."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.context import ApiContext, install_context
from api.forecast import router as forecast_router
from api.problems import install_problem_handlers
from feasibility.config import load_feasibility_config
from forecast.config import load_forecast_config
from ground import clock
from ground.clock import FixedClock
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer
from tests.unit.feasibility.builders import ROOT, application, feeder, store_grid, substation, transformer
from tests.unit.forecast import simulated
from tests.unit.forecast.builders import store_days, store_pipeline

# 10:00 on 15 January 2026 in Asia/Shanghai: month 1 is February 2026.
NOW = datetime(2026, 1, 15, 2, 0, tzinfo=UTC)


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    """F1 with four years of simulated days and one 500 kVA manufacturing application due in May 2026;
    T1 with only a year of days."""
    start = date(2022, 1, 1)
    with sqlite_engine.begin() as conn:
        store_grid(conn, substation("S1", 0, 600), feeder("F1", "S1", 300), transformer("T1", "F1", "S1", 50))
        store_days(conn, "F1", simulated.daily_peaks(start, (date(2026, 1, 15) - start).days, seed=5))
        store_days(conn, "T1", simulated.daily_peaks(date(2025, 1, 1), 365, seed=5))
        store_pipeline(
            conn,
            application("A1", 500).model_copy(update={"industry_code": "C3411"}),
            feeder_id="F1",
            point_id="T1",
            reserved_kva=500,
            deadline=date(2026, 5, 20),
            reserved_at=NOW,
        )
    app = FastAPI()
    install_problem_handlers(app)
    context = ApiContext(
        sqlite_engine, feasibility_rules=load_feasibility_config(ROOT), forecast=load_forecast_config(ROOT)
    )
    install_context(app, context)
    app.include_router(forecast_router)
    with clock.use(FixedClock(NOW)):
        yield TestClient(app)


def test_the_forecast_answers_36_months_with_intervals_model_and_pipeline_share(client: TestClient) -> None:
    response = client.get("/v1/forecast/equipment/F1")
    assert response.status_code == 200
    body = response.json()
    assert (body["equipment_id"], body["province"], body["power_factor"]) == ("F1", "default", 0.9)
    assert (body["history_from"], body["history_to"], body["history_months"]) == ("2022-01", "2025-12", 48)
    assert body["model"].startswith("MSTL(12)+ETS(A,")
    months = body["months"]
    assert [m["month"] for m in (months[0], months[-1])] == ["2026-02", "2029-01"]
    # 500 kVA x 0.6 (manufacturing) = 300 kVA from May 2026, month 4, on.
    assert [m["pipeline_kva"] for m in months[:5]] == [0, 0, 0, 300, 300]
    may = months[3]
    assert may["pipeline_share"] == pytest.approx(300 / may["peak_kva"], abs=1e-4)
    assert [i["level"] for i in may["intervals"]] == [80, 95]
    [item] = body["pipeline"]
    assert item == {
        "application_no": "A1",
        "reserved_kva": 500.0,
        "demand_factor": 0.6,
        "factor_source": "industry C",
        "increment_kva": 300.0,
        "expected_energisation": "2026-05-20",
        "counted_from": "2026-05",
    }


def test_unknown_equipment_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/v1/forecast/equipment/NOPE")
    assert response.status_code == 404
    assert response.json()["code"] == "equipment-not-found"


def test_a_history_too_short_is_a_problem_that_says_how_short(client: TestClient) -> None:
    response = client.get("/v1/forecast/equipment/T1")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "insufficient-load-history"
    # T1 holds the days of 2025: twelve complete months, against the 24 forecast.yaml asks for.
    assert body["detail"] == (
        "equipment T1 cannot be forecast: 12 consecutive complete months up to 2025-12; 24 are needed "
        "(a month is complete with 20 complete days)"
    )


def test_an_unknown_province_is_refused(client: TestClient) -> None:
    response = client.get("/v1/forecast/equipment/F1", params={"province": "atlantis"})
    assert (response.status_code, response.json()["code"]) == (422, "unknown-province")


def test_the_hub_api_serves_forecasts_to_viewers(sqlite_engine: Engine) -> None:
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH))
    path = "/v1/forecast/equipment/{equipment_id}"
    assert path in client.get("/openapi.json").json()["paths"]
    response = client.get("/v1/forecast/equipment/F9", headers=bearer("viewer"))
    assert (response.status_code, response.json()["code"]) == (404, "equipment-not-found")
    assert client.get("/v1/forecast/equipment/F9").status_code == 401
