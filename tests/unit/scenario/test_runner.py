"""A history replayed through the real pipe: every status change of every drawn life reaches the cases."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from mappings.codes import load_code_tables
from scenario.model import Count, Expectations, History, Scale, Scenario
from scenario.runner import RunOptions, run_scenario
from store.database import create_engine
from store.schema import cases, stage_visits
from yekuo.settings import PROJECT_ROOT

SCENARIO = Scenario(
    name="history-replay",
    seed=20261126,
    day_seconds=0.5,
    timeout_s=120,
    scale=Scale(customers=30, applications_per_day=1, substations=2, feeders=4, transformers=30, load_days=0),
    history=History(days=60, applications=40, process="manual"),
    expect=Expectations(cases=Count(min=41, max=41)),
)


def test_the_replayed_history_loses_no_intermediate_status(tmp_path: Path) -> None:
    result = run_scenario(SCENARIO, RunOptions(work_dir=tmp_path), say=lambda _line: None)
    assert result.passed, [check for check in result.checks if not check.passed] or result.notes
    codes = load_code_tables(PROJECT_ROOT / "mappings" / "codes", root=PROJECT_ROOT)
    stage_of = next(table for table in codes if table.name == "marketing/status_code").codes
    causes = next(table for table in codes if table.name == "marketing/return_reason_code").codes
    engine = create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        with engine.connect() as conn:
            visits = conn.execute(
                sa.select(
                    stage_visits.c.application_no,
                    stage_visits.c.stage,
                    stage_visits.c.exit_kind,
                    stage_visits.c.exit_cause,
                ).order_by(stage_visits.c.application_no, stage_visits.c.ordinal)
            ).all()
            anomalies = conn.execute(sa.select(sa.func.sum(cases.c.anomaly_count))).scalar_one()
    finally:
        engine.dispose()
    by_case: dict[str, list[tuple[str, str | None, str | None]]] = {}
    for row in visits:
        by_case.setdefault(row.application_no, []).append((row.stage, row.exit_kind, row.exit_cause))
    assert len(result.replayed) == 40
    changes = 0
    reworks = 0
    for app_no, released in result.replayed.items():
        seen = by_case[app_no]
        # One stage visit per released change: no status the marketing system passed through was missed.
        assert [stage for stage, _, _ in seen] == [stage_of[status] for status, _ in released], app_no
        for (_, kind, cause), (_, reason) in zip(seen, released[1:], strict=False):
            if kind == "rework":
                reworks += 1
                assert cause == (causes[reason] if reason else None), app_no
            else:
                assert cause is None, app_no
        changes += len(released) - 1
    assert anomalies == 0
    assert changes > 40 and reworks > 0  # the lives moved, and some went back
