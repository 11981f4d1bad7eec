"""The dashboard's pages show what the API serves for the same data: the overview's figures, the case list's
filters and paging, and a case with personal values masked unless the user may read them (and audited).

The cases run in March 2026 (no holiday: working days are weekdays); the hub's clock is frozen at 1 June.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ground.clock import frozen_at
from ground.settings import PROJECT_ROOT
from pipeline.decoded import DecodedEvent
from store.audit import list_entries
from store.schema import consistency_findings, stage_visits
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer
from tests.unit.workflow.events import customer_event, track_stages
from workflow.cases import CaseTracker
from workflow.config import load_workflow_config

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
RESIDENTIAL = "lv_residential"


@pytest.fixture
def engine(sqlite_engine: Engine) -> Iterator[Engine]:
    tracker = CaseTracker(load_workflow_config(PROJECT_ROOT))
    with frozen_at(NOW):
        with sqlite_engine.begin() as conn:
            tracker(
                conn, DecodedEvent(customer_event("C1", contacts=[{"name": "李明", "phone": "13800001111"}]))
            )
            # A1 energised after 2 working days; A2 with one return (documents missing), energised after 10.
            a1 = [("acceptance", "03-02"), ("energisation", "03-03"), ("archived", "03-04")]
            track_stages(tracker, conn, "A1", org_no="41401", days=a1)
            a2 = [("acceptance", "03-02"), ("energisation", "03-05"), ("acceptance", "03-06")]
            a2 += [("energisation", "03-09"), ("archived", "03-16")]
            track_stages(tracker, conn, "A2", org_no="41402", days=a2)
            conn.execute(
                stage_visits.update()
                .where(stage_visits.c.application_no == "A2", stage_visits.c.exit_kind == "rework")
                .values(exit_cause="documents_missing")
            )
            # Open in June, their limits long past (all overdue): A3 and A4 in acceptance, A5 in energisation.
            track_stages(tracker, conn, "A3", org_no="41401", days=[("acceptance", "03-17")])
            track_stages(tracker, conn, "A4", org_no="41401", days=[("acceptance", "03-18")])
            track_stages(
                tracker, conn, "A5", org_no="41402", days=[("acceptance", "03-18"), ("energisation", "03-19")]
            )
            conn.execute(
                consistency_findings.insert().values(
                    application_no="A2",
                    rule="name_agrees",
                    category="information_error",
                    found_at=datetime(2026, 3, 3, 2, tzinfo=UTC),
                    systems=["marketing", "pms"],
                    details={},
                    message="户名不一致",
                )
            )
        yield sqlite_engine


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with frozen_at(NOW):
        yield TestClient(hub_app(engine, auth=TEST_AUTH), headers=bearer("viewer"))


def _figure(page: str, name: str) -> str:
    found = re.search(rf'data-figure="{name}" data-value="([^"]*)"', page)
    assert found is not None, name
    return found[1]


def test_the_overview_shows_the_figures_of_the_process_analytics(client: TestClient) -> None:
    for params in ({}, {"unit": "41402"}, {"from": "2026-03-01", "to": "2026-03-10"}):
        page = client.get("/ui/overview", params=params).text
        api = client.get("/v1/analytics/process", params=params).json()["overall"]
        working = api["days_to_power"]["working_days"]
        assert int(_figure(page, "energised")) == api["energised"], params
        for name in ("mean", "p50", "p90"):
            shown = _figure(page, f"working_days_{name}")
            assert (float(shown) if shown else None) == working[name], (params, name)
        shown_share = _figure(page, "within_commitment_share")
        assert (float(shown_share) if shown_share else None) == api["within_commitment_share"], params
    everything = client.get("/ui/overview").text
    # A1 took 2 working days, A2 10 (2 to 16 March): mean 6; A2 missed its 5-day commitment: 50 %.
    assert (_figure(everything, "working_days_mean"), _figure(everything, "within_commitment_share")) == (
        "6.0",
        "0.5",
    )
    assert ">6<" in everything and ">50.0%<" in everything
    assert _figure(everything, "information_errors") == "1"
    assert re.search(
        r'data-cause="documents_missing"><td>资料不全</td><td class="n" data-value="1">', everything
    )


def test_the_overviews_stage_counts_are_what_the_listing_filters_give(client: TestClient) -> None:
    page = client.get("/ui/overview").text
    counts = dict(
        re.findall(
            r'<tr data-stage="(\w+)"><td><a [^>]*>[^<]*</a></td><td class="n" data-count="cases">(\d+)<', page
        )
    )
    assert counts == {"acceptance": "2", "energisation": "1"}
    for stage, shown in counts.items():
        listed = client.get("/v1/applications", params={"stage": stage, "limit": 200}).json()["items"]
        assert len([item for item in listed if item["status"] == "open"]) == int(shown)
    overdue = client.get("/v1/applications", params={"overdue": "true", "limit": 200}).json()["items"]
    assert _figure(page, "overdue") == str(len(overdue)) and _figure(page, "open_cases") == "3"
    # Stage names come from workflow/stages.yaml.
    assert "业务受理" in page and "装表接电" in page


def test_the_overview_panel_refreshes_as_json_with_the_same_filters(client: TestClient) -> None:
    body = client.get("/ui/overview/figures", params={"unit": "41401"}).json()
    assert 'data-figure="open_cases" data-value="2"' in body["html"]
    assert body["charts"]["by_stage"]["names"] == ["业务受理"]
    assert body["charts"]["trend"]["months"] == ["2026-03"]


def test_the_case_list_pages_with_the_apis_cursor(client: TestClient) -> None:
    first = client.get("/ui/cases", params={"limit": 2, "unit": "41401"}).text
    assert re.findall(r'<tr data-application="(\w+)"', first) == ["A1", "A3"]
    following = re.search(r'href="/ui/cases\?([^"]+)" id="next-page"', first)
    assert following is not None
    second = client.get(f"/ui/cases?{unescape(following[1])}").text
    assert re.findall(r'<tr data-application="(\w+)"', second) == ["A4"]
    assert 'id="next-page"' not in second
    overdue = client.get("/ui/cases", params={"overdue": "true"}).text
    assert re.findall(r'<tr data-application="(\w+)" class="overdue"', overdue) == ["A3", "A4", "A5"]


def test_a_viewer_sees_the_contact_phone_masked_and_leaves_no_audit_entry(
    client: TestClient, engine: Engine
) -> None:
    page = client.get("/ui/cases/A3").text
    assert "13800001111" not in page and "*******1111" in page
    assert "个人信息已脱敏" in page
    with engine.connect() as conn:
        assert list_entries(conn, action="pii.read") == []


def test_with_pii_read_the_phone_is_shown_and_the_read_audited(client: TestClient, engine: Engine) -> None:
    page = client.get("/ui/cases/A3", headers=bearer("viewer", scopes=["pii:read"], sub="agent-7")).text
    assert "13800001111" in page
    with engine.connect() as conn:
        reads = list_entries(conn, action="pii.read")
    assert [(entry.actor, entry.subject, entry.detail["fields"]) for entry in reads] == [
        ("agent-7", "customer/C1", ["contacts.[].phone"])
    ]


def test_the_case_page_shows_visits_against_their_limits(client: TestClient) -> None:
    page = client.get("/ui/cases/A2").text
    visits = re.findall(r'<tr data-stage="(\w+)"( class="overdue")?>', page)
    assert [stage for stage, _ in visits] == [
        "acceptance",
        "energisation",
        "acceptance",
        "energisation",
        "archived",
    ]
    # The first acceptance ran Mon 2 to Thu 5 March 09:00 (3 working days) against its limit of 2.
    assert visits[0] == ("acceptance", ' class="overdue"')
    assert "3.00 / 2" in page
    # The first energisation visit went back to acceptance for missing documents.
    assert page.count("返工 (资料不全)") == 1
    assert "户名不一致" in page and "信息错误" in page
    assert "尚无可行性评估" in page and "scheme.pdf" not in page
    assert client.get("/ui/cases/NOPE").status_code == 404


def test_pages_load_nothing_from_elsewhere_and_say_so_in_their_policy(client: TestClient) -> None:
    for path in ("/ui/overview", "/ui/cases", "/ui/cases/A1", "/ui/login"):
        response = client.get(path)
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"
        for url in re.findall(r'(?:src|href)="([^"]+)"', response.text):
            assert url.startswith("/"), (path, url)
    assert client.get("/ui/static/nope.js").status_code == 404
    assert client.get("/ui/static/ui.css").headers["content-type"].startswith("text/css")
