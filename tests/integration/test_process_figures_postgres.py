"""The process figures on PostgreSQL, where the database takes the percentiles, equal those counted on SQLite.

The cases are those of tests/unit/workflow/test_process.py, whose figures are worked out by hand there.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from ground.clock import frozen_at
from ground.settings import PROJECT_ROOT
from tests.unit.workflow.test_process import NOW, seed_cases
from workflow.cases import CaseTracker
from workflow.config import load_workflow_config
from workflow.process import BASES, ProcessFilter, process_figures
from workflow.workdays import WorkingCalendar


def test_postgresql_and_sqlite_give_the_same_figures(postgres_engine: Engine, sqlite_engine: Engine) -> None:
    tracker = CaseTracker(load_workflow_config(PROJECT_ROOT), WorkingCalendar())
    with frozen_at(NOW):
        for engine in (postgres_engine, sqlite_engine):
            with engine.begin() as conn:
                seed_cases(conn, tracker)
    for basis in BASES:
        for where in (ProcessFilter(basis=basis), ProcessFilter(basis=basis, unit="41402")):
            with postgres_engine.connect() as pg, sqlite_engine.connect() as lite:
                on_postgres = process_figures(pg, where=where).as_dict()
                on_sqlite = process_figures(lite, where=where).as_dict()
            assert on_postgres == on_sqlite
    with postgres_engine.connect() as pg:
        overall = process_figures(pg).overall
    # R1, R2, H1 and R3 are measured: 2, 18, 17 and 2 working days (the unit tests' hand counts).
    assert (overall.measured, overall.working_days.p50, overall.working_days.p90) == (4, 9.5, 17.7)
