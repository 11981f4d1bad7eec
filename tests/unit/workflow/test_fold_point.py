"""A case continued event by event from its fold point equals the case rebuilt from all its events, with the
hub's decisions (assignments, alerts) made between the events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from canonical_model.envelope import CloudEvent
from canonical_model.events import CASE_STAGE_CHANGED
from ground.clock import frozen_at
from pipeline.decoded import DecodedEvent
from store.database import create_engine, create_schema
from store.schema import case_figures, cases, metadata, outbox, stage_visits, timeline
from tests.support.cases import RebuildingTracker
from workflow.cases import CaseTracker
from workflow.config import WorkflowConfig
from workflow.events import HUB_SYSTEM
from workflow.monitor import CaseMonitor
from workflow.workdays import SHANGHAI, WorkingCalendar

from .events import application_event, stage_report_event

# The hub's clock stands here for the whole test; the events' own times are days before it.
NOW = datetime(2026, 6, 30, 2, 0, tzinfo=UTC)
SUBMITTED = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)
# Stages of the shipped flows, closing stages, and one no flow has (an anomaly that leaves the case put).
STAGES = (
    "acceptance",
    "site_survey",
    "scheme_reply",
    "external_works",
    "design_review",
    "energisation",
    "archived",
    "withdrawn",
    "cancelled",
    "unknown_stage",
)
DERIVED = (cases, timeline, stage_visits, case_figures)


APPLICATION = "/marketing/application"
# The systems that report stages besides the application's own: their streams merge by time, ties by name.
REPORTERS = ("/pms/work_order", "/gis/survey")


@dataclass(frozen=True)
class Step:
    """One change of a case: a new version of its application, or a stage report from another system."""

    source: str
    stage: str | None
    minutes: int
    customer_class: str
    importance_grade: str
    org_no: str


steps = st.builds(
    Step,
    source=st.sampled_from((APPLICATION, *REPORTERS)),
    stage=st.none() | st.sampled_from(STAGES),
    # Mostly forward in time, often in the minute of the source's last change, so that changes of two
    # sources tie; sometimes back: a source may report an earlier change after a later one.
    minutes=st.sampled_from([0, 0, 1, 30, 60 * 20, 60 * 50, -60]),
    customer_class=st.sampled_from(["hv_single_source", "hv_dual_source", "lv_residential"]),
    importance_grade=st.sampled_from(["none", "none", "first"]),
    # Two units of the Henan province, and one of no configured province.
    org_no=st.sampled_from(["41401", "41402", "51001"]),
)
# The application as first accepted.
OPENING = Step(APPLICATION, None, 0, "hv_single_source", "none", "41401")


def _events(number: str, changes: list[Step]) -> list[CloudEvent]:
    """A case's events: its application first accepted, then the changes, sequenced per source."""
    events = [_application(number, 1, SUBMITTED, OPENING)]
    sequences = dict.fromkeys(REPORTERS, 0) | {APPLICATION: 1}
    at = dict.fromkeys(sequences, SUBMITTED)
    for step in changes:
        source = step.source
        sequences[source] += 1
        at[source] = max(SUBMITTED, at[source] + timedelta(minutes=step.minutes))
        if source == APPLICATION:
            event = _application(number, sequences[source], at[source], step)
        else:
            stage = step.stage or "site_survey"
            event = stage_report_event(
                number, stage, at[source].isoformat(), sequences[source], source=source
            )
        events.append(event.model_copy(update={"time": NOW}))
    return events


def _application(number: str, sequence: int, at: datetime, step: Step) -> CloudEvent:
    data: dict[str, Any] = {
        "customer_class": step.customer_class,
        "importance_grade": step.importance_grade,
        "org_no": step.org_no,
        "submitted_at": SUBMITTED.isoformat(),
        "updated_at": at.isoformat(),
    }
    if step.stage is not None:
        data["stage"] = step.stage
    return application_event(number, sequence, **data).model_copy(update={"time": NOW})


@dataclass(frozen=True)
class Tick:
    """A monitoring pass of the hub at a moment: it assigns surveys and raises alerts as they fall due."""

    at: datetime


@st.composite
def arrivals(draw: st.DrawFn) -> list[CloudEvent | Tick]:
    """The events of one to three cases, in the order they were made or in any order, some of them twice,
    with monitoring passes among them. A pass's moment is any time in the cases' span, so a source may
    report a change made before a decision the hub took already."""
    numbers = [f"P{index}" for index in range(draw(st.integers(1, 3)))]
    events = [event for number in numbers for event in _events(number, draw(st.lists(steps, max_size=7)))]
    if draw(st.booleans()):
        events = draw(st.permutations(events))
    for twice in draw(st.lists(st.sampled_from(events), max_size=3)):
        events.insert(draw(st.integers(0, len(events))), twice)
    arrived: list[CloudEvent | Tick] = list(events)
    for hours in draw(st.lists(st.integers(0, 60 * 24), max_size=3)):
        arrived.insert(draw(st.integers(0, len(arrived))), Tick(SUBMITTED + timedelta(hours=hours)))
    return arrived


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    pair = (
        create_engine(f"sqlite:///{tmp_path}/continued.db"),
        create_engine(f"sqlite:///{tmp_path}/rebuilt.db"),
    )
    for engine in pair:
        create_schema(engine)
    yield pair
    for engine in pair:
        engine.dispose()


def _empty(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


def _rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every derived row, without what each hub draws anew: the row ids, the event ids of its decisions,
    and so the order among decisions of one moment (by event id), which keep their block of positions."""
    with engine.connect() as conn:
        tables = {table.name: [row._asdict() for row in conn.execute(sa.select(table))] for table in DERIVED}
    decided: dict[tuple[str, datetime], int] = {}
    for row in tables[timeline.name]:
        if row["source_system"] == HUB_SYSTEM:
            moment = (row["application_no"], row["at"])
            decided[moment] = min(decided.get(moment, row["position"]), row["position"])
    for row in tables[timeline.name]:
        if row["source_system"] == HUB_SYSTEM:
            row.update(source_event_id=None, position=decided[row["application_no"], row["at"]])
    return {
        name: sorted(
            ({key: value for key, value in row.items() if key != "id"} for row in rows),
            key=lambda row: json.dumps(row, sort_keys=True, default=str),
        )
        for name, rows in tables.items()
    }


def _stage_changes(engine: Engine) -> list[str]:
    """The published stage entries, each as its canonical JSON."""
    with engine.connect() as conn:
        bodies = conn.execute(
            sa.select(outbox.c.body).where(outbox.c.event_type == CASE_STAGE_CHANGED)
        ).scalars()
        return sorted(json.dumps(json.loads(body)["data"], sort_keys=True) for body in bodies)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrived=arrivals())
def test_a_case_continued_from_its_fold_point_equals_its_rebuild(
    engines: tuple[Engine, Engine],
    config: WorkflowConfig,
    calendar: WorkingCalendar,
    arrived: list[CloudEvent | Tick],
) -> None:
    continued, rebuilt = engines
    for engine in engines:
        _empty(engine)
    events = [item for item in arrived if isinstance(item, CloudEvent)]
    with frozen_at(NOW):
        for engine, tracker in (
            (continued, CaseTracker(config, calendar)),
            (rebuilt, RebuildingTracker(config, calendar)),
        ):
            monitor = CaseMonitor(engine, tracker)
            for item in arrived:
                if isinstance(item, Tick):
                    monitor.tick(item.at)
                    continue
                with engine.begin() as conn:
                    tracker(conn, DecodedEvent(item))
        assert _rows(continued) == _rows(rebuilt)
        assert _stage_changes(continued) == _stage_changes(rebuilt)
        # A replay of the continued cases changes nothing and publishes nothing more.
        replayed = CaseTracker(config, calendar)
        with continued.begin() as conn:
            for number in {event.subject for event in events}:
                replayed.rebuild(conn, number, correlation_id="replay")
        assert _rows(continued) == _rows(rebuilt)
        assert _stage_changes(continued) == _stage_changes(rebuilt)


def _case_events_read(engine: Engine) -> list[str]:
    """The statements that read a case's kept events, as a rebuild does and a continued fold never does."""
    reads: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM case_events" in statement:
            reads.append(statement)

    sa.event.listen(engine, "before_cursor_execute", note)
    return reads


def _with_limit(config: WorkflowConfig, flow_name: str, stage: str, limit_days: int) -> WorkflowConfig:
    flows = tuple(
        replace(
            flow,
            steps=tuple(replace(s, limit_days=limit_days) if s.stage == stage else s for s in flow.steps),
        )
        if flow.name == flow_name
        else flow
        for flow in config.flows
    )
    return replace(config, flows=flows)


def _surveyed(number: str) -> list[CloudEvent]:
    """A case of the four-step high-voltage flow in no configured province, past acceptance and its survey."""
    opened = _application(number, 1, SUBMITTED, replace(OPENING, org_no="51001"))
    reports = [
        stage_report_event(number, stage, (SUBMITTED + timedelta(days=days)).isoformat(), sequence)
        for sequence, (stage, days) in enumerate((("scheme_reply", 1), ("external_works", 9)), start=1)
    ]
    return [opened, *(event.model_copy(update={"time": NOW}) for event in reports)]


def _energised(number: str) -> CloudEvent:
    at = (SUBMITTED + timedelta(days=30)).isoformat()
    return stage_report_event(number, "energisation", at, 3).model_copy(update={"time": NOW})


def _limits(engine: Engine) -> dict[str, int | None]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(stage_visits.c.stage, stage_visits.c.limit_days)).all()
    return {stage: limit for stage, limit in rows}


def test_an_event_under_a_changed_configuration_rebuilds_its_case_with_the_new_limits(
    sqlite_engine: Engine, config: WorkflowConfig, calendar: WorkingCalendar
) -> None:
    flow = config.flow_named("hv_single_source_4_step")
    assert flow is not None and config.limit_days(flow, "acceptance", None) == 2
    changed = _with_limit(config, flow.name, "acceptance", 4)
    with frozen_at(NOW):
        tracker = CaseTracker(config, calendar)
        for event in _surveyed("P1"):
            with sqlite_engine.begin() as conn:
                tracker(conn, DecodedEvent(event))
        assert _limits(sqlite_engine)["acceptance"] == 2
        reads = _case_events_read(sqlite_engine)
        with sqlite_engine.begin() as conn:
            CaseTracker(changed, calendar)(conn, DecodedEvent(_energised("P1")))
        assert reads, "the case was rebuilt from its events"
        # The acceptance visit was left two events ago: only a rebuild gives it the new limit.
        assert _limits(sqlite_engine) == {
            "acceptance": 4,
            "scheme_reply": 15,
            "external_works": 20,
            "energisation": 5,
        }
        rows = _rows(sqlite_engine)
        with sqlite_engine.begin() as conn:
            CaseTracker(changed, calendar).rebuild(conn, "P1", correlation_id="replay")
        assert _rows(sqlite_engine) == rows


def test_an_event_under_the_same_configuration_continues_its_case_without_reading_its_events(
    sqlite_engine: Engine, config: WorkflowConfig, calendar: WorkingCalendar
) -> None:
    with frozen_at(NOW):
        tracker = CaseTracker(config, calendar)
        for event in _surveyed("P1"):
            with sqlite_engine.begin() as conn:
                tracker(conn, DecodedEvent(event))
        reads = _case_events_read(sqlite_engine)
        # Another tracker over the same configuration, as after a restart or in a competing consumer.
        with sqlite_engine.begin() as conn:
            CaseTracker(config, calendar)(conn, DecodedEvent(_energised("P1")))
        assert reads == []
        assert _limits(sqlite_engine)["energisation"] == 5
