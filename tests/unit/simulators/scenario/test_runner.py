"""A history replayed through the real pipe: every status change of every drawn life reaches the cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from ground.settings import PROJECT_ROOT
from mappings.codes import load_code_tables
from simulators.marketing.process import PROCESS_FILE
from simulators.scenario.model import Count, Expectations, History, Scale, Scenario
from simulators.scenario.runner import RunOptions, run_scenario
from store.database import create_engine
from store.schema import cases, consistency_findings, stage_visits
from yekuo.hub import Hub

SCENARIO = Scenario(
    name="history-replay",
    seed=20261126,
    day_seconds=0.5,
    timeout_s=120,
    scale=Scale(customers=45, applications_per_day=1, substations=2, feeders=4, transformers=30, load_days=0),
    history=History(days=60, applications=40, process="manual"),
    expect=Expectations(cases=Count(min=41, max=41)),
)


def test_the_replayed_history_loses_no_intermediate_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The machine's own hub declares a real drop folder: a run must read only the folder it writes.
    real_drop = tmp_path / "real-drop"
    (real_drop / "incoming").mkdir(parents=True)
    (real_drop / "incoming" / "plant.csv").write_text("not for the scenario\n", encoding="utf-8")
    monkeypatch.setenv(
        "YEKUO_SOURCES",
        json.dumps(
            [{"name": "plant", "kind": "dispatch_dropfolder", "settings": {"drop_dir": str(real_drop)}}]
        ),
    )
    result = run_scenario(SCENARIO, Hub, RunOptions(work_dir=tmp_path / "run"), say=lambda _line: None)
    assert result.passed, [check for check in result.checks if not check.passed] or result.notes
    assert [path.name for path in real_drop.rglob("*") if path.is_file()] == ["plant.csv"]
    assert (real_drop / "incoming" / "plant.csv").exists()
    codes = load_code_tables(PROJECT_ROOT / "mappings" / "codes", root=PROJECT_ROOT)
    stage_of = next(table for table in codes if table.name == "marketing/status_code").codes
    causes = next(table for table in codes if table.name == "marketing/return_reason_code").codes
    engine = create_engine(f"sqlite:///{tmp_path / 'run' / 'hub.db'}")
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


class _QuotedStrings(yaml.SafeDumper):
    """Quotes every string, so status codes such as "08" stay strings."""


_QuotedStrings.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
)


def test_staff_who_act_on_the_hubs_findings_put_flagged_records_right_and_avoid_the_rework(
    tmp_path: Path,
) -> None:
    process = yaml.safe_load(PROCESS_FILE.read_text(encoding="utf-8"))
    manual = process["processes"]["manual"]
    # Every survey mistyped, and no other return, so each information-error return is an entry error's.
    manual.update(documents_missing=0.0, returns={}, withdrawal_rate=0.0, cancellation_rate=0.0)
    manual["entry_errors"]["rate"] = 1.0
    process["processes"] = {"manual": manual}
    process_file = tmp_path / "process.yaml"
    process_file.write_text(yaml.dump(process, Dumper=_QuotedStrings, allow_unicode=True), encoding="utf-8")
    scenario = SCENARIO.model_copy(
        update={
            "history": History(
                days=60, applications=40, process="manual", process_file=process_file, act_on_findings=True
            ),
            "expect": Expectations(cases=Count(min=41, max=41)),
            # Only the mistyped sites disagree, so every finding of the supply radius is one of them.
            "scale": SCENARIO.scale.model_copy(update={"disagreement_rate": 0.0}),
        }
    )
    result = run_scenario(scenario, Hub, RunOptions(work_dir=tmp_path / "run"), say=lambda _line: None)
    assert result.passed, [check for check in result.checks if not check.passed] or result.notes
    engine = create_engine(f"sqlite:///{tmp_path / 'run' / 'hub.db'}")
    try:
        with engine.connect() as conn:
            flagged = conn.execute(
                sa.select(consistency_findings.c.application_no, consistency_findings.c.cleared_at).where(
                    consistency_findings.c.rule == "site_within_supply_radius"
                )
            ).all()
            sent_back = set(
                conn.execute(
                    sa.select(stage_visits.c.application_no).where(
                        stage_visits.c.exit_cause == "information_error"
                    )
                ).scalars()
            )
    finally:
        engine.dispose()
    assert result.corrected, "the hub flagged some mistyped sites"
    # What staff corrected is exactly what the hub flagged, each finding cleared by the correction; those
    # applications never went back for an information error.
    assert set(result.corrected) == {number for number, _ in flagged}
    assert all(cleared is not None for _, cleared in flagged)
    assert not sent_back & set(result.corrected)
    for number in result.corrected:
        assert [reason for _, reason in result.replayed[number] if reason] == [], number
