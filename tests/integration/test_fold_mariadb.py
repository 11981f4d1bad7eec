"""On MariaDB, which keeps whole seconds and single-precision figures, a case continued from its fold point
equals its rebuild, and a rebuild publishes no stage change again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical_model.envelope import CloudEvent
from ground.clock import frozen_at
from ground.settings import PROJECT_ROOT
from pipeline.decoded import DecodedEvent
from store.database import create_engine, create_schema, drop_schema
from store.schema import case_figures, cases, outbox, stage_visits, timeline
from tests.conftest import MARIADB_URL, require_service
from tests.support.cases import RebuildingTracker
from tests.unit.workflow.events import application_event, stage_report_event
from workflow.cases import CaseTracker
from workflow.config import load_workflow_config
from workflow.workdays import WorkingCalendar

NOW = datetime(2026, 6, 30, 2, 0, tzinfo=UTC)
SUBMITTED = "2026-03-02T09:00:00+08:00"


@pytest.fixture
def engine() -> Iterator[Engine]:
    require_service("MariaDB", 3306)
    engine = create_engine(MARIADB_URL)
    drop_schema(engine)
    create_schema(engine)
    yield engine
    engine.dispose()


def _derived(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    with engine.connect() as conn:
        return {
            table.name: [
                {key: value for key, value in row._asdict().items() if key != "id"}
                for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for table in (cases, timeline, stage_visits, case_figures)
        }


def _published(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()


def _fold(engine: Engine, tracker: CaseTracker, events: list[CloudEvent]) -> dict[str, list[dict[str, Any]]]:
    with frozen_at(NOW):
        for event in events:
            with engine.begin() as conn:
                tracker(conn, DecodedEvent(event))
    return _derived(engine)


def _continued_equals_rebuilt(engine: Engine, events: list[CloudEvent]) -> dict[str, list[dict[str, Any]]]:
    tracker = CaseTracker(load_workflow_config(PROJECT_ROOT), WorkingCalendar())
    continued = _fold(engine, tracker, events)
    published = _published(engine)
    with frozen_at(NOW), engine.begin() as conn:
        tracker.rebuild(conn, events[0].subject or "", correlation_id="replay")
    assert _derived(engine) == continued
    assert _published(engine) == published
    drop_schema(engine)
    create_schema(engine)
    rebuilt = _fold(engine, RebuildingTracker(tracker.config, tracker.calendar), events)
    assert rebuilt == continued
    return continued


def test_changes_of_two_systems_within_one_second_fold_as_the_store_keeps_their_times(engine: Engine) -> None:
    # The work-order system reports the survey at .3 s, the application system the scheme reply at .7 s:
    # kept in whole seconds, they tie, and the tie goes by source name.
    events = [
        application_event("M1", 1, submitted_at=SUBMITTED, updated_at=SUBMITTED),
        stage_report_event("M1", "site_survey", "2026-03-05T10:00:00.300+08:00", 1),
        application_event(
            "M1", 2, submitted_at=SUBMITTED, updated_at="2026-03-05T10:00:00.700+08:00", stage="scheme_reply"
        ),
    ]
    rows = _continued_equals_rebuilt(engine, events)
    assert [(row["kind"], row["stage_from"], row["stage_to"]) for row in rows[timeline.name]] == [
        ("opened", None, "acceptance"),
        ("forward", "acceptance", "scheme_reply"),
        ("anomaly", "scheme_reply", "site_survey"),
    ]


def test_the_figures_of_a_case_energised_event_by_event_equal_those_of_its_rebuild(engine: Engine) -> None:
    reports = [
        ("scheme_reply", "2026-03-02T10:07:13.250+08:00"),
        ("acceptance", "2026-03-04T15:41:29.500+08:00"),
        ("scheme_reply", "2026-03-05T09:13:07.125+08:00"),
        ("acceptance", "2026-03-09T16:59:01.750+08:00"),
        ("scheme_reply", "2026-03-10T11:11:11.100+08:00"),
        ("external_works", "2026-03-13T14:22:37.900+08:00"),
        ("energisation", "2026-04-01T10:00:00+08:00"),
        ("archived", "2026-04-03T15:27:41.300+08:00"),
    ]
    events = [application_event("F1", 1, submitted_at=SUBMITTED, updated_at=SUBMITTED)] + [
        stage_report_event("F1", stage, at, sequence) for sequence, (stage, at) in enumerate(reports, start=1)
    ]
    [figures] = _continued_equals_rebuilt(engine, events)[case_figures.name]
    assert figures["survey_to_scheme_days"] is not None
    assert figures["scheme_drafting_days"] is not None
