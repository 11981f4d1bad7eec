"""The customers' progress lookup: the right code shows stages, dates and units with the name masked; a wrong
code is answered exactly as an unknown number; lookups are limited per address and per number.

The cases run in March 2026; the hub's clock is frozen at 1 June 2026, and the limits' windows are moved
along by advancing that clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.context import ApiContext, install_context
from api.problems import install_problem_handlers
from api.progress import router as progress_router
from ground import clock
from ground.clock import FixedClock
from ground.settings import PROJECT_ROOT, ProgressSettings
from pipeline.decoded import DecodedEvent
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH
from tests.unit.workflow.events import customer_event, track_stages
from workflow.cases import CaseTracker
from workflow.config import load_workflow_config
from workflow.progress import ProgressLookup, RateLimitedError, progress_of

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
PHONE = "138-0000-1111"  # the code is its last 4 digits, 1111, whatever separators it was stored with
CONFIG = load_workflow_config(PROJECT_ROOT)


@pytest.fixture
def hub_clock() -> Iterator[FixedClock]:
    fixed = FixedClock(NOW)
    with clock.use(fixed):
        yield fixed


@pytest.fixture
def engine(sqlite_engine: Engine, hub_clock: FixedClock) -> Engine:
    tracker = CaseTracker(CONFIG)
    with sqlite_engine.begin() as conn:
        tracker(
            conn, DecodedEvent(customer_event("C1", name="张伟", contacts=[{"name": "张伟", "phone": PHONE}]))
        )
        tracker(conn, DecodedEvent(customer_event("C2", name="王芳", contacts=[])))
        # A1 energised: accepted Mon 2 March, energised Tue 3, archived Wed 4. A3 still in acceptance.
        track_stages(
            tracker,
            conn,
            "A1",
            customer_no="C1",
            days=[("acceptance", "03-02"), ("energisation", "03-03"), ("archived", "03-04")],
        )
        track_stages(tracker, conn, "A3", customer_no="C1", days=[("acceptance", "03-17")])
        # A customer without a registered phone: no code opens it.
        track_stages(tracker, conn, "A9", customer_no="C2", days=[("acceptance", "03-18")])
    return sqlite_engine


def _stage_names() -> dict[str, str]:
    return dict(CONFIG.stages)


def test_the_right_code_shows_stages_dates_and_units_with_the_name_masked(engine: Engine) -> None:
    with engine.connect() as conn:
        found = progress_of(conn, "A1", "1111", stage_names=_stage_names())
    assert found is not None
    assert found.customer_name == "张*"
    assert (found.status, found.outcome, found.stage) == ("closed", "energised", "archived")
    assert [(step.stage, step.stage_name, step.unit) for step in found.steps] == [
        ("acceptance", "业务受理", "41401"),
        ("energisation", "装表接电", "41401"),
        ("archived", CONFIG.stages["archived"], "41401"),
    ]
    assert all(step.observed for step in found.steps)  # the hub saw each stage begin
    # 09:00 in Asia/Shanghai is 01:00 UTC: acceptance ran from 2 March to the energisation on 3 March.
    first = found.steps[0]
    assert (first.entered_at, first.left_at) == (
        datetime(2026, 3, 2, 1, tzinfo=UTC),
        datetime(2026, 3, 3, 1, tzinfo=UTC),
    )


def test_a_wrong_code_is_told_as_an_unknown_number(engine: Engine) -> None:
    with engine.connect() as conn:
        assert progress_of(conn, "A1", "2222") is None
        assert progress_of(conn, "NOPE", "1111") is None
        # No phone registered: no code matches, not even one made of what pads a missing phone.
        assert progress_of(conn, "A9", "0000") is None
        assert progress_of(conn, "A9", "\x00\x00\x00\x00") is None


@pytest.fixture
def api(engine: Engine) -> TestClient:
    app = FastAPI()
    lookup = ProgressLookup(
        engine, ProgressSettings(per_client=3, per_application=2, window_s=600), stage_names=_stage_names
    )
    install_context(app, ApiContext(engine, progress=lookup))
    app.include_router(progress_router)
    install_problem_handlers(app)
    return TestClient(app)


def test_the_api_answers_a_wrong_code_and_an_unknown_number_alike(api: TestClient) -> None:
    wrong = api.post("/v1/progress", json={"application_no": "A1", "code": "2222"})
    unknown = api.post("/v1/progress", json={"application_no": "NOPE", "code": "2222"})
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json()
    assert wrong.json()["code"] == "progress-not-found"


def test_the_api_shows_no_personal_data_but_the_masked_name(api: TestClient) -> None:
    response = api.post("/v1/progress", json={"application_no": "A3", "code": "1111"})
    assert response.status_code == 200
    body = response.json()
    assert body["customer_name"] == "张*" and body["stage_name"] == "业务受理"
    assert body["steps"][0]["unit"] == "41401" and body["steps"][0]["left_at"] is None
    for personal in ("张伟", "1111", "0000", "C1"):
        assert personal not in response.text


def test_a_code_that_is_not_4_digits_is_refused_before_any_lookup(api: TestClient) -> None:
    for code in ("111", "11111", "abcd", ""):
        response = api.post("/v1/progress", json={"application_no": "A1", "code": code})
        assert response.status_code == 422, code


def test_lookups_are_limited_per_client_address(api: TestClient, hub_clock: FixedClock) -> None:
    # per_client=3: three lookups of three numbers in the window; the fourth waits for the first to age out.
    for number in ("A1", "A3", "NOPE"):
        assert api.post("/v1/progress", json={"application_no": number, "code": "1111"}).status_code != 429
    hub_clock.advance(timedelta(seconds=100))
    refused = api.post("/v1/progress", json={"application_no": "A9", "code": "1111"})
    assert refused.status_code == 429 and refused.json()["code"] == "too-many-requests"
    # The first lookup ages out of the 600 s window 500 s from now.
    assert refused.headers["retry-after"] == "500"
    hub_clock.advance(timedelta(seconds=500))
    assert api.post("/v1/progress", json={"application_no": "A1", "code": "1111"}).status_code == 200


def test_lookups_of_one_number_are_limited_from_any_address(engine: Engine) -> None:
    lookup = ProgressLookup(engine, ProgressSettings(per_client=10, per_application=2, window_s=600))
    assert lookup.look_up("10.0.0.1", "A1", "0001") is None
    assert lookup.look_up("10.0.0.2", "A1", "0002") is None
    with pytest.raises(RateLimitedError):
        lookup.look_up("10.0.0.3", "A1", "1111")  # even the right code: the number's budget is spent
    assert lookup.look_up("10.0.0.3", "A3", "1111") is not None


def test_a_lookup_refused_for_its_address_does_not_spend_the_numbers_budget(engine: Engine) -> None:
    lookup = ProgressLookup(engine, ProgressSettings(per_client=1, per_application=1, window_s=600))
    assert lookup.look_up("10.0.0.9", "A3", "0000") is None
    with pytest.raises(RateLimitedError):
        lookup.look_up("10.0.0.9", "A1", "0000")
    # A1 was never looked up: its customer still gets in from another address.
    assert lookup.look_up("10.0.0.1", "A1", "1111") is not None


@pytest.fixture
def hub(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("YEKUO_PROGRESS__PER_CLIENT", "3")
    return TestClient(hub_app(engine, auth=TEST_AUTH))


def test_the_public_form_shows_the_progress_without_a_login(hub: TestClient) -> None:
    form = hub.get("/ui/progress")
    assert form.status_code == 200 and 'id="progress-form"' in form.text
    page = hub.post("/ui/progress", data={"application_no": "A1", "code": "1111"})
    assert page.status_code == 200
    assert re.findall(r'<li data-stage="(\w+)"', page.text) == ["acceptance", "energisation", "archived"]
    assert "张*" in page.text and "张伟" not in page.text and PHONE not in page.text
    assert 'id="code"' in page.text and 'value="1111"' not in page.text  # the code is not echoed back


def test_the_form_answers_a_wrong_code_as_an_unknown_number_and_shares_the_apis_limit(
    hub: TestClient,
) -> None:
    wrong = hub.post("/ui/progress", data={"application_no": "A1", "code": "2222"})
    unknown = hub.post("/ui/progress", data={"application_no": "A2", "code": "2222"})
    assert wrong.status_code == unknown.status_code == 404
    # The pages differ only in the number echoed into the form.
    assert wrong.text.replace('value="A1"', "") == unknown.text.replace('value="A2"', "")
    assert "未查询到该申请" in wrong.text
    # YEKUO_PROGRESS__PER_CLIENT=3: the third lookup goes through the API, the fourth is refused on the form.
    assert hub.post("/v1/progress", json={"application_no": "A3", "code": "1111"}).status_code == 200
    refused = hub.post("/ui/progress", data={"application_no": "A3", "code": "1111"})
    assert refused.status_code == 429 and "查询过于频繁" in refused.text
    assert int(refused.headers["retry-after"]) > 0
