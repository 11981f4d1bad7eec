"""The process model: lives drawn per seed, rates that match the configuration, a loader that names lines."""

from __future__ import annotations

import itertools
import random
import statistics
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from ground.errors import ConfigError
from ground.settings import PROJECT_ROOT
from simulators.marketing.process import (
    CAUSE_CODES,
    OFFICE_CLOSES,
    OFFICE_OPENS,
    Duration,
    Life,
    Process,
    after_working_days,
    arrival_times,
    draw_life,
    load_process,
    load_processes,
)
from simulators.marketing.seed import generate_rows
from simulators.marketing.world import ApplicationRow, status_flow
from workflow.config import load_workflow_config
from workflow.workdays import WorkingCalendar

CALENDAR = WorkingCalendar()
# A Monday of a year whose calendar is published; the process model never reads the wall clock.
MONDAY = datetime(2026, 3, 2, 10, 0)


@pytest.fixture(scope="module")
def rows() -> list[ApplicationRow]:
    _, applications = generate_rows(11, 300, 3000)
    return applications


@pytest.fixture(scope="module")
def manual() -> Process:
    return load_process("manual")


def _lives(process: Process, rows: list[ApplicationRow], seed: int = 5) -> list[Life]:
    times = arrival_times(len(rows), date(2026, 3, 2), date(2026, 6, 30), random.Random(seed), CALENDAR)
    return [draw_life(process, row, at, seed, CALENDAR) for row, at in zip(rows, times, strict=True)]


def _only(process: Process, **changes: object) -> Process:
    """The process with no returns, entry errors or closures, except those given."""
    quiet = replace(
        process,
        documents_missing=0.0,
        returns={},
        entry_error_rate=0.0,
        withdrawal_rate=0.0,
        cancellation_rate=0.0,
    )
    return replace(quiet, **changes)  # type: ignore[arg-type]


def _share(lives: list[Life], test: Callable[[Life], bool]) -> float:
    return sum(1 for life in lives if test(life)) / len(lives)


def test_the_same_seed_draws_the_same_life_and_another_seed_another(
    manual: Process, rows: list[ApplicationRow]
) -> None:
    sample = rows[:200]
    first = [draw_life(manual, row, MONDAY, 1, CALENDAR) for row in sample]
    again = [draw_life(manual, row, MONDAY, 1, CALENDAR) for row in sample]
    other = [draw_life(manual, row, MONDAY, 2, CALENDAR) for row in sample]
    assert first == again
    assert sum(a != b for a, b in zip(first, other, strict=True)) > 150


def test_a_life_runs_its_flow_in_time_order_within_office_hours(
    manual: Process, rows: list[ApplicationRow]
) -> None:
    for life in _lives(manual, rows[:500]):
        times = [life.accepted_at, *(change.at for change in life.changes)]
        assert all(later - earlier >= timedelta(minutes=1) for earlier, later in itertools.pairwise(times))
        for change in life.changes:
            assert CALENDAR.is_workday(change.at.date())
            assert OFFICE_OPENS <= change.at.time() <= OFFICE_CLOSES
            assert change.at.microsecond == 0
        statuses = [life.flow[0], *(change.status for change in life.changes)]
        for before, after in itertools.pairwise(statuses):
            if after in ("11", "12"):
                continue
            step = life.flow.index(after) - life.flow.index(before)
            assert step == 1 or step < 0, f"{life.app_no}: {before} -> {after}"
        assert statuses[-1] in (life.flow[-1], "11", "12")
        assert life.flow == status_flow(next(row for row in rows if row["APP_NO"] == life.app_no))


def test_durations_are_log_normal_with_the_configured_median_and_p90() -> None:
    rng = random.Random(3)
    duration = Duration(median=2.5, p90=4.0)
    draws = sorted(duration.draw(rng) for _ in range(20000))
    assert statistics.median(draws) == pytest.approx(2.5, rel=0.03)
    assert draws[int(0.9 * len(draws))] == pytest.approx(4.0, rel=0.03)


def test_a_working_day_ends_at_the_same_time_on_the_next_working_day() -> None:
    friday = datetime(2026, 3, 6, 10, 0)
    assert after_working_days(friday, 1.0, CALENDAR) == datetime(2026, 3, 9, 10, 0)
    evening = datetime(2026, 3, 6, 20, 0)  # after hours: work starts on the next working morning
    assert after_working_days(evening, 0.5, CALENDAR) == datetime.combine(date(2026, 3, 9), time(13, 0))
    # Across the National Day holiday, every day counted is a working day of the calendar.
    end = after_working_days(datetime(2026, 9, 30, 9, 0), 3.0, CALENDAR)
    workdays = CALENDAR.working_days_after(date(2026, 9, 30), end.date())
    assert workdays == 3 and CALENDAR.is_workday(end.date())


def test_missing_documents_send_the_configured_share_back_to_acceptance(
    manual: Process, rows: list[ApplicationRow]
) -> None:
    lives = _lives(_only(manual, documents_missing=0.10), rows)
    code = CAUSE_CODES["documents_missing"]
    returned = [life for life in lives if any(change.cause == code for change in life.returns)]
    assert 0.085 <= len(returned) / len(lives) <= 0.115
    assert all(change.status == life.flow[0] for life in returned for change in life.returns)


def test_survey_entry_errors_come_back_later_as_information_errors(
    manual: Process, rows: list[ApplicationRow]
) -> None:
    lives = _lives(_only(manual, entry_error_rate=0.15, entry_error_found_at=("03", "07", "09")), rows)
    code = CAUSE_CODES["information_error"]
    assert 0.13 <= _share(lives, lambda life: [c.cause for c in life.returns] == [code]) <= 0.17
    for life in lives:
        for change in life.returns:
            # Back to where the survey data was entered: the survey, the scheme reply, or acceptance.
            entered = next((s for s in ("02", "03") if s in life.flow), life.flow[0])
            assert change.status == entered


def test_an_entry_error_caught_when_made_sends_nothing_back_and_shortens_the_life(
    manual: Process, rows: list[ApplicationRow]
) -> None:
    errors_only = _only(manual, entry_error_rate=1.0, entry_error_found_at=("03", "07", "09"))
    code = CAUSE_CODES["information_error"]
    compared = 0
    for row in rows[:300]:
        missed = draw_life(errors_only, row, MONDAY, 5, CALENDAR)
        caught = draw_life(errors_only, row, MONDAY, 5, CALENDAR, entry_error_caught=True)
        assert caught.entry_error_at == missed.entry_error_at
        if missed.entry_error_at is None:
            continue
        compared += 1
        (sent_back,) = [change for change in missed.returns if change.cause == code]
        assert missed.entry_error_at < sent_back.at
        assert caught.returns == []
        # The same life up to the step that would have found the error, then no return.
        before = tuple(change for change in missed.changes if change.at < sent_back.at)
        assert caught.changes[: len(before)] == before
        powered, without_rework = missed.powered_at(), caught.powered_at()
        assert powered is not None and without_rework is not None and without_rework < powered
    assert compared > 250


def test_a_life_without_an_entry_error_has_no_entry_error_time(
    manual: Process, rows: list[ApplicationRow]
) -> None:
    quiet = _only(manual)
    assert all(draw_life(quiet, row, MONDAY, 5, CALENDAR).entry_error_at is None for row in rows[:100])


def test_completion_inspection_passes_first_time_at_the_configured_rate(
    manual: Process, rows: list[ApplicationRow]
) -> None:
    process = _only(manual, returns={"07": manual.returns["07"]})
    full_chain = [row for row in rows if "07" in status_flow(row)]
    # A life depends on its seed and application number: many seeds make many lives of few applications.
    lives = [draw_life(process, row, MONDAY, seed, CALENDAR) for row in full_chain for seed in range(100)]
    assert len(lives) >= 2000
    failed = _share(lives, lambda life: any(change.status == "06" for change in life.returns))
    assert 0.85 <= 1 - failed <= 0.95
    assert 0.08 <= failed <= 0.12  # configured 0.10


def test_withdrawals_and_cancellations_end_lives_at_the_configured_rates(
    manual: Process, rows: list[ApplicationRow]
) -> None:
    lives = _lives(_only(manual, withdrawal_rate=0.05, cancellation_rate=0.02), rows)
    assert 0.04 <= _share(lives, lambda life: life.outcome == "withdrawn") <= 0.06
    assert 0.013 <= _share(lives, lambda life: life.outcome == "cancelled") <= 0.027
    closed = [life for life in lives if life.outcome != "energised"]
    assert all(life.powered_at() is None and life.changes[-1].status in ("11", "12") for life in closed)
    assert all(life.changes[-2].status != "09" for life in closed if len(life.changes) > 1)


def test_the_manual_process_matches_the_paper_figures_on_the_seeded_mix(
    manual: Process, rows: list[ApplicationRow]
) -> None:
    lives = _lives(manual, rows)
    powered = [life for life in lives if life.outcome == "energised"]
    days = [_days_to_power(life) for life in powered]
    assert 40 <= statistics.mean(days) <= 50  # 45 days application to power
    information = CAUSE_CODES["information_error"]
    reworked = _share(lives, lambda life: any(change.cause == information for change in life.returns))
    assert 0.16 <= reworked <= 0.24  # about 20% reworked for information errors
    documents = CAUSE_CODES["documents_missing"]
    assert 0.05 <= _share(lives, lambda life: any(c.cause == documents for c in life.returns)) <= 0.15


def test_the_integrated_process_is_faster_keeps_entry_errors_and_runs_5_to_10_percent_over_limits(
    manual: Process, rows: list[ApplicationRow]
) -> None:
    integrated = load_process("integrated")
    assert integrated.entry_error_rate == manual.entry_error_rate
    assert integrated.durations["03"].median <= 1.0 < manual.durations["03"].median
    config = load_workflow_config(PROJECT_ROOT)
    flow = config.flow_named("lv_residential_2_step")
    assert flow is not None
    rng = random.Random(9)
    for status, stage in (("01", "acceptance"), ("09", "energisation")):
        limit = config.limit_days(flow, stage, None)
        assert limit is not None
        duration = integrated.duration(status, "01", "41401")
        over = sum(duration.draw(rng) > limit for _ in range(20000)) / 20000
        assert 0.05 <= over <= 0.10, (status, over)
    lives = _lives(integrated, rows)
    powered = [life for life in lives if life.outcome == "energised"]
    days = [_days_to_power(life) for life in powered]
    assert statistics.mean(days) < 15


def test_a_unit_overrides_its_class_and_the_class_the_default(manual: Process) -> None:
    assert manual.duration("01", "01", "41401") == manual.durations["01"]
    assert manual.duration("03", "03", "41401") == manual.by_class["03"]["03"]
    assert manual.duration("01", "03", "41405") == manual.by_unit["41405"]["01"]


def _days_to_power(life: Life) -> float:
    powered = life.powered_at()
    assert powered is not None
    return (powered - life.accepted_at).total_seconds() / 86400


BROKEN = """\
max_returns: 3
processes:
  slow:
    description: broken on purpose
    durations:
      default:
        "01": {median: 2.0, p90: 1.0}
        "02": {median: 2.0, p90: 3.0}
        "03": {median: 2.0, p90: 3.0}
        "04": {median: 2.0, p90: 3.0}
        "05": {median: 2.0, p90: 3.0}
        "06": {median: 2.0, p90: 3.0}
        "07": {median: 2.0, p90: 3.0}
        "08": {median: 2.0, p90: 3.0}
        "11": {median: 2.0, p90: 3.0}
      by_class:
        "07": {"01": {median: 1.0, p90: 2.0}}
    documents_missing: 1.5
    returns:
      "07": {rate: 0.1, causes: {bad_weather: 1}}
      "01": {rate: 0.1, causes: {design_change: 1}}
    entry_errors: {rate: 0.15, found_at: ["03", "10"]}
    withdrawal_rate: 0.03
    cancellation_rate: 0.01
    speed: fast
"""


def _line(text: str, needle: str, occurrence: int = 1) -> int:
    lines = [number for number, line in enumerate(text.splitlines(), 1) if needle in line]
    return lines[occurrence - 1]


def test_the_loader_names_file_and_line_of_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "process.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_processes(path)
    text = str(caught.value)
    expected = [
        (_line(BROKEN, '"01": {median: 2.0, p90: 1.0}'), "p90 (1.0) must be greater than the median (2.0)"),
        (_line(BROKEN, '"11": {median'), "'11' is not a status an application waits in"),
        (_line(BROKEN, "default:"), "every waiting status needs a duration; missing 01, 09"),
        (_line(BROKEN, '"07": {"01"'), "'07' is not a CUST_CLASS_CODE"),
        (_line(BROKEN, "documents_missing: 1.5"), "'documents_missing' must be a share from 0 to 1, got 1.5"),
        (_line(BROKEN, "bad_weather"), "unknown cause 'bad_weather'"),
        (_line(BROKEN, '"01": {rate'), "a return is decided at a status from 02 to 09, not '01'"),
        (_line(BROKEN, 'found_at: ["03", "10"]'), "'10' is not a status where work is checked"),
        (_line(BROKEN, "speed: fast"), "unknown key 'speed' in process 'slow'"),
    ]
    for line, message in expected:
        assert f"{path}:{line}: " in text and message in text, (line, message, text)
    assert f"{len(expected)} configuration errors" in text


def test_an_unknown_process_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no process 'fast' .* it has: integrated, manual"):
        load_process("fast")


def test_the_shipped_processes_load() -> None:
    assert sorted(load_processes()) == ["integrated", "manual"]
