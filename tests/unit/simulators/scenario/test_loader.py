"""Scenario files load into the model; every mistake is reported with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ground.errors import ConfigError
from ground.settings import PROJECT_ROOT
from simulators.dispatch.faults import Fault as DispatchFault
from simulators.marketing.faults import Fault as MarketingFault
from simulators.marketing.faults import FaultRule
from simulators.scenario.loader import load_scenario
from simulators.scenario.model import Count, DispatchFaultSpec, MarketingFaultSpec, PmsFaultSpec

SHIPPED = sorted((PROJECT_ROOT / "scenarios").glob("*.yaml"))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_scenarios_all_load() -> None:
    names = {load_scenario(path).name for path in SHIPPED}
    assert names == {
        "normal-day",
        "marketing-outage",
        "dispatch-gbk-garbage",
        "pms-bulk-rerating",
        "stress-day",
        "integrated",
        "manual-baseline",
    }


def test_a_history_adds_its_applications_to_the_seeded_world(tmp_path: Path) -> None:
    scenario = load_scenario(
        _write(
            tmp_path,
            """
name: with-history
seed: 7
scale: {customers: 5, applications_per_day: 3}
history: {days: 90, applications: 12}
expect: {reworked_cases: {min: 1}, outcomes: {withdrawn: {max: 2}, open: {min: 0}}}
""",
        )
    )
    assert scenario.history is not None and scenario.history.process == "manual"
    assert scenario.world_scale().applications == 15
    assert scenario.expect.outcomes["withdrawn"] == Count(max=2)


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ("{days: 90, applications: 12, process: hurried}", "no process 'hurried'; known: integrated, manual"),
        ("{days: 0, applications: 12}", "history.days: Input should be greater than or equal to 1"),
        ("{days: 9, applications: 2, process_file: missing.yaml}", "cannot read the file"),
    ],
)
def test_a_broken_history_is_refused_with_its_line(tmp_path: Path, history: str, message: str) -> None:
    path = _write(tmp_path, f"name: x\nseed: 1\nhistory: {history}\n")
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    assert f"{path}:3: " in str(caught.value) and message in str(caught.value)


def test_a_history_and_a_backlog_are_refused_together(tmp_path: Path) -> None:
    text = (
        "name: x\nseed: 1\nscale: {backlog: {applications: 1, days_ago: 5}}\n"
        "history: {days: 9, applications: 2}\n"
    )
    with pytest.raises(ConfigError, match=r"give a history or a scale\.backlog, not both"):
        load_scenario(_write(tmp_path, text))


def test_a_full_scenario_loads_with_its_faults_and_expectations(tmp_path: Path) -> None:
    scenario = load_scenario(
        _write(
            tmp_path,
            """
name: sample
seed: 7
scale: {customers: 5, applications_per_day: 3, backlog: {applications: 1, days_ago: 30}}
faults:
  - {system: marketing, trigger: http_500, op: ListChangedApplications, at_s: 2, for_s: 2.5}
  - {system: marketing, trigger: unknown_code, calls: 2-3}
  - {system: dispatch, trigger: garbage_rows, at_s: 1, count: 2}
  - {system: pms, trigger: bulk_rerating, when: settled, rated_kva: 30}
expect:
  cases: 4
  overdue_cases: {min: 1}
  parked: [{kind: invalid, system: dispatch, reason_code: malformed, count: {max: 3}}]
""",
        )
    )
    outage, unknown, garbage, rerating = scenario.faults
    assert isinstance(outage, MarketingFaultSpec) and isinstance(unknown, MarketingFaultSpec)
    assert FaultRule.parse(outage.spec()) == FaultRule(
        MarketingFault.HTTP_500, "ListChangedApplications", after_s=2.0, for_s=2.5
    )
    assert FaultRule.parse(unknown.spec()) == FaultRule(MarketingFault.UNKNOWN_CODE, None, 2, 3)
    assert isinstance(garbage, DispatchFaultSpec) and garbage.fault is DispatchFault.GARBAGE_ROWS
    assert isinstance(rerating, PmsFaultSpec) and rerating.after_settled and rerating.transformers == "all"
    assert scenario.scale.world().applications == 4
    assert scenario.expect.cases == Count(min=4, max=4)
    assert scenario.expect.parked[0].count.holds(3) and not scenario.expect.parked[0].count.holds(4)


def test_every_error_names_the_file_and_the_line_of_the_offending_key(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """name: broken
seed: 1
scale:
  customers: 0
faults:
  - system: marketing
    trigger: http_500
  - system: dispatch
    trigger: meteor_shower
  - system: pms
    trigger: bulk_rerating
expect:
  cases: {min: 5, max: 2}
  bogus: 1
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    text = str(caught.value)
    assert "5 configuration errors" in text
    assert f"{path}:4: scale.customers: Input should be greater than or equal to 1" in text
    assert f"{path}:9: faults.1.trigger: Value error, unknown dispatch trigger 'meteor_shower'" in text
    assert f"{path}:10: faults.2.rated_kva: Field required" in text
    assert f"{path}:13: expect.cases: Value error, min 5 is greater than max 2" in text
    assert f"{path}:14: expect.bogus: Extra inputs are not permitted" in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nseed: [1\n", ":3: invalid YAML"),
        ("- just\n- a list\n", ":1: a scenario file holds a map"),
        (
            "name: x\nseed: 1\nfaults:\n  - {system: marketing, trigger: latency, when: settled}\n",
            ":4: faults.0:",
        ),
        ("name: x\nseed: 1\nfaults:\n  - {system: mainframe, trigger: x}\n", ":4: faults.0:"),
        (
            "name: x\nseed: 1\nfaults:\n"
            "  - {system: pms, trigger: bulk_rerating, rated_kva: 5, at_s: 1, when: settled}\n",
            ":4: faults.0: Value error, give either at_s or when",
        ),
    ],
)
def test_broken_files_are_refused_with_a_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_scenario(_write(tmp_path, text))
