"""The dashboard in a real browser against a live hub: login and logout, the overview's figures, a case
moving stage on screen when its event arrives, masked personal data, and no request leaving 127.0.0.1
(checked after every test by the `browser` fixture)."""

from __future__ import annotations

from typing import Any

import httpx2
from playwright.sync_api import Page, expect

from api.security import PII_READ
from tests.browser.conftest import Browser, LiveHub, screenshot, wait_for
from tests.support.auth import bearer, token
from workflow.queries import get_case, get_customer


def _api(live_hub: LiveHub, path: str, **params: str) -> dict[str, Any]:
    """What the hub's API answers an admin (the figures the pages must agree with)."""
    response = httpx2.get(f"{live_hub.base_url}{path}", params=params, headers=bearer("admin"), timeout=10)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def test_login_and_logout(browser: Browser) -> None:
    page = browser.page()
    page.goto(f"{browser.base_url}/ui/overview")
    # Without a session the dashboard sends the user to the login form.
    page.wait_for_url("**/ui/login")
    expect(page.locator("h1")).to_have_text("登录")
    page.fill("#token", "not.a.token")
    page.click("#login")
    expect(page.locator("#login-error")).to_contain_text("令牌无效")
    screenshot(page, "login")
    browser.log_in(page, token("viewer", sub="王经理"))
    expect(page.locator("h1")).to_have_text("流程总览")
    expect(page.locator("#who")).to_contain_text("王经理")
    session = next(cookie for cookie in browser.context.cookies() if cookie["name"] == "yekuo_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    page.click("#logout")
    page.wait_for_url("**/ui/login")
    assert not [cookie for cookie in browser.context.cookies() if cookie["name"] == "yekuo_session"]
    page.goto(f"{browser.base_url}/ui/cases")
    page.wait_for_url("**/ui/login")


def _shown(page: Page, name: str) -> float | None:
    value = page.locator(f'[data-figure="{name}"]').get_attribute("data-value")
    return float(value) if value else None


def test_the_overview_shows_the_figures_of_the_process_analytics(browser: Browser, live_hub: LiveHub) -> None:
    page = browser.page()
    browser.log_in(page, token("viewer"))
    for params in ({"basis": "opened"}, {"basis": "energised"}):
        query = "&".join(f"{key}={value}" for key, value in params.items())
        page.goto(f"{browser.base_url}/ui/overview?{query}")
        figures = _api(live_hub, "/v1/analytics/process", **params)
        overall = figures["overall"]
        working = overall["days_to_power"]["working_days"]
        assert _shown(page, "energised") == overall["energised"]
        assert _shown(page, "working_days_mean") == working["mean"]
        assert _shown(page, "working_days_p50") == working["p50"]
        assert _shown(page, "working_days_p90") == working["p90"]
        assert _shown(page, "within_commitment_share") == overall["within_commitment_share"]
        assert _shown(page, "within_target_share") == overall["within_target_share"]
        assert _shown(page, "information_errors") == figures["findings"]["by_category"].get(
            "information_error", 0
        )
        for cause, rework in overall["rework"].items():
            cell = page.locator(f'#rework tr[data-cause="{cause}"] td[data-returns]')
            assert cell.get_attribute("data-returns") == str(rework["returns"]), cause
    listed = _api(live_hub, "/v1/applications", limit="200")["items"]
    assert _shown(page, "open_cases") == len([item for item in listed if item["status"] == "open"])
    # The charts are drawn by ECharts, served by the hub itself.
    expect(page.locator("#chart-trend canvas")).to_have_count(1)
    expect(page.locator("#chart-bottleneck-stages canvas")).to_have_count(1)
    assert any(url.endswith("/ui/static/vendor/echarts.min.js") for url in browser.requested)
    screenshot(page, "overview")


def test_a_case_moves_stage_on_screen_when_its_event_arrives(browser: Browser, live_hub: LiveHub) -> None:
    moving = next(
        row["APP_NO"]
        for row in live_hub.world.all_applications()
        if _api(live_hub, f"/v1/applications/{row['APP_NO']}")["status"] == "open"
    )
    before = _api(live_hub, f"/v1/applications/{moving}")["stage"]
    case_page = browser.page()
    browser.log_in(case_page, token("viewer"))
    overview = browser.page()
    overview.goto(f"{browser.base_url}/ui/overview?basis=opened")
    case_page.goto(f"{browser.base_url}/ui/cases/{moving}")
    expect(case_page.locator("#current-stage")).to_have_attribute("data-stage", before)
    expect(case_page.locator("#live")).to_contain_text("已连接")
    expect(overview.locator("#live")).to_contain_text("已连接")
    counts_before = _stage_counts(overview)

    live_hub.world.advance(moving)
    wait_for(
        lambda: _api(live_hub, f"/v1/applications/{moving}")["stage"] != before, "the hub to move the case"
    )
    after = _api(live_hub, f"/v1/applications/{moving}")["stage"]

    # Neither page is reloaded: the event feed's stage change makes them fetch what changed.
    expect(case_page.locator("#current-stage")).to_have_attribute("data-stage", after, timeout=30_000)
    expect(case_page.locator(f'#visits tr[data-stage="{after}"]').last).to_be_visible()
    wait_for(lambda: _stage_counts(overview) != counts_before, "the overview to refresh", timeout_s=30)
    counts_after = _stage_counts(overview)
    assert counts_after.get(before, 0) == counts_before.get(before, 0) - 1
    screenshot(case_page, "case")
    screenshot(overview, "overview-live")


def _stage_counts(page: Page) -> dict[str, int]:
    rows = page.locator("#stage-counts tr[data-stage]")
    return {
        str(rows.nth(index).get_attribute("data-stage")): int(
            rows.nth(index).locator('[data-count="cases"]').inner_text()
        )
        for index in range(rows.count())
    }


def test_a_viewer_sees_personal_data_masked(browser: Browser, live_hub: LiveHub) -> None:
    with live_hub.engine.connect() as conn:
        number, phone = next(
            (row["APP_NO"], contact["phone"])
            for row in live_hub.world.all_applications()
            if (case := get_case(conn, row["APP_NO"])) is not None
            and (customer := get_customer(conn, case["customer_no"])) is not None
            for contact in customer.get("contacts", [])[:1]
            if contact.get("phone")
        )
    page = browser.page()
    browser.log_in(page, token("viewer"))
    page.goto(f"{browser.base_url}/ui/cases/{number}")
    shown = page.locator("#contacts td.phone").first.inner_text()
    assert shown != phone and shown.endswith(phone[-4:]) and set(shown[:-4]) == {"*"}
    assert phone not in page.content()
    expect(page.locator("text=个人信息已脱敏")).to_be_visible()
    screenshot(page, "case-masked")
    # The same page for a user granted pii:read shows the number.
    other = browser.page()
    browser.log_in(other, token("viewer", scopes=[PII_READ], sub="客服-07"))
    other.goto(f"{browser.base_url}/ui/cases/{number}")
    assert other.locator("#contacts td.phone").first.inner_text() == phone


def test_the_case_list_filters_and_pages(browser: Browser, live_hub: LiveHub) -> None:
    page = browser.page()
    browser.log_in(page, token("viewer"))
    page.goto(f"{browser.base_url}/ui/cases?limit=10")
    first = page.locator("#case-list tr[data-application]").all_inner_texts()
    assert len(first) == 10
    screenshot(page, "cases")
    page.click("#next-page")
    second = page.locator("#case-list tr[data-application]").all_inner_texts()
    assert second and not set(second) & set(first)
    page.select_option("select[name=stage]", "acceptance")
    page.click("#filters button")
    stages = page.locator("#case-list td[data-stage]").evaluate_all(
        "cells => cells.map(c => c.dataset.stage)"
    )
    assert set(stages) <= {"acceptance"}
    listed = _api(live_hub, "/v1/applications", stage="acceptance", limit="200")["items"]
    assert len(stages) == min(len(listed), 50)


def test_no_request_leaves_127_0_0_1(browser: Browser, live_hub: LiveHub) -> None:
    page = browser.page()
    browser.log_in(page, token("viewer"))
    number = live_hub.world.all_applications()[0]["APP_NO"]
    for path in ("/ui/overview", "/ui/cases", f"/ui/cases/{number}"):
        page.goto(f"{browser.base_url}{path}")
    expect(page.locator("#live")).to_contain_text("已连接")
    # Scripts, styles, the charting library and the CJK font all came from the hub itself; the browser
    # fixture then checks that no request at all went elsewhere.
    served = {url.split("?")[0].removeprefix(browser.base_url) for url in browser.requested}
    assert {
        "/ui/static/ui.css",
        "/ui/static/overview.js",
        "/ui/static/case.js",
        "/ui/static/vendor/echarts.min.js",
        "/ui/static/fonts/NotoSansSC-Regular.otf",
        "/v1/events/stream",
    } <= served
