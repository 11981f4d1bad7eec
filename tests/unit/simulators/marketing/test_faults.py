"""Tests of the marketing simulator's fault plan: rule syntax, counting per rule, the trigger table."""

from __future__ import annotations

import pytest

from ground.errors import ConfigError
from simulators.marketing.faults import (
    TRIGGER_TABLE,
    Fault,
    FaultPlan,
    FaultRule,
    trigger_table_markdown,
)


@pytest.mark.parametrize(
    ("spec", "rule"),
    [
        ("server_fault", FaultRule(Fault.SERVER_FAULT)),
        (
            "timeout:op=ListChangedApplications:calls=2-3:delay=1.5",
            FaultRule(Fault.TIMEOUT, "ListChangedApplications", 2, 3, None, 1.5),
        ),
        ("http_500:calls=4", FaultRule(Fault.HTTP_500, None, 4, 4)),
        ("latency:calls=5-", FaultRule(Fault.LATENCY, None, 5, None)),
        ("unknown_code:app=2611020001234", FaultRule(Fault.UNKNOWN_CODE, app_no="2611020001234")),
        ("http_500:after=2:for=2.5", FaultRule(Fault.HTTP_500, after_s=2.0, for_s=2.5)),
    ],
)
def test_rules_parse_from_the_command_line_form(spec: str, rule: FaultRule) -> None:
    assert FaultRule.parse(spec) == rule


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("meteor_strike", "unknown marketing fault trigger 'meteor_strike'"),
        ("timeout:when=now", "expected op=, calls=, app=, delay=, after= or for=, got 'when=now'"),
        ("http_500:after=-2", "after must not be negative"),
        ("http_500:for=long", "for must be a number of seconds"),
        ("timeout:calls=x", "calls must be N, N-M or N-, got 'x'"),
        ("timeout:calls=3-2", "calls 3-2 is not a range"),
        ("timeout:calls=0", "calls 0-0 is not a range"),
        ("latency:delay=soon", "delay must be a number of seconds"),
        ("latency:delay=-1", "delay must not be negative"),
    ],
)
def test_bad_rules_are_config_errors_naming_the_problem(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FaultRule.parse(spec)


def test_a_rule_fires_on_its_range_of_matching_calls_only() -> None:
    plan = FaultPlan.parse(["server_fault:op=GetCustomers:calls=2-3"])
    fired = [plan.begin_call(op, None).call for op in ["GetCustomers", "GetApplication"] * 4]
    assert [rule.fault if rule else None for rule in fired] == [
        None,
        None,
        Fault.SERVER_FAULT,
        None,
        Fault.SERVER_FAULT,
        None,
        None,
        None,
    ]
    assert plan.count("GetCustomers") == 4
    assert plan.count("GetCustomers", Fault.SERVER_FAULT) == 2
    assert plan.count("GetApplication", Fault.SERVER_FAULT) == 0


def test_a_time_window_fires_only_on_calls_inside_it_counted_from_the_restart() -> None:
    now = [100.0]
    rule = FaultRule.parse("http_500:op=ListChangedApplications:after=2:for=3")
    plan = FaultPlan([rule], clock=lambda: now[0])
    now[0] = 150.0
    plan.restart_clock()
    fired = []
    for offset in (0.0, 1.9, 2.0, 4.9, 5.0, 9.0):
        now[0] = 150.0 + offset
        call = plan.begin_call("ListChangedApplications", None).call
        fired.append(call.fault if call else None)
    assert fired == [None, None, Fault.HTTP_500, Fault.HTTP_500, None, None]


def test_calls_outside_a_window_do_not_count_toward_its_call_range() -> None:
    now = [0.0]
    plan = FaultPlan([FaultRule.parse("server_fault:after=10:calls=2")], clock=lambda: now[0])
    assert plan.begin_call("GetCustomers", None).call is None
    now[0] = 10.0
    first_inside = plan.begin_call("GetCustomers", None).call
    second_inside = plan.begin_call("GetCustomers", None).call
    assert first_inside is None
    assert second_inside is not None and second_inside.fault is Fault.SERVER_FAULT


def test_a_call_fault_for_an_application_counts_only_calls_about_it() -> None:
    plan = FaultPlan([FaultRule(Fault.BUSINESS_FAULT, "UpdateApplicationStage", 2, 2, app_no="A")])
    outcomes = [plan.begin_call("UpdateApplicationStage", app).call for app in ["A", "B", "B", "A", "A"]]
    assert [rule is not None for rule in outcomes] == [False, False, False, True, False]


def test_record_faults_apply_to_their_application_in_any_answer() -> None:
    plan = FaultPlan([FaultRule(Fault.DUPLICATE, app_no="A"), FaultRule(Fault.UNKNOWN_CODE)])
    faults = plan.begin_call("ListChangedApplications", None)
    assert faults.call is None
    assert faults.record_faults("A") == {Fault.DUPLICATE, Fault.UNKNOWN_CODE}
    assert faults.record_faults("B") == {Fault.UNKNOWN_CODE}


def test_the_first_matching_call_fault_wins() -> None:
    plan = FaultPlan([FaultRule(Fault.TIMEOUT), FaultRule(Fault.SERVER_FAULT)])
    faults = plan.begin_call("GetApplication", "A")
    assert faults.call is not None and faults.call.fault is Fault.TIMEOUT
    assert plan.calls[-1].faults == (Fault.TIMEOUT,)


def test_delays_default_per_fault() -> None:
    assert FaultRule(Fault.LATENCY).delay == 0.5
    assert FaultRule(Fault.TIMEOUT).delay == 30.0
    assert FaultRule(Fault.TIMEOUT, delay_s=2).delay == 2


def test_the_trigger_table_documents_every_fault_once() -> None:
    assert [row.fault for row in TRIGGER_TABLE] == list(Fault)
    markdown = trigger_table_markdown()
    lines = markdown.splitlines()
    assert lines[0] == "| trigger | the simulator | the hub |"
    assert len(lines) == 2 + len(Fault)
    for fault in Fault:
        assert f"| `{fault.value}` |" in markdown
