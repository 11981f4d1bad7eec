"""A process model of the simulated marketing system, and the lives of applications drawn from it.

A process (simulators/marketing/process.yaml) says how long each step takes per customer class and unit,
how often a step ends in a return to an earlier one and why, how often a survey is entered wrongly, and how
often an application is withdrawn or cancelled. From a seed, draw_life turns an application into its LIFE:
the time-stamped STATUS_CODE changes from acceptance to archive, withdrawal or cancellation. The same seed
and application always give the same life. Durations are working days of workflow/workdays.py, spent in
office hours, so a life never changes status at night, at weekends or on holidays.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from ground.errors import ConfigError
from mappings.yamlfile import Diagnostics, is_list, is_map, item_line, key_line, read_yaml, unknown_keys
from simulators.marketing.world import (
    CANCELLED_STATUS,
    WITHDRAWN_STATUS,
    ApplicationRow,
    status_flow,
)
from workflow.workdays import WorkingCalendar

PROCESS_FILE = Path(__file__).with_name("process.yaml")
OFFICE_OPENS = time(8, 30)
OFFICE_CLOSES = time(17, 30)
_OFFICE_SECONDS = (
    datetime.combine(date.min, OFFICE_CLOSES) - datetime.combine(date.min, OFFICE_OPENS)
).total_seconds()
# The 90th percentile of the standard normal distribution: p90 = median * exp(sigma * _Z90).
_Z90 = 1.2815515655446004
# Two changes of one application lie at least this far apart, so each has its own legacy second.
_MIN_STEP = timedelta(minutes=1)
# RETURN_REASON_CODE of each cause (mappings/codes/marketing/return_reason_code.yaml).
CAUSE_CODES = {
    "information_error": "01",
    "documents_missing": "02",
    "design_change": "03",
    "grid_constraint": "04",
}
# Statuses an application waits in; "10" (archived) ends its life.
WAITING_STATUSES = ("01", "02", "03", "04", "05", "06", "07", "08", "09")
ENERGISATION_STATUS = "09"
_SURVEY_STATUSES = ("02", "03")
_TOP_KEYS = ("max_returns", "processes")
_PROCESS_KEYS = (
    "description",
    "durations",
    "documents_missing",
    "returns",
    "entry_errors",
    "withdrawal_rate",
    "cancellation_rate",
)
_DURATION_KEYS = ("default", "by_class", "by_unit")
_CUST_CLASSES = ("01", "02", "03", "04")


@dataclass(frozen=True)
class Duration:
    """A log-normal duration in working days, given by its median and 90th percentile."""

    median: float
    p90: float

    def draw(self, rng: random.Random) -> float:
        """One duration in working days."""
        sigma = math.log(self.p90 / self.median) / _Z90
        return rng.lognormvariate(math.log(self.median), sigma)


@dataclass(frozen=True)
class ReturnRule:
    """At the end of a step: the chance of a return to the step before it, and its causes' weights."""

    rate: float
    causes: tuple[tuple[str, float], ...]

    def cause(self, rng: random.Random) -> str:
        """A RETURN_REASON_CODE drawn by the weights."""
        codes = [CAUSE_CODES[name] for name, _ in self.causes]
        return rng.choices(codes, weights=[weight for _, weight in self.causes])[0]


@dataclass(frozen=True)
class Process:
    """One named parameter set of the process model."""

    name: str
    description: str
    durations: Mapping[str, Duration]
    by_class: Mapping[str, Mapping[str, Duration]]
    by_unit: Mapping[str, Mapping[str, Duration]]
    documents_missing: float
    returns: Mapping[str, ReturnRule]
    entry_error_rate: float
    entry_error_found_at: tuple[str, ...]
    withdrawal_rate: float
    cancellation_rate: float
    max_returns: int

    def duration(self, status: str, cust_class: str, unit: str) -> Duration:
        """The duration of a step for an application of this class and unit: the unit's, the class's or
        the default one."""
        for table, key in ((self.by_unit, unit), (self.by_class, cust_class)):
            found = table.get(key, {}).get(status)
            if found is not None:
                return found
        return self.durations[status]


@dataclass(frozen=True)
class Change:
    """One STATUS_CODE change of an application at a legacy local time; cause is its RETURN_REASON_CODE."""

    at: datetime
    status: str
    cause: str | None = None


@dataclass(frozen=True)
class Life:
    """An application's drawn life: accepted at accepted_at in "01", then its changes, oldest first."""

    app_no: str
    accepted_at: datetime
    flow: tuple[str, ...]
    changes: tuple[Change, ...]
    # When the survey step was finished with a mistyped record; None when it was entered right.
    entry_error_at: datetime | None = None

    @property
    def outcome(self) -> str:
        """energised, withdrawn or cancelled: how the life ends."""
        last = self.changes[-1].status if self.changes else self.flow[0]
        return {WITHDRAWN_STATUS: "withdrawn", CANCELLED_STATUS: "cancelled"}.get(last, "energised")

    @property
    def returns(self) -> list[Change]:
        """The changes that went back to an earlier step."""
        flow = self.flow
        previous = flow[0]
        found: list[Change] = []
        for change in self.changes:
            if change.status in flow and flow.index(change.status) < flow.index(previous):
                found.append(change)
            previous = change.status
        return found

    def powered_at(self) -> datetime | None:
        """When energisation was finished (the archive change), or None for a life that did not get there."""
        return next((change.at for change in self.changes if change.status == self.flow[-1]), None)


def after_working_days(start: datetime, days: float, calendar: WorkingCalendar) -> datetime:
    """The moment `days` office days of work after start (a naive Asia/Shanghai time)."""
    remaining = days * _OFFICE_SECONDS
    moment = _office_time(start, calendar)
    while True:
        closes = datetime.combine(moment.date(), OFFICE_CLOSES)
        available = (closes - moment).total_seconds()
        if remaining <= available:
            return moment + timedelta(seconds=remaining)
        remaining -= available
        moment = _office_time(closes + timedelta(seconds=1), calendar)


def _office_time(moment: datetime, calendar: WorkingCalendar) -> datetime:
    """moment if it lies in office hours of a working day, else the next opening time."""
    day = moment.date()
    if moment.time() < OFFICE_OPENS and calendar.is_workday(day):
        return datetime.combine(day, OFFICE_OPENS)
    if moment.time() <= OFFICE_CLOSES and calendar.is_workday(day):
        return moment
    day += timedelta(days=1)
    while not calendar.is_workday(day):
        day += timedelta(days=1)
    return datetime.combine(day, OFFICE_OPENS)


def arrival_times(
    count: int, first_day: date, last_day: date, rng: random.Random, calendar: WorkingCalendar
) -> list[datetime]:
    """count acceptance times in office hours of the working days from first_day to last_day, sorted."""
    days = [
        first_day + timedelta(days=offset)
        for offset in range((last_day - first_day).days + 1)
        if calendar.is_workday(first_day + timedelta(days=offset))
    ]
    if count and not days:
        raise ConfigError(f"no working day from {first_day} to {last_day} to accept applications on")
    moments = [
        datetime.combine(rng.choice(days), OFFICE_OPENS)
        + timedelta(seconds=rng.randrange(int(_OFFICE_SECONDS)))
        for _ in range(count)
    ]
    return sorted(moments)


def _survey_index(flow: Sequence[str]) -> int:
    """Where survey data is entered: the site survey, else the scheme reply, else acceptance."""
    return next((flow.index(status) for status in _SURVEY_STATUSES if status in flow), 0)


def draw_life(
    process: Process,
    row: ApplicationRow,
    accepted_at: datetime,
    seed: int,
    calendar: WorkingCalendar,
    *,
    entry_error_caught: bool = False,
) -> Life:
    """The life of an application accepted at accepted_at (naive local time); the same seed, the same life.

    entry_error_caught draws the life in which a survey entry error was corrected as soon as it was made, so
    it never sends the application back: the same life up to the step where the error would have been found.
    """
    rng = random.Random(f"{seed}:{process.name}:{row['APP_NO']}")
    flow = status_flow(row)
    last = len(flow) - 1
    # Every decision that does not depend on the path is drawn first, in a fixed order.
    closing = rng.random()
    closing_status = (
        WITHDRAWN_STATUS
        if closing < process.withdrawal_rate
        else CANCELLED_STATUS
        if closing < process.withdrawal_rate + process.cancellation_rate
        else None
    )
    before_energisation = [index for index in range(last) if flow[index] != ENERGISATION_STATUS]
    closing_index = rng.choice(before_energisation)
    closing_share = rng.random()
    documents_missing = rng.random() < process.documents_missing and last > 1
    entry_error = rng.random() < process.entry_error_rate
    survey = _survey_index(flow)
    found = next(
        (index for index in range(survey + 1, last) if flow[index] in process.entry_error_found_at),
        min(survey + 1, last - 1),
    )
    entry_error = entry_error and found > survey
    entry_error_at: datetime | None = None
    changes: list[Change] = []
    moment = accepted_at
    index = 0
    returns = 0
    while index < last:
        status = flow[index]
        days = process.duration(status, row["CUST_CLASS_CODE"], row["ORG_NO"]).draw(rng)
        if closing_status is not None and index == closing_index:
            moment = _later(moment, after_working_days(moment, days * closing_share, calendar))
            changes.append(Change(moment, closing_status))
            break
        moment = _later(moment, after_working_days(moment, days, calendar))
        if entry_error and index == survey and entry_error_at is None:
            entry_error_at = moment
        target, cause = index + 1, None
        if documents_missing and index == 1:
            documents_missing = False
            target, cause = 0, CAUSE_CODES["documents_missing"]
        elif entry_error and index == found and not entry_error_caught:
            entry_error = False
            target, cause = survey, CAUSE_CODES["information_error"]
        else:
            rule = process.returns.get(status)
            if rule is not None and index > 0 and returns < process.max_returns and rng.random() < rule.rate:
                returns += 1
                target, cause = index - 1, rule.cause(rng)
        changes.append(Change(moment, flow[target], cause))
        index = target
    return Life(row["APP_NO"], accepted_at, flow, tuple(changes), entry_error_at)


def _later(previous: datetime, moment: datetime) -> datetime:
    """moment on a whole second, at least _MIN_STEP after previous."""
    return max(moment, previous + _MIN_STEP).replace(microsecond=0)


class _Reader:
    """Validates one process file's nodes, recording each problem with its line."""

    def __init__(self, diag: Diagnostics, file: str) -> None:
        self.diag = diag
        self.file = file

    def error(self, message: str, line: int) -> None:
        self.diag.error(message, self.file, line)

    def keys(self, node: Any, allowed: Sequence[str], what: str) -> None:
        for key, line in unknown_keys(node, allowed):
            self.error(f"unknown key '{key}' in {what}; expected one of: {', '.join(allowed)}", line)

    def share(self, node: Any, key: str, what: str) -> float:
        value = node.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            line = key_line(node, key) if key in node else _line(node)
            self.error(f"{what}: '{key}' must be a share from 0 to 1, got {value!r}", line)
            return 0.0
        return float(value)

    def duration(self, node: Any, status: Any, what: str) -> Duration | None:
        line = key_line(node, status)
        body = node[status]
        if status not in WAITING_STATUSES:
            self.error(
                f"{what}: {status!r} is not a status an application waits in ({', '.join(WAITING_STATUSES)})",
                line,
            )
            return None
        if not is_map(body) or set(body) != {"median", "p90"}:
            self.error(f"{what} {status}: give {{median: working days, p90: working days}}", line)
            return None
        median, p90 = body["median"], body["p90"]
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (median, p90))
        if not numbers or median <= 0:
            self.error(
                f"{what} {status}: median and p90 must be positive numbers, got {median!r}, {p90!r}", line
            )
            return None
        if p90 <= median:
            self.error(f"{what} {status}: p90 ({p90}) must be greater than the median ({median})", line)
            return None
        return Duration(float(median), float(p90))

    def durations(self, node: Any, what: str) -> dict[str, Duration]:
        found: dict[str, Duration] = {}
        if not is_map(node):
            self.error(f"{what} must map status -> {{median, p90}}", _line(node))
            return found
        for status in node:
            duration = self.duration(node, status, what)
            if duration is not None:
                found[status] = duration
        return found

    def grouped(
        self, node: Any, key: str, what: str, allowed: Sequence[str] | None
    ) -> dict[str, dict[str, Duration]]:
        groups: dict[str, dict[str, Duration]] = {}
        body = node.get(key, {})
        if body == {}:
            return groups
        if not is_map(body):
            self.error(f"{what}: '{key}' must map a code to durations", key_line(node, key))
            return groups
        for code, durations in body.items():
            code_text = str(code)
            if allowed is not None and code_text not in allowed:
                self.error(
                    f"{what} {key}: {code!r} is not a CUST_CLASS_CODE ({', '.join(allowed)})",
                    key_line(body, code),
                )
                continue
            groups[code_text] = self.durations(durations, f"{what} {key} {code_text}")
        return groups


def _line(node: Any) -> int:
    return int(node.lc.line) + 1 if is_map(node) or is_list(node) else 1


def _read_returns(reader: _Reader, node: Any, what: str) -> dict[str, ReturnRule]:
    rules: dict[str, ReturnRule] = {}
    if node is None:
        return rules
    if not is_map(node):
        reader.error(f"{what}: 'returns' must map status -> {{rate, causes}}", _line(node))
        return rules
    for status, body in node.items():
        line = key_line(node, status)
        label = f"{what} return at {status}"
        if status not in WAITING_STATUSES or status == WAITING_STATUSES[0]:
            reader.error(f"{label}: a return is decided at a status from 02 to 09, not {status!r}", line)
            continue
        if not is_map(body):
            reader.error(f"{label}: give {{rate: share, causes: {{cause: weight}}}}", line)
            continue
        reader.keys(body, ("rate", "causes"), label)
        rate = reader.share(body, "rate", label)
        causes = body.get("causes")
        if not is_map(causes) or not causes:
            reader.error(f"{label}: 'causes' must map a cause to its weight", line)
            continue
        weights: list[tuple[str, float]] = []
        for cause, weight in causes.items():
            if cause not in CAUSE_CODES:
                reader.error(
                    f"{label}: unknown cause {cause!r}; expected one of: {', '.join(CAUSE_CODES)}",
                    key_line(causes, cause),
                )
            elif isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
                reader.error(
                    f"{label}: the weight of {cause} must be positive, got {weight!r}",
                    key_line(causes, cause),
                )
            else:
                weights.append((cause, float(weight)))
        if len(weights) == len(causes):
            rules[str(status)] = ReturnRule(rate, tuple(weights))
    return rules


def _read_entry_errors(reader: _Reader, node: Any, what: str) -> tuple[float, tuple[str, ...]]:
    if not is_map(node):
        reader.error(f"{what}: 'entry_errors' must be {{rate: share, found_at: [status, ...]}}", _line(node))
        return 0.0, ()
    reader.keys(node, ("rate", "found_at"), f"{what} entry_errors")
    rate = reader.share(node, "rate", f"{what} entry_errors")
    found_at = node.get("found_at")
    if not is_list(found_at) or not found_at:
        reader.error(f"{what} entry_errors: 'found_at' must list statuses", _line(node))
        return rate, ()
    statuses: list[str] = []
    for index, status in enumerate(found_at):
        if status not in WAITING_STATUSES[1:]:
            reader.error(
                f"{what} entry_errors: {status!r} is not a status where work is checked (02 to 09)",
                item_line(found_at, index),
            )
        else:
            statuses.append(status)
    return rate, tuple(statuses)


def _read_process(reader: _Reader, name: str, node: Any, max_returns: int) -> Process | None:
    what = f"process '{name}'"
    before = len(reader.diag.errors)
    if not is_map(node):
        reader.error(f"{what} must be a map with keys: {', '.join(_PROCESS_KEYS)}", _line(node))
        return None
    reader.keys(node, _PROCESS_KEYS, what)
    description = node.get("description", "")
    durations_node = node.get("durations")
    defaults: dict[str, Duration] = {}
    by_class: dict[str, dict[str, Duration]] = {}
    by_unit: dict[str, dict[str, Duration]] = {}
    if not is_map(durations_node):
        reader.error(f"{what} needs 'durations' with keys: {', '.join(_DURATION_KEYS)}", _line(node))
    else:
        reader.keys(durations_node, _DURATION_KEYS, f"{what} durations")
        defaults = reader.durations(durations_node.get("default"), f"{what} durations default")
        missing = [status for status in WAITING_STATUSES if status not in defaults]
        if missing and "default" in durations_node and is_map(durations_node["default"]):
            reader.error(
                f"{what} durations default: every waiting status needs a duration; "
                f"missing {', '.join(missing)}",
                key_line(durations_node, "default"),
            )
        by_class = reader.grouped(durations_node, "by_class", f"{what} durations", _CUST_CLASSES)
        by_unit = reader.grouped(durations_node, "by_unit", f"{what} durations", None)
    documents_missing = reader.share(node, "documents_missing", what)
    returns = _read_returns(reader, node.get("returns"), what)
    entry_rate, found_at = _read_entry_errors(reader, node.get("entry_errors"), what)
    withdrawal = reader.share(node, "withdrawal_rate", what)
    cancellation = reader.share(node, "cancellation_rate", what)
    if withdrawal + cancellation > 1:
        reader.error(f"{what}: withdrawal_rate and cancellation_rate add up to more than 1", _line(node))
    if len(reader.diag.errors) > before:
        return None
    return Process(
        name,
        str(description),
        defaults,
        by_class,
        by_unit,
        documents_missing,
        returns,
        entry_rate,
        found_at,
        withdrawal,
        cancellation,
        max_returns,
    )


def load_processes(path: Path = PROCESS_FILE) -> dict[str, Process]:
    """Every process of a process file; ConfigError with file:line for each problem found."""
    diag = Diagnostics()
    file = str(path)
    reader = _Reader(diag, file)
    document = read_yaml(path, file, diag)
    processes: dict[str, Process] = {}
    if document is not None and not is_map(document):
        reader.error(f"a process file is a map with keys: {', '.join(_TOP_KEYS)}", 1)
    elif is_map(document):
        reader.keys(document, _TOP_KEYS, "the process file")
        max_returns = document.get("max_returns", 3)
        if isinstance(max_returns, bool) or not isinstance(max_returns, int) or max_returns < 0:
            line = key_line(document, "max_returns") if "max_returns" in document else 1
            reader.error(f"'max_returns' must be a whole number of at least 0, got {max_returns!r}", line)
            max_returns = 0
        body = document.get("processes")
        if not is_map(body) or not body:
            reader.error("'processes' must map a process name to its settings", _line(document))
        else:
            for name, node in body.items():
                process = _read_process(reader, str(name), node, max_returns)
                if process is not None:
                    processes[str(name)] = process
    diag.raise_if_any()
    return processes


def load_process(name: str, path: Path = PROCESS_FILE) -> Process:
    """One named process of a process file; ConfigError when the file is broken or lacks it."""
    processes = load_processes(path)
    if name not in processes:
        raise ConfigError(f"no process '{name}' in {path}; it has: {', '.join(sorted(processes)) or 'none'}")
    return processes[name]
