"""The operators', planners' and customers' pages in a real browser against the live hub: a parked message
replayed and discarded from the integration health page, the grid's table and plot, the public progress
lookup with the right code and a wrong one, and its chat box. Screenshots of each page go to
var/screenshots/; the `browser` fixture checks that no request left 127.0.0.1."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import httpx2
from playwright.sync_api import expect

from adapters.marketing.client import LEGACY_TIME_FORMAT
from canonical_model.grid import SupplyAreaClass
from ground import clock
from store.operations import list_actions
from store.parking import ParkedMessage
from store.schema import parked
from tests.browser.conftest import Browser, LiveHub, screenshot, wait_for
from tests.support.auth import bearer, token
from tests.unit.feasibility.builders import (
    feeder,
    main_transformer,
    store_grid,
    store_peak,
    substation,
    transformer,
)
from workflow.queries import get_case, get_customer, stage_visits_of
from workflow.workdays import SHANGHAI, WorkingCalendar

OPERATOR = "李运维"
UNKNOWN_VOLTAGE = "AC99999"


def _api(live_hub: LiveHub, path: str, **params: str) -> Any:
    response = httpx2.get(f"{live_hub.base_url}{path}", params=params, headers=bearer("admin"), timeout=10)
    response.raise_for_status()
    return response.json()


def _parked_for(live_hub: LiveHub, application_no: str) -> list[ParkedMessage]:
    with live_hub.engine.connect() as conn:
        rows = conn.execute(parked.select().where(parked.c.record_key == application_no)).all()
    return [ParkedMessage(**row._mapping) for row in rows]


def test_a_parked_message_is_replayed_and_discarded_from_the_health_page(
    browser: Browser, live_hub: LiveHub
) -> None:
    # The marketing system lists an application with a voltage code the mappings do not know: the hub's
    # poller reads it and ingest parks it as invalid input.
    world = live_hub.world
    template = world.all_applications()[-1]
    number = str(max(int(row["APP_NO"]) for row in world.all_applications()) + 1)
    latest = datetime.strptime(str(world.latest_update_time()), LEGACY_TIME_FORMAT)
    world.add_application(
        {
            **template,
            "APP_NO": number,
            "VOLT_CODE": UNKNOWN_VOLTAGE,
            "UPDATE_TIME": (latest + timedelta(minutes=1)).strftime(LEGACY_TIME_FORMAT),
        }
    )
    live_hub.hub.wake("poll:marketing")
    wait_for(lambda: len(_parked_for(live_hub, number)) == 1, "the hub to park the application")
    [first] = _parked_for(live_hub, number)
    assert (first.kind, first.reason_code, first.status) == ("invalid", "mapping", "parked")

    page = browser.page()
    browser.log_in(page, token("admin", sub=OPERATOR))
    page.goto(f"{browser.base_url}/ui/health")
    expect(page.locator('[data-figure="parked_invalid"]')).not_to_have_attribute("data-value", "0")
    expect(page.locator("#adapters tr[data-adapter=marketing]")).to_be_visible()
    expect(page.locator("#queues tr[data-queue]").first).to_be_visible()
    screenshot(page, "health")
    page.click(f'#parked tr[data-parked="{first.id}"] a')
    expect(page.locator("#parked-status")).to_have_attribute("data-status", "parked")
    expect(page.locator("#reason")).to_contain_text(UNKNOWN_VOLTAGE)
    screenshot(page, "parked")

    page.click("#replay")
    # The replay ran the record through ingest again; the code is still unknown, so it is parked anew.
    expect(page.locator("#parked-status")).to_have_attribute("data-status", "replayed")
    replay_row = page.locator('#actions tr[data-action="replay"]')
    expect(replay_row.locator("td.operator")).to_have_text(OPERATOR)
    again = [message for message in _parked_for(live_hub, number) if message.id != first.id]
    assert [(message.status, message.reason_code) for message in again] == [("parked", "mapping")]
    expect(replay_row).to_contain_text(f"parked again as #{again[0].id}")
    screenshot(page, "parked-replayed")

    # The source is fixed by hand and the hub reads the corrected record: the re-parked copy is discarded.
    page.goto(f"{browser.base_url}/ui/health/parked/{again[0].id}")
    page.click("#discard")
    expect(page.locator("#parked-status")).to_have_attribute("data-status", "discarded")
    with live_hub.engine.connect() as conn:
        recorded = [(action.operator, action.action) for action in list_actions(conn)]
    assert (OPERATOR, "replay") in recorded and (OPERATOR, "discard") in recorded
    world.apply_change(number, {"VOLT_CODE": template["VOLT_CODE"]})
    live_hub.hub.wake("poll:marketing")
    wait_for(lambda: _case_tracked(live_hub, number), "the corrected application to be tracked")


def _case_tracked(live_hub: LiveHub, number: str) -> bool:
    with live_hub.engine.connect() as conn:
        return get_case(conn, number) is not None


def test_the_grid_page_renders_its_table_and_plot(browser: Browser, live_hub: LiveHub) -> None:
    # PMS equipment and yesterday's loads, as the grid and load consumers store them.
    yesterday = clock.now().astimezone(SHANGHAI).date() - timedelta(days=1)
    with live_hub.engine.begin() as conn:
        store_grid(
            conn,
            substation("UI-S1", 0, 600, area=SupplyAreaClass.B),
            main_transformer("UI-S1-T1", "UI-S1", 50_000),
            feeder("UI-F1", "UI-S1", 300, ties=1),
            transformer("UI-T1", "UI-F1", "UI-S1", 50, rated_kva=400),
            transformer("UI-T2", "UI-F1", "UI-S1", 900, 400, rated_kva=630),
        )
        for equipment_id, peak_kw in (
            ("UI-T1", 180.0),
            ("UI-T2", 500.0),
            ("UI-F1", 2_700.0),
            ("UI-S1-T1", 9_000.0),
        ):
            store_peak(conn, equipment_id, peak_kw, yesterday)
    page = browser.page()
    browser.log_in(page, token("viewer"))
    page.goto(f"{browser.base_url}/ui/grid")
    listed = _api(live_hub, "/v1/grid/open-capacity")["items"]
    rows = page.locator("#equipment tr[data-equipment]")
    expect(rows).to_have_count(len(listed))
    shown = rows.evaluate_all("rows => rows.map(r => r.dataset.equipment)")
    assert shown == [item["equipment_id"] for item in listed]
    t1 = page.locator('#equipment tr[data-equipment="UI-T1"] td[data-open-kva]')
    # 0.8 x 400 - 180 / 0.9 = 120 kVA still open on UI-T1.
    expect(t1).to_have_attribute("data-open-kva", "120.0")
    # The plot marks itself drawn once every listed piece of equipment is on its canvas.
    expect(page.locator("#chart-grid")).to_have_attribute("data-points", str(len(listed)))
    assert any(url.endswith("/ui/static/grid.js") for url in browser.requested)
    screenshot(page, "grid")
    page.select_option("select[name=kind]", "transformer")
    page.click("#filters button")
    expect(page.locator("#equipment tr[data-equipment]")).to_have_count(
        len([item for item in listed if item["kind"] == "transformer"])
    )


def _application_with_a_phone(live_hub: LiveHub) -> tuple[str, str, str]:
    """An application, its customer's name and the last 4 digits of its first registered mobile."""
    with live_hub.engine.connect() as conn:
        for row in live_hub.world.all_applications():
            case = get_case(conn, row["APP_NO"])
            customer = get_customer(conn, case["customer_no"]) if case else None
            for contact in (customer or {}).get("contacts", [])[:1]:
                digits = re.sub(r"\D", "", contact.get("phone") or "")
                if len(digits) >= 4 and customer is not None:
                    return row["APP_NO"], str(customer["name"]), digits[-4:]
    raise AssertionError("no seeded application has a customer with a phone")


def test_the_customer_looks_up_progress_and_a_wrong_code_is_refused(
    browser: Browser, live_hub: LiveHub
) -> None:
    number, name, code = _application_with_a_phone(live_hub)
    wrong = f"{(int(code) + 1) % 10_000:04d}"
    page = browser.page()
    # No login: the page is public.
    page.goto(f"{browser.base_url}/ui/progress")
    page.fill("#application-no", number)
    page.fill("#code", wrong)
    page.click("#look-up")
    expect(page.locator("#progress-error")).to_contain_text("未查询到该申请")
    expect(page.locator("#progress")).to_have_count(0)
    refused = page.locator("#progress-error").inner_text()
    page.fill("#application-no", "0000000000000")
    page.fill("#code", code)
    page.click("#look-up")
    # An unknown number is told exactly what a wrong code is told.
    expect(page.locator("#progress-error")).to_have_text(refused)

    page.fill("#application-no", number)
    page.fill("#code", code)
    page.click("#look-up")
    expect(page.locator("#progress")).to_have_attribute("data-application", number)
    with live_hub.engine.connect() as conn:
        case = get_case(conn, number)
        visits = stage_visits_of(conn, number, calendar=WorkingCalendar(), now=clock.now())
    assert case is not None
    expect(page.locator("#current-stage")).to_have_attribute("data-stage", case["stage"])
    expect(page.locator("#customer-name")).to_have_text(name[:1] + "*" * (len(name) - 1))
    stages = page.locator("#steps li").evaluate_all("items => items.map(i => i.dataset.stage)")
    assert stages == [visit["stage"] for visit in visits]
    content = page.content()
    assert name not in content or len(name) == 1
    assert case["customer_no"] not in content
    screenshot(page, "progress")


def test_the_chat_box_answers_from_the_knowledge_base_and_from_the_case(
    browser: Browser, live_hub: LiveHub
) -> None:
    number, name, code = _application_with_a_phone(live_hub)
    page = browser.page()
    page.goto(f"{browser.base_url}/ui/progress")

    page.fill("#question", "三零服务是什么意思？")
    page.click("#ask")
    expect(page.locator("#answer")).to_have_attribute("data-kind", "knowledge")
    expect(page.locator("#answer")).to_have_attribute("data-entry", "sanling")

    page.fill("#question", "这个月的电费账单怎么比上个月高这么多")
    page.click("#ask")
    expect(page.locator("#answer")).to_have_attribute("data-kind", "refused")
    expect(page.locator("#answer")).to_contain_text("95598")

    page.fill("#question", f"我的申请{number}到哪一步了？验证码{code}")
    page.click("#ask")
    expect(page.locator("#answer")).to_have_attribute("data-kind", "progress")
    answer = page.locator("#answer").inner_text()
    assert number in answer and name[:1] + "*" * (len(name) - 1) in answer
    assert name not in answer or len(name) == 1
    screenshot(page, "progress-chat")
