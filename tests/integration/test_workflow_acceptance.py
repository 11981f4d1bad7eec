"""Acceptance scenario of the workflow core: 1,000 simulated applications across every customer class.

Stage durations are drawn log-normal in working days (seeded; about one in ten over its limit) and turned
into legacy events that go as CloudEvents through the real InboxConsumer on the in-process bus. The test
computes the expected overdue set and stage statistics itself, straight from the holidays package and the
limits it wrote into the configuration, and checks that duplicated, shuffled delivery gives the same cases.
End-to-end deadlines are computed the same way: the commitment in working days after acceptance, plus the
working days the customer's external works took.
"""

from __future__ import annotations

import math
import random
import statistics
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bus import open_bus
from bus.port import Binding, ExchangeSpec, Message, QueueSpec, Topology
from canonical_model.envelope import CloudEvent
from canonical_model.registry import schema_uri
from pipeline.consumer import InboxConsumer
from store.database import create_engine, create_schema
from store.schema import cases
from tests.support.cases import dump_cases
from workflow.analytics import stage_analytics
from workflow.cases import CaseTracker
from workflow.config import load_workflow_config
from workflow.monitor import CaseMonitor
from workflow.queries import CaseFilter, list_cases

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 26, 16, 0, tzinfo=SHANGHAI)
EXCHANGE = "yekuo.events"
QUEUE = "yekuo.workflow"

# The scenario's own stage model: (classes, important) -> stages with limits in working days.
FLOWS: dict[str, tuple[tuple[str, ...], bool, tuple[tuple[str, int], ...]]] = {
    "full_chain": (
        ("lv_residential", "lv_non_residential", "hv_single_source", "hv_dual_source"),
        True,
        (
            ("acceptance", 1),
            ("site_survey", 2),
            ("scheme_reply", 15),
            ("design_review", 10),
            ("mid_inspection", 5),
            ("completion_inspection", 5),
            ("contract", 5),
            ("energisation", 5),
        ),
    ),
    "residential": (("lv_residential",), False, (("acceptance", 2), ("energisation", 3))),
    "lv_3_step": (
        ("lv_non_residential",),
        False,
        (("acceptance", 1), ("scheme_reply", 2), ("energisation", 3)),
    ),
    "hv_single": (
        ("hv_single_source",),
        False,
        (("acceptance", 2), ("scheme_reply", 15), ("external_works", 20), ("energisation", 5)),
    ),
    "hv_dual": (
        ("hv_dual_source",),
        False,
        (("acceptance", 2), ("scheme_reply", 25), ("external_works", 20), ("energisation", 5)),
    ),
}
# End-to-end commitments in working days: per class, and the full chain's own (the sum of its limits).
COMMITMENTS = {"lv_residential": 5, "lv_non_residential": 6, "hv_single_source": 22, "hv_dual_source": 32}
FULL_CHAIN_COMMITMENT = 48
# The customer's own works: they stop the end-to-end clock.
CUSTOMER_WORKS = "external_works"
TERMINAL = "archived"
# Supply units 414xx belong to a province that gives single-source scheme replies 12 days instead of 15.
PROVINCE_OVERRIDE = ("414", "hv_single", "scheme_reply", 12)
UNITS = ("41401", "41402", "42001", "42002")
CLASSES = (
    ("lv_residential", 40),
    ("lv_non_residential", 25),
    ("hv_single_source", 20),
    ("hv_dual_source", 15),
)

# The calendar, read straight from the package: days off and adjusted weekend workdays.
_CHINA = holidays.country_holidays("CN", years=range(2025, 2029))
DAYS_OFF = frozenset(_CHINA)
WEEKEND_WORKDAYS = frozenset(_CHINA.weekend_workdays)


def is_workday(day: date) -> bool:
    return day in WEEKEND_WORKDAYS or (day.weekday() < 5 and day not in DAYS_OFF)


def due_date(entered: datetime, limit: int) -> date:
    """The limit-th working day after the day the stage was entered."""
    day = entered.astimezone(SHANGHAI).date()
    counted = 0
    while counted < limit:
        day += timedelta(days=1)
        counted += is_workday(day)
    return day


def after_working_time(start: datetime, days: float) -> datetime:
    """The moment `days` working days after start, counting only the hours of working days."""
    moment = start.astimezone(SHANGHAI).replace(tzinfo=None)
    remaining = days
    while True:
        midnight = datetime.combine(moment.date() + timedelta(days=1), time())
        if is_workday(moment.date()):
            available = (midnight - moment).total_seconds() / 86400
            if remaining <= available:
                return (moment + timedelta(days=remaining)).replace(tzinfo=SHANGHAI)
            remaining -= available
        moment = midnight


def _limit(flow: str, stage: str, unit: str) -> int:
    prefix, flow_name, stage_name, days = PROVINCE_OVERRIDE
    if unit.startswith(prefix) and flow == flow_name and stage == stage_name:
        return days
    return dict(FLOWS[flow][2])[stage]


@dataclass
class Simulated:
    """One application as simulated: its visits (stage, entered, left or None) and its events."""

    number: str
    customer_class: str
    flow: str
    unit: str
    visits: list[tuple[str, datetime, datetime | None, float]] = field(default_factory=list)
    events: list[CloudEvent] = field(default_factory=list)
    reworks: int = 0


def _write_config(folder: Path) -> None:
    lines = ["stages:"]
    for name in (
        "acceptance",
        "site_survey",
        "scheme_reply",
        "design_review",
        "mid_inspection",
        "external_works",
        "completion_inspection",
        "contract",
        "energisation",
        TERMINAL,
    ):
        lines.append(f"  {name}: {{name: {name}}}")
    lines.append("commitments:")
    lines += [f"  {name}: {days}" for name, days in COMMITMENTS.items()]
    lines.append("flows:")
    for flow, (classes, important, steps) in FLOWS.items():
        lines.append(f"  {flow}:")
        lines.append(f"    when: {{classes: [{', '.join(classes)}], important: {str(important).lower()}}}")
        if flow == "full_chain":
            lines.append(f"    commitment_days: {FULL_CHAIN_COMMITMENT}")
        lines.append("    steps:")
        for stage, limit in steps:
            surveyed = stage == "site_survey" or (stage == "scheme_reply" and flow != "full_chain")
            survey = ", survey: true" if surveyed else ""
            works = ", customer_works: true" if stage == CUSTOMER_WORKS else ""
            lines.append(f"      - {{stage: {stage}, limit_days: {limit}{survey}{works}}}")
        lines.append(f"      - {{stage: {TERMINAL}}}")
    prefix, flow_name, stage_name, days = PROVINCE_OVERRIDE
    lines += [
        "monitoring: {at_risk_days: 1, interval_s: 30}",
        "provinces:",
        f"  scenario: {{name: 测试省, org_prefixes: ['{prefix}'],"
        f" limits: {{{flow_name}: {{{stage_name}: {days}}}}}}}",
    ]
    (folder / "workflow").mkdir(parents=True)
    (folder / "workflow" / "stages.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    roster = "staff:\n" + "".join(
        f"  - {{id: S{unit}, name: 勘查{unit}, unit: '{unit}', regions: ['{unit}'], "
        "business_types: [new_connection, capacity_increase], capacity: 500}\n"
        for unit in UNITS
    )
    (folder / "workflow" / "roster.yaml").write_text(roster, encoding="utf-8")


def _event(sim: Simulated, sequences: dict[str, int], source: str, kind: str, data: dict[str, Any]) -> None:
    sequences[source] = sequences.get(source, 0) + 1
    sim.events.append(
        CloudEvent(
            id=str(uuid.uuid4()),
            source=source,
            type=f"cn.yekuo.application.{kind}.v1",
            subject=sim.number,
            time=NOW,
            dataschema=schema_uri("application.v1" if kind == "changed" else "stage_report.v1"),
            correlationid=str(uuid.uuid4()),
            sequence=sequences[source],
            data=data,
        )
    )


def simulate(count: int, seed: int) -> list[Simulated]:
    rng = random.Random(seed)
    first_day = datetime(2026, 9, 7, tzinfo=SHANGHAI)
    simulated = []
    for index in range(count):
        customer_class = rng.choices([c for c, _ in CLASSES], weights=[w for _, w in CLASSES])[0]
        important = customer_class.startswith("hv") and rng.random() < 0.15
        flow = (
            "full_chain"
            if important
            else {
                "lv_residential": "residential",
                "lv_non_residential": "lv_3_step",
                "hv_single_source": "hv_single",
                "hv_dual_source": "hv_dual",
            }[customer_class]
        )
        unit = rng.choice(UNITS)
        submitted = first_day + timedelta(days=rng.randrange(80), hours=rng.uniform(8, 18))
        sim = Simulated(f"26{index:07d}", customer_class, flow, unit)
        document = {
            "application_no": sim.number,
            "business_type": rng.choice(["new_connection", "capacity_increase"]),
            "customer_no": f"413{index:07d}",
            "requested_capacity_kva": 630.0,
            "customer_class": customer_class,
            "importance_grade": "first" if important else "none",
            "channel": "online",
            "submitted_at": submitted.isoformat(),
            "org_no": unit,
        }
        stages = [stage for stage, _ in FLOWS[flow][2]]
        path = list(stages)
        if len(stages) > 2 and rng.random() < 0.1:
            back = rng.randrange(1, len(stages) - 1)
            path[back + 1 : back + 1] = [stages[back - 1], stages[back]]  # return once, then redo
            sim.reworks = 1
        sequences: dict[str, int] = {}
        entered = submitted
        for stage in [*path, TERMINAL]:
            if entered > NOW:
                break
            pms = stage in ("external_works", "energisation") and flow.startswith("hv")
            if pms:
                report = {"application_no": sim.number, "stage": stage, "at": entered.isoformat()}
                _event(sim, sequences, "/pms/work_order", "stage_reported", report)
            else:
                changed = {**document, "stage": stage, "updated_at": entered.isoformat()}
                _event(sim, sequences, "/marketing/application", "changed", changed)
            if stage == TERMINAL:
                break
            limit = _limit(flow, stage, unit)
            duration = rng.lognormvariate(math.log(0.6 * limit), 0.4)
            if rng.random() < 0.08:
                duration *= rng.uniform(2, 6)  # stalled, e.g. waiting for the customer's documents
            left = after_working_time(entered, duration)
            sim.visits.append((stage, entered, left if left <= NOW else None, duration))
            entered = left
        simulated.append(sim)
    return simulated


@pytest.fixture(scope="module")
def scenario(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list[Simulated], CaseTracker, Engine]]:
    folder = tmp_path_factory.mktemp("scenario")
    _write_config(folder / "config")
    tracker = CaseTracker(load_workflow_config(folder / "config"))
    engine = create_engine(f"sqlite:///{folder}/ordered.db")
    create_schema(engine)
    simulated = simulate(1000, seed=20261126)
    ordered = [event for sim in simulated for event in sim.events]
    _deliver(engine, tracker, ordered)
    yield simulated, tracker, engine
    engine.dispose()


def _deliver(engine: Engine, tracker: CaseTracker, events: list[CloudEvent]) -> None:
    bus = open_bus(f"memory://{uuid.uuid4()}")
    try:
        bus.declare(
            Topology(
                exchanges=(ExchangeSpec(EXCHANGE),),
                queues=(QueueSpec(QUEUE, bindings=(Binding(EXCHANGE, "application.#"),)),),
            )
        )
        messages = [
            Message(
                body=event.model_dump_json().encode("utf-8"),
                routing_key=f"application.{event.type.split('.')[3]}",
                message_id=event.id,
                type=event.type,
            )
            for event in events
        ]
        for start in range(0, len(messages), 500):
            bus.publish(EXCHANGE, messages[start : start + 500])
        consumer = InboxConsumer(engine, bus, queue=QUEUE, name="workflow", handler=tracker)
        while consumer.consume_once(max_messages=500, timeout_s=0.05):
            pass
        assert consumer.stats.failed == 0 and consumer.stats.invalid == 0
    finally:
        bus.close()


def test_every_class_and_flow_is_in_the_scenario(
    scenario: tuple[list[Simulated], CaseTracker, Engine],
) -> None:
    simulated, _, engine = scenario
    assert {sim.customer_class for sim in simulated} == {name for name, _ in CLASSES}
    assert {sim.flow for sim in simulated} == set(FLOWS)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(cases)).scalar_one() == 1000
        flows = {row[0]: row[1] for row in conn.execute(sa.select(cases.c.application_no, cases.c.flow))}
    expected = {
        "residential": "residential",
        "lv_3_step": "lv_3_step",
        "hv_single": "hv_single",
        "hv_dual": "hv_dual",
        "full_chain": "full_chain",
    }
    assert flows == {sim.number: expected[sim.flow] for sim in simulated}


def _expected_overdue(simulated: list[Simulated]) -> set[str]:
    today = NOW.date()
    overdue = set()
    for sim in simulated:
        stage, entered, left, _ = sim.visits[-1]
        if left is None and today > due_date(entered, _limit(sim.flow, stage, sim.unit)):
            overdue.add(sim.number)
    return overdue


def test_the_overdue_set_equals_the_one_computed_from_calendar_and_limits(
    scenario: tuple[list[Simulated], CaseTracker, Engine],
) -> None:
    simulated, tracker, engine = scenario
    expected = _expected_overdue(simulated)
    still_open = sum(1 for sim in simulated if sim.visits and sim.visits[-1][2] is None)
    assert 20 <= len(expected) < still_open, "the scenario must hold a real mix of overdue and timely cases"
    found: set[str] = set()
    after = None
    with engine.connect() as conn:
        while True:
            page, after = list_cases(
                conn, CaseFilter(overdue=True), limit=97, after=after, calendar=tracker.calendar, now=NOW
            )
            found.update(item["application_no"] for item in page)
            if after is None:
                break
    assert found == expected


def _working_days_after(start: date, end: date) -> int:
    return sum(is_workday(start + timedelta(days=n)) for n in range(1, (end - start).days + 1))


def _expected_end_to_end(sim: Simulated) -> date | None:
    """The end-to-end due date, or None while the customer's works run."""
    commitment = FULL_CHAIN_COMMITMENT if sim.flow == "full_chain" else COMMITMENTS[sim.customer_class]
    works = 0
    for stage, entered, left, _ in sim.visits:
        if stage != CUSTOMER_WORKS:
            continue
        if left is None:
            return None
        works += _working_days_after(entered.astimezone(SHANGHAI).date(), left.astimezone(SHANGHAI).date())
    return due_date(sim.visits[0][1], commitment + works)


def _expected_end_to_end_overdue(simulated: list[Simulated]) -> set[str]:
    today = NOW.date()
    overdue = set()
    for sim in simulated:
        due = _expected_end_to_end(sim)
        if sim.visits[-1][2] is None and due is not None and today > due:
            overdue.add(sim.number)
    return overdue


def test_end_to_end_deadlines_equal_the_ones_computed_from_calendar_and_commitments(
    scenario: tuple[list[Simulated], CaseTracker, Engine],
) -> None:
    simulated, tracker, engine = scenario
    found: dict[str, tuple[date | None, str]] = {}
    after = None
    with engine.connect() as conn:
        while True:
            page, after = list_cases(
                conn, CaseFilter(), limit=97, after=after, calendar=tracker.calendar, now=NOW
            )
            found.update(
                (item["application_no"], (item["end_to_end_deadline"], item["end_to_end_status"]))
                for item in page
            )
            if after is None:
                break
    assert {number: due for number, (due, _) in found.items()} == {
        sim.number: _expected_end_to_end(sim) for sim in simulated
    }
    overdue = {number for number, (_, status) in found.items() if status == "overdue"}
    assert overdue == _expected_end_to_end_overdue(simulated)
    statuses = {status for _, status in found.values()}
    assert {"overdue", "paused", "met", "missed", "on_track"} <= statuses


def test_the_monitor_raises_one_overdue_alert_per_overdue_case(
    scenario: tuple[list[Simulated], CaseTracker, Engine],
) -> None:
    simulated, tracker, engine = scenario
    monitor = CaseMonitor(engine, tracker)
    report = monitor.tick(NOW.astimezone(UTC))
    # One per overdue stage and one per case past its end-to-end deadline.
    expected = len(_expected_overdue(simulated)) + len(_expected_end_to_end_overdue(simulated))
    assert report.overdue == expected
    assert report.assigned > 0 and report.unassigned == []
    assert monitor.tick(NOW.astimezone(UTC)).overdue == 0


def test_stage_statistics_match_the_simulated_durations(
    scenario: tuple[list[Simulated], CaseTracker, Engine],
) -> None:
    simulated, tracker, engine = scenario
    durations: dict[str, list[float]] = defaultdict(list)
    by_class: dict[tuple[str, str], list[float]] = defaultdict(list)
    over_limit: dict[str, int] = defaultdict(int)
    for sim in simulated:
        for stage, entered, left, duration in sim.visits:
            if left is None:
                continue
            durations[stage].append(duration)
            by_class[(stage, sim.customer_class)].append(duration)
            over_limit[stage] += left.date() > due_date(entered, _limit(sim.flow, stage, sim.unit))
    with engine.connect() as conn:
        analytics = stage_analytics(conn, stage_order=tuple(tracker.config.stages))
    assert {item.stage for item in analytics.by_stage} == set(durations)
    for item in analytics.by_stage:
        values = durations[item.stage]
        assert item.completed == len(values)
        assert item.mean_days == pytest.approx(statistics.fmean(values), abs=1e-6)
        assert item.p50_days == pytest.approx(statistics.median(values), abs=1e-6)
        assert item.p90_days == pytest.approx(
            statistics.quantiles(values, n=10, method="inclusive")[8], abs=1e-6
        )
        assert item.over_limit == over_limit[item.stage]
    for item in analytics.by_class:
        assert item.customer_class is not None
        values = by_class[(item.stage, item.customer_class)]
        if values:
            assert item.mean_days == pytest.approx(statistics.fmean(values), abs=1e-6)
    share_over = sum(over_limit.values()) / sum(len(v) for v in durations.values())
    assert 0.02 < share_over < 0.2
    assert analytics.rework_total == sum(sim.reworks for sim in simulated if _reworked_by_now(sim))


def _reworked_by_now(sim: Simulated) -> bool:
    stages = [stage for stage, _, _, _ in sim.visits]
    return any(stages.index(stage) < index for index, stage in enumerate(stages))


def test_duplicated_and_shuffled_delivery_gives_the_same_cases_and_timelines(
    tmp_path: Path, scenario: tuple[list[Simulated], CaseTracker, Engine]
) -> None:
    simulated, tracker, _ = scenario
    ordered_engine = create_engine(f"sqlite:///{tmp_path}/ordered.db")
    create_schema(ordered_engine)
    sample = simulated[:200]
    _deliver(ordered_engine, tracker, [event for sim in sample for event in sim.events])

    rng = random.Random(5)
    events = [event for sim in sample for event in sim.events]
    messy = events + rng.sample(events, len(events) // 5)
    rng.shuffle(messy)
    messy_engine = create_engine(f"sqlite:///{tmp_path}/messy.db")
    create_schema(messy_engine)
    _deliver(messy_engine, tracker, messy)
    try:
        expected, found = dump_cases(ordered_engine), dump_cases(messy_engine)
        assert len(expected[1]) > len(sample)
        assert found == expected
    finally:
        ordered_engine.dispose()
        messy_engine.dispose()
