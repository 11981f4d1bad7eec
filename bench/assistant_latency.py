"""Assistant answer latency: Assistant.ask over the full shipped knowledge base and a database of cases.

The questions mix the three paths of an answer: knowledge questions (each entry's question and its
paraphrases, as customers word them), questions outside the knowledge base that are refused with the
hotline, and progress questions with an application number and its verification code, answered from a
SQLite database seeded with applications of every customer class through the workflow's own case tracker
(stages entered at different times, so some are on track, some at risk, some overdue, some closed, some
with provisional deadlines). The rate limits are set high enough that no question is refused for them; the
hub clock is fixed, so every run answers the same.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from assistant.gaps import GapLog
from assistant.knowledge import KnowledgeBase, load_knowledge
from assistant.retrieval import KnowledgeIndex
from assistant.service import Assistant, AssistantAnswer
from canonical_model.envelope import CloudEvent
from canonical_model.events import APPLICATION_CHANGED, CUSTOMER_CHANGED
from canonical_model.registry import schema_uri
from ground import clock
from ground.clock import FixedClock
from ground.settings import ProgressSettings
from pipeline.decoded import DecodedEvent
from store.database import create_engine, create_schema
from workflow.cases import CaseTracker
from workflow.config import WorkflowConfig, load_workflow_config
from workflow.progress import ProgressLookup
from workflow.workdays import SHANGHAI, WorkingCalendar, local_date

ROOT = Path(__file__).resolve().parents[1]
# A Thursday, 10:00 in Shanghai: stages entered today have begun (at 09:00), and deadlines a few working
# days on reach late December, whose status waits for next year's notice.
NOW = datetime(2026, 12, 10, 2, 0, tzinfo=UTC)
# The calendar as of 2026: next year's arrangement is not published, so deadlines from 15 December on are
# provisional.
PUBLISHED_YEARS = range(2001, 2027)
ORG_NO = "41401"
STAGES = {
    "lv_residential": ("acceptance", "energisation", "archived"),
    "lv_non_residential": ("acceptance", "energisation", "archived"),
    "hv_single_source": ("acceptance", "scheme_reply", "external_works", "energisation", "archived"),
    "hv_dual_source": ("acceptance", "scheme_reply", "external_works", "energisation", "archived"),
}
CLASSES = tuple(STAGES)
_SURNAMES = "张王李赵刘陈杨黄周吴"
_GIVEN = ("伟", "芳", "娜", "敏静", "强", "磊", "军", "洋", "勇", "秀英")
# Questions no entry answers: bills, tariffs, outages, anything not about a supply.
OUT_OF_SCOPE = (
    "我家这个月电费怎么这么高",
    "电价每度多少钱",
    "停电了要找谁抢修",
    "电表读数不对怎么办",
    "发票怎么开",
    "预付费电卡丢了",
    "今天天气怎么样",
    "附近有什么好吃的餐馆",
)


@dataclass(frozen=True)
class SeededApplication:
    """An application of the seeded database and the verification code that opens it."""

    application_no: str
    code: str
    customer_name: str


@dataclass(frozen=True)
class AssistantLatency:
    """Latency of one kind of question, milliseconds."""

    kind: str
    questions: int
    # Answers of the kind the question was asked as: a knowledge answer, a refusal, progress facts.
    answered_as_asked: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class AssistantBench:
    """Every kind and all of them together, over how many entries and cases."""

    entries: int
    cases: int
    results: tuple[AssistantLatency, ...]


def _event(event_type: str, subject: str, schema: str, sequence: int, data: dict[str, Any]) -> DecodedEvent:
    event = CloudEvent(
        id=str(uuid.uuid4()),
        source="/marketing/application" if event_type == APPLICATION_CHANGED else "/marketing/customer",
        type=event_type,
        subject=subject,
        time=NOW,
        dataschema=schema_uri(schema),
        correlationid=str(uuid.uuid4()),
        sequence=sequence,
        data=data,
    )
    return DecodedEvent(event)


def _at_nine(day: date) -> str:
    return datetime.combine(day, day_time(9), SHANGHAI).isoformat()


def _stage_days(
    rng: random.Random, index: int, limit: int | None, stages: int, calendar: WorkingCalendar, today: date
) -> list[date]:
    """The days the application entered each of its stages: the current one entered so that, by index,
    it is fresh, due today (at risk), long overdue, or a few days in."""
    if limit is None or index % 4 == 0:
        current = today
    elif index % 4 == 1:
        current = calendar.subtract_working_days(today, limit)
    elif index % 4 == 2:
        current = today - timedelta(days=limit * 2 + 10)
    else:
        current = today - timedelta(days=rng.randint(1, 4))
    days = [current]
    for _ in range(stages - 1):
        days.insert(0, days[0] - timedelta(days=rng.randint(1, 6)))
    return days


def seed_applications(
    engine: Engine,
    count: int,
    *,
    config: WorkflowConfig,
    calendar: WorkingCalendar,
    now: datetime = NOW,
    seed: int = 17,
) -> list[SeededApplication]:
    """count applications of every class at every point of their flow, fed to the case tracker, each with
    its own customer and registered mobile; every 13th is withdrawn."""
    rng = random.Random(seed)
    tracker = CaseTracker(config, calendar)
    today = local_date(now)
    seeded = []
    with engine.begin() as conn:
        for index in range(count):
            customer_class = CLASSES[index % len(CLASSES)]
            flow = STAGES[customer_class]
            reached = 1 + (index // len(CLASSES)) % len(flow)
            stages = list(flow[:reached])
            if index % 13 == 6:
                stages.append("withdrawn")
            flow_config = config.flow_named(_flow_name(customer_class))
            step = flow_config.step(stages[-1]) if flow_config else None
            days = _stage_days(rng, index, step.limit_days if step else None, len(stages), calendar, today)
            number = f"2026{index:09d}"
            code = f"{index % 10_000:04d}"
            name = _SURNAMES[index % len(_SURNAMES)] + _GIVEN[index // len(_SURNAMES) % len(_GIVEN)]
            customer_no = f"C{index:06d}"
            phone = f"139{index:08d}"
            tracker(
                conn,
                _event(
                    CUSTOMER_CHANGED,
                    customer_no,
                    "customer.v1",
                    1,
                    {
                        "customer_no": customer_no,
                        "name": name,
                        "category": "residential"
                        if customer_class == "lv_residential"
                        else "general_commercial",
                        "contacts": [{"name": name, "phone": phone}],
                    },
                ),
            )
            for sequence, (stage, day) in enumerate(zip(stages, days, strict=True), start=1):
                tracker(
                    conn,
                    _event(
                        APPLICATION_CHANGED,
                        number,
                        "application.v1",
                        sequence,
                        {
                            "application_no": number,
                            "business_type": "new_connection",
                            "customer_no": customer_no,
                            "requested_capacity_kva": _capacity(customer_class),
                            "customer_class": customer_class,
                            "channel": "service_hall",
                            "submitted_at": _at_nine(days[0]),
                            "updated_at": _at_nine(day),
                            "org_no": ORG_NO,
                            "stage": stage,
                        },
                    ),
                )
            seeded.append(SeededApplication(number, code, name))
    return seeded


def _flow_name(customer_class: str) -> str:
    return {
        "lv_residential": "lv_residential_2_step",
        "lv_non_residential": "lv_zero_visit_2_step",
        "hv_single_source": "hv_single_source_4_step",
        "hv_dual_source": "hv_dual_source_4_step",
    }[customer_class]


def _capacity(customer_class: str) -> float:
    return {"lv_residential": 8.0, "lv_non_residential": 50.0}.get(customer_class, 630.0)


def _latency(kind: str, samples: Sequence[float], answered_as_asked: int) -> AssistantLatency:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return AssistantLatency(
        kind,
        len(ordered),
        answered_as_asked,
        statistics.median(ordered) * 1000,
        p99 * 1000,
        ordered[-1] * 1000,
    )


def questions_of(base: KnowledgeBase, applications: Sequence[SeededApplication]) -> dict[str, list[str]]:
    """The questions of each kind: every phrasing of every entry, the out-of-scope ones, and a progress
    question per application."""
    knowledge = [text for entry in base.entries for text in (entry.question, *entry.paraphrases)]
    progress = [
        f"我的申请{application.application_no}到哪一步了？验证码{application.code}"
        for application in applications
    ]
    return {"knowledge": knowledge, "refused": list(OUT_OF_SCOPE), "progress": progress}


def measure_assistant(
    engine: Engine,
    *,
    cases: int = 1_000,
    rounds: int = 3,
    config_dir: Path = ROOT,
    province: str = "default",
) -> AssistantBench:
    """Time Assistant.ask on each question `rounds` times; engine holds an empty hub schema."""
    calendar = WorkingCalendar(published_years=PUBLISHED_YEARS)
    config = load_workflow_config(config_dir)
    base = load_knowledge(config_dir, province)
    with clock.use(FixedClock(NOW)):
        applications = seed_applications(engine, cases, config=config, calendar=calendar)
        generous = ProgressSettings(per_client=10_000, per_application=10_000, window_s=1)
        lookup = ProgressLookup(engine, generous, stage_names=lambda: config.stages, calendar=calendar)
        assistant = Assistant(
            KnowledgeIndex(base),
            lookup,
            hotline=base.hotline,
            gaps=GapLog(engine, clock=lambda: NOW),
            per_client=10_000,
            window_s=1,
        )
        asked = questions_of(base, applications)
        samples: dict[str, list[float]] = {kind: [] for kind in asked}
        as_asked: dict[str, int] = dict.fromkeys(asked, 0)
        for _ in range(rounds):
            for kind, questions in asked.items():
                timed, answers = _time(questions, lambda text: assistant.ask(text, "bench"))
                samples[kind] += timed
                as_asked[kind] += sum(_answered_as(kind, answer) for answer in answers)
    every = [sample for kind_samples in samples.values() for sample in kind_samples]
    results = [_latency(kind, kind_samples, as_asked[kind]) for kind, kind_samples in samples.items()]
    return AssistantBench(
        len(base.entries), cases, (*results, _latency("all", every, sum(as_asked.values())))
    )


def _answered_as(kind: str, answer: AssistantAnswer) -> bool:
    if kind == "progress":
        return answer.progress is not None
    return answer.kind == kind


def _time(
    questions: Sequence[str], ask: Callable[[str], AssistantAnswer]
) -> tuple[list[float], list[AssistantAnswer]]:
    samples, answers = [], []
    for question in questions:
        started = time.perf_counter()
        answers.append(ask(question))
        samples.append(time.perf_counter() - started)
    return samples, answers


def main() -> None:
    """Print the figures of a run on a SQLite file."""
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        engine = create_engine(f"sqlite:///{work}/assistant-bench.db")
        create_schema(engine)
        try:
            bench = measure_assistant(engine)
        finally:
            engine.dispose()
    print(f"knowledge base: {bench.entries} entries; {bench.cases} cases")
    for result in bench.results:
        print(
            f"{result.kind}: {result.questions} questions ({result.answered_as_asked} answered as asked), "
            f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, max {result.max_ms:.2f} ms"
        )


if __name__ == "__main__":
    main()
