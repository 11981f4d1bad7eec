"""POST /v1/assistant/ask and the chat box of /ui/progress, on the hub app with the shipped knowledge base
and its real index: knowledge answers with their entry, refusals with the hotline, progress answers from
the case through the progress lookup's budget, and the limits.

The case runs in March 2026; the hub clock is frozen at 1 June 2026.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from assistant.gaps import list_gaps
from ground import clock
from ground.clock import FixedClock
from ground.errors import ConfigError
from ground.settings import PROJECT_ROOT
from pipeline.decoded import DecodedEvent
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH
from tests.unit.workflow.events import customer_event, track_stages
from workflow.cases import CaseTracker
from workflow.config import load_workflow_config

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
NUMBER = "2026031700001"
PROGRESS = f"我的申请{NUMBER}到哪一步了？验证码1111"


@pytest.fixture
def engine(sqlite_engine: Engine) -> Iterator[Engine]:
    with clock.use(FixedClock(NOW)):
        tracker = CaseTracker(load_workflow_config(PROJECT_ROOT))
        with sqlite_engine.begin() as conn:
            tracker(
                conn,
                DecodedEvent(
                    customer_event("C1", name="张伟", contacts=[{"name": "张伟", "phone": "13800001111"}])
                ),
            )
            track_stages(tracker, conn, NUMBER, customer_no="C1", days=[("acceptance", "03-17")])
        yield sqlite_engine


@pytest.fixture
def hub(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("YEKUO_PROGRESS__PER_CLIENT", "3")
    monkeypatch.setenv("YEKUO_ASSISTANT__PER_CLIENT", "5")
    return TestClient(hub_app(engine, auth=TEST_AUTH))


def test_a_knowledge_question_is_answered_with_its_entry(hub: TestClient) -> None:
    response = hub.post("/v1/assistant/ask", json={"question": "报装收不收费"})
    assert response.status_code == 200
    body = response.json()
    assert (body["kind"], body["entry_id"], body["progress"]) == ("knowledge", "fees", None)
    assert body["entry_question"] == "申请用电要交钱吗？都有哪些费用？"
    assert body["source"] and body["text"] and 0 < body["score"] <= 1


def test_a_question_outside_the_knowledge_base_is_refused_with_the_hotline_and_kept(
    hub: TestClient, engine: Engine
) -> None:
    body = hub.post("/v1/assistant/ask", json={"question": "我叫张伟，这个月电价每度多少钱"}).json()
    assert body["kind"] == "refused" and "95598" in body["text"] and body["entry_id"] is None
    with engine.connect() as conn:
        kept = list_gaps(conn)
    assert [(gap.question, gap.kind) for gap in kept] == [("我叫【姓名】,这个月电价每度多少钱", "unanswered")]


def test_a_progress_question_is_answered_from_the_case_with_the_name_masked(hub: TestClient) -> None:
    response = hub.post("/v1/assistant/ask", json={"question": PROGRESS})
    body = response.json()
    assert body["kind"] == "progress" and body["entry_id"] is None
    facts = body["progress"]
    assert (facts["stage"], facts["stage_name"], facts["responsible"]) == ("acceptance", "业务受理", "41401")
    assert facts["overdue"] is True and facts["stage_working_days_left"] < 0
    assert "“业务受理”环节" in body["text"] and "我们已督办" in body["text"]
    assert (
        facts["customer_name"] == "张*" and "张伟" not in response.text and "13800001111" not in response.text
    )


def test_a_wrong_code_is_answered_exactly_as_an_unknown_number(hub: TestClient) -> None:
    wrong = hub.post("/v1/assistant/ask", json={"question": f"我的申请{NUMBER}到哪一步了？验证码2222"})
    unknown = hub.post("/v1/assistant/ask", json={"question": "我的申请2026031799999到哪一步了？验证码2222"})
    assert wrong.status_code == unknown.status_code == 200
    assert wrong.json() == unknown.json()
    assert wrong.json()["progress"] is None and "未查询到该申请" in wrong.json()["text"]


def test_the_chat_box_spends_the_progress_lookups_budget(hub: TestClient) -> None:
    # YEKUO_PROGRESS__PER_CLIENT=3: two lookups on the API, one by the assistant; the next is refused.
    for _ in range(2):
        assert hub.post("/v1/progress", json={"application_no": NUMBER, "code": "1111"}).status_code == 200
    assert hub.post("/v1/assistant/ask", json={"question": PROGRESS}).status_code == 200
    refused = hub.post("/v1/assistant/ask", json={"question": PROGRESS})
    assert refused.status_code == 429 and refused.json()["code"] == "too-many-requests"
    assert int(refused.headers["retry-after"]) > 0
    assert hub.post("/v1/progress", json={"application_no": NUMBER, "code": "1111"}).status_code == 429


def test_questions_are_limited_per_client(hub: TestClient) -> None:
    # YEKUO_ASSISTANT__PER_CLIENT=5, whatever the questions are.
    for _ in range(5):
        assert hub.post("/v1/assistant/ask", json={"question": "报装收不收费"}).status_code == 200
    refused = hub.post("/v1/assistant/ask", json={"question": "报装收不收费"})
    assert refused.status_code == 429 and refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "600"


@pytest.mark.parametrize("question", ["", "问" * 501])
def test_an_empty_or_overlong_question_is_refused(hub: TestClient, question: str) -> None:
    response = hub.post("/v1/assistant/ask", json={"question": question})
    assert response.status_code == 422 and response.json()["code"] == "validation-failed"


def test_the_openapi_document_names_the_assistants_models(hub: TestClient) -> None:
    schemas = hub.get("/openapi.json").json()["components"]["schemas"]
    assert {"AssistantQuestion", "AssistantReply", "AssistantProgressFacts"} <= set(schemas)


def test_the_progress_page_answers_in_its_chat_box(hub: TestClient) -> None:
    form = hub.get("/ui/progress")
    assert 'id="ask-form"' in form.text and 'id="progress-form"' in form.text
    knowledge = hub.post("/ui/progress/ask", data={"question": "报装收不收费"})
    assert knowledge.status_code == 200
    assert re.search(r'<section id="answer" data-kind="knowledge" data-entry="fees">', knowledge.text)
    assert "报装收不收费</textarea>" in knowledge.text
    progress = hub.post("/ui/progress/ask", data={"question": PROGRESS})
    assert 'data-kind="progress"' in progress.text and "“业务受理”环节" in progress.text
    # The stages show below as after a lookup, and the question with its code is not echoed back.
    assert re.findall(r'<li data-stage="(\w+)"', progress.text) == ["acceptance"]
    assert "1111" not in progress.text and "张伟" not in progress.text
    empty = hub.post("/ui/progress/ask", data={"question": "  "})
    assert empty.status_code == 422 and 'id="ask-error"' in empty.text
    # A refused question is not shown back either: it may hold a code.
    too_long = hub.post("/ui/progress/ask", data={"question": "验证码8765" + "进度" * 300})
    assert too_long.status_code == 422 and "8765" not in too_long.text


def test_an_unknown_province_stops_the_app_at_start_up(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YEKUO_ASSISTANT__PROVINCE", "atlantis")
    with pytest.raises(ConfigError, match="atlantis"):
        hub_app(engine, auth=TEST_AUTH)


def test_thresholds_the_wrong_way_round_stop_the_app_at_start_up(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YEKUO_ASSISTANT__ANSWER_THRESHOLD", "0.6")
    with pytest.raises(ConfigError, match="ANSWER_THRESHOLD"):
        hub_app(engine, auth=TEST_AUTH)
