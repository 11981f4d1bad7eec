"""The grid page shows the figures GET /v1/grid/open-capacity answers, with its filters and cursor, and the
equipment's coordinates for the scatter plot.

S1 (two 50 MVA units) feeds F1 (485 A, one tie, class B), which feeds T1 (400 kVA), with loads on a clock
fixed at the builders' NOW, as in the grid API's tests (tests/unit/api/test_grid.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.ui import labels
from canonical_model.grid import SupplyAreaClass
from feasibility.open_capacity import Availability, EquipmentKind, Grade, RatioPosition
from forecast.alerts import raise_alert
from ground import clock
from ground.clock import FixedClock
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer
from tests.unit.feasibility.builders import (
    NOW,
    feeder_alert,
    store_one_transformer_grid,
)


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    with sqlite_engine.begin() as conn:
        store_one_transformer_grid(conn, transformer_kw=180.0, feeder_kw=2_700.0, area=SupplyAreaClass.B)
    with clock.use(FixedClock(NOW)):
        yield TestClient(hub_app(sqlite_engine, auth=TEST_AUTH), headers=bearer("viewer"))


def _rows(page: str) -> dict[str, dict[str, str]]:
    rows = re.findall(
        r'<tr data-equipment="([\w-]+)" data-kind="(\w+)"'
        r'.*?data-load-rate="([^"]*)".*?data-open-kva="([^"]*)"',
        page,
        re.S,
    )
    return {key: {"kind": kind, "load_rate": rate, "open_kva": kva} for key, kind, rate, kva in rows}


def _points(page: str) -> list[dict[str, object]]:
    found = re.search(r'<script type="application/json" id="grid-points">(.*?)</script>', page, re.S)
    assert found is not None
    points: list[dict[str, object]] = json.loads(found[1])
    return points


def test_the_table_shows_the_open_capacity_the_api_answers(client: TestClient) -> None:
    page = client.get("/ui/grid").text
    api = client.get("/v1/grid/open-capacity").json()["items"]
    rows = _rows(page)
    assert list(rows) == [item["equipment_id"] for item in api] == ["S1", "F1", "T1"]
    for item in api:
        shown = rows[item["equipment_id"]]
        assert shown["kind"] == item["kind"]
        assert float(shown["open_kva"]) == item["load"]["open_kva"]
        assert float(shown["load_rate"]) == item["load"]["load_rate"]
    # T1: 0.8 x 400 - 180 / 0.9 = 120 kVA open; its load rate (180 / 0.9) / 400 = 50.0 %.
    assert rows["T1"]["open_kva"] == "120.0" and ">50.0%<" in page
    assert "变电站" in page and "配变" in page


def test_the_plot_gets_every_listed_piece_of_equipment_at_its_coordinates(client: TestClient) -> None:
    page = client.get("/ui/grid").text
    api = {item["equipment_id"]: item for item in client.get("/v1/grid/open-capacity").json()["items"]}
    points = _points(page)
    assert [point["id"] for point in points] == ["S1", "F1", "T1"]
    for point in points:
        location = api[str(point["id"])]["location"]
        assert (point["lon"], point["lat"]) == (location["lon"], location["lat"])
        assert point["open_kva"] == api[str(point["id"])]["load"]["open_kva"]
    assert 'id="chart-grid"' in page or "图表库未安装" in page


def test_filters_and_the_cursor_are_the_apis(client: TestClient) -> None:
    assert list(_rows(client.get("/ui/grid", params={"kind": "feeder"}).text)) == ["F1"]
    assert list(_rows(client.get("/ui/grid", params={"voltage_kv": "10"}).text)) == ["F1", "T1"]
    first = client.get("/ui/grid", params={"limit": 2}).text
    assert list(_rows(first)) == ["S1", "F1"]
    following = re.search(r'href="/ui/grid\?([^"]+)" id="next-page"', first)
    assert following is not None
    second = client.get(f"/ui/grid?{unescape(following[1])}").text
    assert list(_rows(second)) == ["T1"] and 'id="next-page"' not in second
    # Empty filter fields mean "any", as the form sends them.
    assert list(_rows(client.get("/ui/grid?kind=&voltage_kv=&bbox=&province=").text)) == ["S1", "F1", "T1"]


def test_a_filter_the_api_refuses_is_refused_here_too(client: TestClient) -> None:
    assert client.get("/ui/grid", params={"bbox": "1,2,3"}).status_code == 422
    assert client.get("/ui/grid", params={"province": "atlantis"}).status_code == 422
    assert client.get("/ui/grid", params={"cursor": "bogus"}).status_code == 400
    assert client.get("/ui/grid", headers=bearer("operator")).status_code == 403


def test_the_pages_codes_have_chinese_names() -> None:
    for table, codes in (
        (labels.EQUIPMENT_KINDS, EquipmentKind),
        (labels.AVAILABILITY, Availability),
        (labels.PV_GRADES, Grade),
        (labels.RATIO_POSITIONS, RatioPosition),
    ):
        assert set(table) == {code.value for code in codes}


def test_the_forecasts_planning_alerts_head_the_page_and_mark_their_equipment(
    client: TestClient, sqlite_engine: Engine
) -> None:
    assert "暂无越限预警" in client.get("/ui/grid").text
    # 6000 kVA forecast for July 2027 over F1's N-1 limit, 0.5 x 8400.4 = 4200.2 kVA; 15% from the pipeline.
    alert = feeder_alert("F1", "2027-07", rule="feeder_n_minus_1", rate=0.5)
    with sqlite_engine.begin() as conn:
        raise_alert(conn, alert, exchange="yekuo.events", correlation_id="forecast", now=NOW)
    page = client.get("/ui/grid").text
    section = page[page.index('id="planning-alerts"') : page.index('id="equipment"')]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", section[section.index('data-alert="F1"') :], re.S)
    assert [unescape(cell).strip() for cell in cells[:7]] == [
        "2027-07",
        labels.EQUIPMENT_KINDS["feeder"],
        "F1",
        "feeder_n_minus_1 ≤ 50.0%",
        "6000",
        "4200.2",
        "15.0%",
    ]
    table = page[page.index('id="equipment"') :]

    def row_of(equipment_id: str) -> str:
        start = table.index(f'data-equipment="{equipment_id}"')
        return table[start : table.index("</tr>", start)]

    assert "预警" in row_of("F1") and "2027-07" in row_of("F1")
    assert "预警" not in row_of("T1")
