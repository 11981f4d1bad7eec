"""Workflow configuration: the stage model (workflow/stages.yaml) and survey roster (workflow/roster.yaml).

Both files are read with line numbers and checked as a whole; every problem is reported with file:line,
the same way as mappings and routes, and `yekuo check-config` includes them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canonical_model.application import BusinessType, ConnectionApplication, CustomerClass, ImportanceGrade
from canonical_model.case import CaseOutcome
from feasibility.basis import supply_class
from feasibility.config import FEASIBILITY_FOLDER, RULES_FILE, FeasibilityConfig, read_feasibility_config
from ground.errors import ConfigError
from mappings.codes import CodeTables
from mappings.yamlfile import Diagnostics, is_list, is_map, item_line, key_line, read_yaml, unknown_keys
from workflow.workdays import LATE_DECEMBER_FROM

WORKFLOW_FOLDER = "workflow"
STAGES_FILE = "stages.yaml"
ROSTER_FILE = "roster.yaml"
# Code tables named <system>/status_code translate a legacy status into a stage id of the stage model.
STATUS_CODE_TABLE = "status_code"

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_INDUSTRY = re.compile(r"^[A-T]\d{0,4}$")
_CLASSES = tuple(member.value for member in CustomerClass)
_BUSINESS_TYPES = tuple(member.value for member in BusinessType)
_TOP_KEYS = ("stages", "commitments", "special_loads", "flows", "monitoring", "calendar", "provinces")
_STAGE_KEYS = ("name", "outcome")
# Outcomes a closing stage can give; energised is the outcome of reaching a flow's terminal stage.
_CLOSING_OUTCOMES = tuple(member.value for member in CaseOutcome if member is not CaseOutcome.ENERGISED)
_FLOW_KEYS = ("description", "when", "commitment_days", "steps")
_WHEN_KEYS = ("classes", "important")
_STEP_KEYS = ("stage", "limit_days", "survey", "customer_works")
_MONITORING_KEYS = ("at_risk_days", "interval_s")
_PROVINCE_KEYS = ("name", "org_prefixes", "commitments", "limits", "at_risk_days")
_STAFF_KEYS = ("id", "name", "unit", "regions", "business_types", "capacity")


@dataclass(frozen=True)
class Step:
    """One stage of a flow with its limit in working days (None for the terminal stage).

    customer_works: the customer's own works (外部工程); the utility's end-to-end commitment does not count
    them, so the end-to-end clock stops while a case is in such a stage.
    """

    stage: str
    limit_days: int | None
    survey: bool
    customer_works: bool = False


@dataclass(frozen=True)
class Flow:
    """A process for some applications: its selector and its ordered steps."""

    name: str
    description: str
    classes: frozenset[str]
    important: bool | None
    steps: tuple[Step, ...]
    commitment_days: int | None = None

    def matches(
        self,
        application: ConnectionApplication,
        *,
        special_load: bool = False,
        supply_class: CustomerClass | None = None,
    ) -> bool:
        """Whether this flow's selector takes the application; a special load counts as important, as
        both need design review and mid-construction inspection. supply_class: the class the supply level
        gives (feasibility/basis.py), when it differs from the declared one."""
        customer_class = supply_class or application.customer_class
        if customer_class.value not in self.classes:
            return False
        important = special_load or application.importance_grade is not ImportanceGrade.NONE
        return self.important is None or self.important == important

    def position(self, stage: str) -> int | None:
        """Index of a stage in the flow, or None when the flow does not have it."""
        for index, step in enumerate(self.steps):
            if step.stage == stage:
                return index
        return None

    def step(self, stage: str) -> Step | None:
        """The step of a stage, or None."""
        index = self.position(stage)
        return None if index is None else self.steps[index]

    @property
    def first_stage(self) -> str:
        """Where every case of this flow starts."""
        return self.steps[0].stage

    @property
    def terminal_stage(self) -> str:
        """The last stage: reaching it closes the case."""
        return self.steps[-1].stage


@dataclass(frozen=True)
class Monitoring:
    """Deadline monitoring settings."""

    at_risk_days: int
    interval_s: float


@dataclass(frozen=True)
class Province:
    """Province-specific limits, chosen by supply-unit prefix."""

    id: str
    name: str
    org_prefixes: tuple[str, ...]
    limits: Mapping[str, Mapping[str, int]]
    at_risk_days: int | None
    commitments: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StaffMember:
    """A person who does site surveys."""

    id: str
    name: str
    unit: str
    regions: frozenset[str]
    business_types: frozenset[str]
    capacity: int


@dataclass(frozen=True)
class WorkflowConfig:
    """The stage model, end-to-end commitments, monitoring settings, provinces and survey roster."""

    stages: Mapping[str, str]
    flows: tuple[Flow, ...]
    monitoring: Monitoring
    provinces: tuple[Province, ...]
    staff: tuple[StaffMember, ...]
    commitments: Mapping[str, int] = field(default_factory=dict)
    late_december_from: int = LATE_DECEMBER_FROM
    special_industry_codes: tuple[str, ...] = ()
    # Stages outside every flow that close a case from any stage, with the outcome they give.
    closing_stages: Mapping[str, CaseOutcome] = field(default_factory=dict)
    # The low/high-voltage basis of feasibility/rules.yaml, shared with the feasibility engine; None where
    # the configuration has no rules (flows are then chosen by the declared class alone).
    supply_basis: FeasibilityConfig | None = None

    def is_special_load(self, application: ConnectionApplication) -> bool:
        """Flagged as a special load, or declaring an industry whose code starts with a configured one."""
        code = application.industry_code or ""
        return application.special_load is True or any(
            code.startswith(prefix) for prefix in self.special_industry_codes
        )

    def supply_class(self, application: ConnectionApplication) -> CustomerClass:
        """The class whose flow the application follows: a low-voltage class the feasibility basis puts on
        high voltage (too large for the ceiling in kW, or an important grade) follows a high-voltage flow,
        so the workflow and the engine never disagree about low voltage."""
        if self.supply_basis is None:
            return application.customer_class
        return supply_class(
            self.supply_basis.rules_for(application.org_no),
            application.customer_class,
            application.importance_grade,
            application.requested_capacity_kva,
            application.urban_rural,
            application.requested_voltage_kv,
        )

    def flow_for(self, application: ConnectionApplication) -> Flow:
        """The first flow whose selector takes the application (the loader proves one always does)."""
        special = self.is_special_load(application)
        chosen = self.supply_class(application)
        for flow in self.flows:
            if flow.matches(application, special_load=special, supply_class=chosen):
                return flow
        raise ConfigError(
            f"no flow of {WORKFLOW_FOLDER}/{STAGES_FILE} takes application {application.application_no} "
            f"(class {application.customer_class.value}, importance {application.importance_grade.value})"
        )

    def flow_named(self, name: str) -> Flow | None:
        """A flow by name, or None."""
        return next((flow for flow in self.flows if flow.name == name), None)

    def province_for(self, org_no: str | None) -> Province | None:
        """The province whose longest prefix matches the supply unit, or None."""
        if not org_no:
            return None
        best: tuple[int, Province] | None = None
        for province in self.provinces:
            for prefix in province.org_prefixes:
                if org_no.startswith(prefix) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), province)
        return best[1] if best else None

    def limit_days(self, flow: Flow, stage: str, province: Province | None) -> int | None:
        """The limit of a stage in a flow, with the province's override if it has one."""
        step = flow.step(stage)
        if step is None or step.limit_days is None:
            return None
        if province is not None:
            override = province.limits.get(flow.name, {}).get(stage)
            if override is not None:
                return override
        return step.limit_days

    def commitment_days(self, flow: Flow, province: Province | None) -> int:
        """Working days the utility commits to for a case of this flow, end to end.

        A flow's own commitment_days wins; otherwise its class's commitment (the province's, if it sets
        one); a flow serving several classes is held to the tightest of them.
        """
        if flow.commitment_days is not None:
            return flow.commitment_days
        by_class = {**self.commitments, **(province.commitments if province is not None else {})}
        return min(by_class[cls] for cls in flow.classes)

    def committed_days(self, flow: Flow, province: Province | None) -> int:
        """The sum of the flow's limits that count against its commitment (customer works excluded)."""
        return sum(
            self.limit_days(flow, step.stage, province) or 0 for step in flow.steps if not step.customer_works
        )

    def at_risk_days(self, province: Province | None) -> int:
        """How many working days left make a stage at risk."""
        if province is not None and province.at_risk_days is not None:
            return province.at_risk_days
        return self.monitoring.at_risk_days


class _Reader:
    """Validates one file's nodes, recording each problem with its line."""

    def __init__(self, diag: Diagnostics, file: str) -> None:
        self.diag = diag
        self.file = file

    def error(self, message: str, line: int | None) -> None:
        self.diag.error(message, self.file, line)

    def keys(self, node: Any, allowed: tuple[str, ...], what: str) -> None:
        for key, line in unknown_keys(node, allowed):
            self.error(f"unknown key '{key}' in {what}; expected one of: {', '.join(allowed)}", line)

    def text(self, node: Any, key: str, what: str, *, required: bool = True) -> str | None:
        if key not in node:
            if required:
                self.error(f"{what} needs '{key}'", _line(node))
            return None
        value = node[key]
        if not isinstance(value, str) or not value.strip():
            self.error(f"{what}: '{key}' must be non-empty text, got {value!r}", key_line(node, key))
            return None
        return value.strip()

    def integer(self, node: Any, key: str, what: str, minimum: int, *, required: bool = True) -> int | None:
        if key not in node:
            if required:
                self.error(f"{what} needs '{key}'", _line(node))
            return None
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.error(
                f"{what}: '{key}' must be a whole number of at least {minimum}, got {value!r}",
                key_line(node, key),
            )
            return None
        return int(value)

    def number(self, node: Any, key: str, what: str) -> float | None:
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            self.error(f"{what}: '{key}' must be a positive number, got {value!r}", key_line(node, key))
            return None
        return float(value)

    def choices(self, node: Any, key: str, what: str, allowed: tuple[str, ...]) -> frozenset[str] | None:
        if key not in node:
            self.error(f"{what} needs '{key}'", _line(node))
            return None
        value = node[key]
        if not is_list(value) or not value:
            self.error(f"{what}: '{key}' must be a non-empty list", key_line(node, key))
            return None
        chosen: set[str] = set()
        for index, item in enumerate(value):
            if not isinstance(item, str) or (allowed and item not in allowed):
                expected = f"; expected one of: {', '.join(allowed)}" if allowed else ""
                self.error(f"{what}: '{key}' has {item!r}{expected}", item_line(value, index))
                continue
            chosen.add(item)
        return frozenset(chosen)


def _line(node: Any) -> int:
    return int(node.lc.line) + 1 if is_map(node) or is_list(node) else 1


def _read_stages(reader: _Reader, node: Any) -> tuple[dict[str, str], dict[str, CaseOutcome]]:
    """Stage id -> name, and the closing stages (those with an outcome) -> their outcome."""
    stages: dict[str, str] = {}
    closing: dict[str, CaseOutcome] = {}
    if not is_map(node) or not node:
        reader.error("'stages' must be a non-empty map of stage id -> {name: ...}", _line(node))
        return stages, closing
    for stage_id, body in node.items():
        line = key_line(node, stage_id)
        if not isinstance(stage_id, str) or not _ID.match(stage_id):
            reader.error(f"stage id {stage_id!r} must be lower_snake_case", line)
            continue
        if not is_map(body):
            reader.error(f"stage '{stage_id}' must be a map with keys: {', '.join(_STAGE_KEYS)}", line)
            continue
        reader.keys(body, _STAGE_KEYS, f"stage '{stage_id}'")
        name = reader.text(body, "name", f"stage '{stage_id}'")
        stages[stage_id] = name or stage_id
        if "outcome" in body:
            outcome = body["outcome"]
            if outcome not in _CLOSING_OUTCOMES:
                reader.error(
                    f"stage '{stage_id}': 'outcome' must be one of: {', '.join(_CLOSING_OUTCOMES)}, got "
                    f"{outcome!r} (energised is reaching a flow's terminal stage)",
                    key_line(body, "outcome"),
                )
            else:
                closing[stage_id] = CaseOutcome(outcome)
    return stages, closing


def _read_when(reader: _Reader, node: Any, what: str) -> tuple[frozenset[str], bool | None]:
    if not is_map(node):
        reader.error(f"{what} needs 'when', a map with keys: {', '.join(_WHEN_KEYS)}", _line(node))
        return frozenset(), None
    reader.keys(node, _WHEN_KEYS, f"{what} 'when'")
    classes = reader.choices(node, "classes", f"{what} 'when'", _CLASSES) or frozenset()
    important = node.get("important")
    if important is not None and not isinstance(important, bool):
        reader.error(
            f"{what}: 'important' must be true or false, got {important!r}", key_line(node, "important")
        )
        important = None
    return classes, important


def _read_steps(
    reader: _Reader, node: Any, what: str, stages: Mapping[str, str], closing: Mapping[str, CaseOutcome]
) -> tuple[Step, ...] | None:
    if not is_list(node) or len(node) < 2:
        reader.error(f"{what}: 'steps' must list at least two stages", _line(node))
        return None
    steps: list[Step] = []
    seen: set[str] = set()
    ok = True
    for index, item in enumerate(node):
        line = item_line(node, index)
        last = index == len(node) - 1
        if not is_map(item):
            reader.error(f"{what}: a step is a map with keys: {', '.join(_STEP_KEYS)}", line)
            ok = False
            continue
        reader.keys(item, _STEP_KEYS, f"{what} step")
        stage = reader.text(item, "stage", f"{what} step")
        if stage is None:
            ok = False
            continue
        if stage not in stages:
            reader.error(f"{what}: stage '{stage}' is not defined under 'stages'", line)
            ok = False
        elif stage in closing:
            reader.error(
                f"{what}: stage '{stage}' closes a case ({closing[stage].value}) from any stage and "
                "cannot be a step of a flow",
                line,
            )
            ok = False
        if stage in seen:
            reader.error(
                f"{what}: stage '{stage}' appears twice; a return is a rework, not a second step", line
            )
            ok = False
        seen.add(stage)
        limit: int | None = None
        if last:
            if "limit_days" in item:
                reader.error(f"{what}: the terminal stage '{stage}' closes the case and has no limit", line)
                ok = False
        else:
            limit = reader.integer(item, "limit_days", f"{what} stage '{stage}'", 1)
            ok = ok and limit is not None
        survey = item.get("survey", False)
        if not isinstance(survey, bool):
            reader.error(f"{what}: 'survey' must be true or false, got {survey!r}", key_line(item, "survey"))
            ok = False
        elif survey and last:
            reader.error(f"{what}: the terminal stage cannot hold a survey", line)
            ok = False
        works = item.get("customer_works", False)
        if not isinstance(works, bool):
            reader.error(
                f"{what}: 'customer_works' must be true or false, got {works!r}",
                key_line(item, "customer_works"),
            )
            ok = False
        elif works and last:
            reader.error(f"{what}: the terminal stage cannot be the customer's works", line)
            ok = False
        steps.append(Step(stage, limit, bool(survey), bool(works)))
    return tuple(steps) if ok else None


def _read_flows(
    reader: _Reader, node: Any, stages: Mapping[str, str], closing: Mapping[str, CaseOutcome]
) -> tuple[list[Flow], bool]:
    """The flows that are well formed, and whether every flow was."""
    flows: list[Flow] = []
    if not is_map(node) or not node:
        reader.error(
            "'flows' must be a non-empty map of flow name -> {description, when, steps}", _line(node)
        )
        return flows, False
    for name, body in node.items():
        line = key_line(node, name)
        what = f"flow '{name}'"
        if not isinstance(name, str) or not _ID.match(name):
            reader.error(f"flow name {name!r} must be lower_snake_case", line)
            continue
        if not is_map(body):
            reader.error(f"{what} must be a map with keys: {', '.join(_FLOW_KEYS)}", line)
            continue
        reader.keys(body, _FLOW_KEYS, what)
        description = reader.text(body, "description", what, required=False) or ""
        classes, important = _read_when(reader, body.get("when"), what)
        steps = _read_steps(reader, body.get("steps"), what, stages, closing) if "steps" in body else None
        if "steps" not in body:
            reader.error(f"{what} needs 'steps'", line)
        commitment = reader.integer(body, "commitment_days", what, 1, required=False)
        if steps is None or not classes or ("commitment_days" in body and commitment is None):
            continue
        flow = Flow(name, description, classes, important, steps, commitment)
        shadow = _shadowing(flows, flow)
        if shadow is not None:
            reader.error(
                f"{what} can never be chosen: flow '{shadow}' before it takes all its applications", line
            )
        flows.append(flow)
    return flows, len(flows) == len(node)


def _cases_of(flow: Flow) -> set[tuple[str, bool]]:
    importance = (True, False) if flow.important is None else (flow.important,)
    return {(cls, imp) for cls in flow.classes for imp in importance}


def _shadowing(earlier: list[Flow], flow: Flow) -> str | None:
    """The name of an earlier flow that leaves nothing for this one, if any."""
    remaining = _cases_of(flow)
    last = None
    for other in earlier:
        covered = remaining & _cases_of(other)
        if covered:
            remaining -= covered
            last = other.name
    return last if not remaining else None


def _check_coverage(reader: _Reader, flows: list[Flow], line: int) -> None:
    taken = set().union(*(_cases_of(flow) for flow in flows))
    for cls in _CLASSES:
        for important in (False, True):
            if (cls, important) not in taken:
                reader.error(
                    f"no flow takes {'important' if important else 'ordinary'} {cls} applications",
                    line,
                )


def _read_monitoring(reader: _Reader, node: Any) -> Monitoring | None:
    if not is_map(node):
        reader.error("'monitoring' must be a map with keys: at_risk_days, interval_s", _line(node))
        return None
    reader.keys(node, _MONITORING_KEYS, "monitoring")
    at_risk = reader.integer(node, "at_risk_days", "monitoring", 0)
    interval = reader.number(node, "interval_s", "monitoring") if "interval_s" in node else None
    if "interval_s" not in node:
        reader.error("monitoring needs 'interval_s'", _line(node))
    if at_risk is None or interval is None:
        return None
    return Monitoring(at_risk, interval)


def _read_province(reader: _Reader, province_id: str, node: Any, flows: list[Flow]) -> Province | None:
    what = f"province '{province_id}'"
    reader.keys(node, _PROVINCE_KEYS, what)
    name = reader.text(node, "name", what) or province_id
    prefixes = reader.choices(node, "org_prefixes", what, ())
    at_risk = reader.integer(node, "at_risk_days", what, 0, required=False)
    commitments = _read_commitments(reader, node["commitments"], what) if "commitments" in node else {}
    limits: dict[str, dict[str, int]] = {}
    raw = node.get("limits", {})
    if not is_map(raw) and raw != {}:
        reader.error(f"{what}: 'limits' must map flow -> {{stage: working days}}", key_line(node, "limits"))
        return None
    by_name = {flow.name: flow for flow in flows}
    for flow_name, overrides in raw.items() if is_map(raw) else ():
        line = key_line(raw, flow_name)
        flow = by_name.get(flow_name)
        if flow is None:
            reader.error(f"{what}: flow '{flow_name}' is not defined under 'flows'", line)
            continue
        if not is_map(overrides):
            reader.error(f"{what}: limits of '{flow_name}' must map stage -> working days", line)
            continue
        limits[flow_name] = {}
        for stage in overrides:
            step = flow.step(stage) if isinstance(stage, str) else None
            if step is None or step.limit_days is None:
                reader.error(
                    f"{what}: '{stage}' is not a timed stage of flow '{flow_name}'",
                    key_line(overrides, stage),
                )
                continue
            days = reader.integer(overrides, stage, f"{what} limit of {flow_name}", 1)
            if days is not None:
                limits[flow_name][stage] = days
    if prefixes is None:
        return None
    return Province(province_id, name, tuple(sorted(prefixes)), limits, at_risk, commitments)


def _read_commitments(reader: _Reader, node: Any, what: str) -> dict[str, int]:
    """A map customer class -> end-to-end commitment in working days."""
    commitments: dict[str, int] = {}
    if not is_map(node):
        reader.error(f"{what}: 'commitments' must map customer class -> working days", _line(node))
        return commitments
    reader.keys(node, _CLASSES, f"{what} 'commitments'")
    for cls in _CLASSES:
        if cls in node:
            days = reader.integer(node, cls, f"{what} 'commitments'", 1)
            if days is not None:
                commitments[cls] = days
    return commitments


def _check_commitments(
    reader: _Reader,
    config: WorkflowConfig,
    flow_lines: Mapping[str, int],
    province_lines: Mapping[str, int],
) -> None:
    """Refuse a flow whose limits add up to more than its end-to-end commitment, anywhere it applies."""
    for flow in config.flows:
        default = (config.committed_days(flow, None), config.commitment_days(flow, None))
        for province in (None, *config.provinces):
            committed = config.committed_days(flow, province)
            allowed = config.commitment_days(flow, province)
            # A province that changes neither side of a broken flow is not blamed for it a second time.
            if committed <= allowed or (province is not None and (committed, allowed) == default):
                continue
            where = "" if province is None else f" in province '{province.id}'"
            line = flow_lines[flow.name] if province is None else province_lines[province.id]
            reader.error(
                f"flow '{flow.name}'{where}: its stage limits add up to {committed} working days, over its "
                f"end-to-end commitment of {allowed}",
                line,
            )


def _read_provinces(reader: _Reader, node: Any, flows: list[Flow]) -> list[Province]:
    provinces: list[Province] = []
    if node is None:
        return provinces
    if not is_map(node):
        reader.error("'provinces' must map a province id to its settings", _line(node))
        return provinces
    owner: dict[str, str] = {}
    for province_id, body in node.items():
        line = key_line(node, province_id)
        if not isinstance(province_id, str) or not _ID.match(province_id):
            reader.error(f"province id {province_id!r} must be lower_snake_case", line)
            continue
        if not is_map(body):
            reader.error(
                f"province '{province_id}' must be a map with keys: {', '.join(_PROVINCE_KEYS)}", line
            )
            continue
        province = _read_province(reader, province_id, body, flows)
        if province is None:
            continue
        for prefix in province.org_prefixes:
            if prefix in owner:
                reader.error(f"org prefix '{prefix}' belongs to province '{owner[prefix]}' already", line)
            owner[prefix] = province_id
        provinces.append(province)
    return provinces


def _read_top_commitments(reader: _Reader, document: Any) -> dict[str, int]:
    """The end-to-end commitment of every customer class; each class needs one."""
    if "commitments" not in document:
        reader.error("the stage model needs 'commitments': customer class -> working days", 1)
        return {}
    commitments = _read_commitments(reader, document["commitments"], "the stage model")
    for cls in _CLASSES:
        if cls not in commitments and is_map(document["commitments"]) and cls not in document["commitments"]:
            reader.error(f"'commitments' needs '{cls}'", key_line(document, "commitments"))
    return commitments


def _read_calendar(reader: _Reader, document: Any) -> int:
    """The first December day whose working-day status waits for the next year's holiday notice."""
    node = document.get("calendar")
    if node is None:
        return LATE_DECEMBER_FROM
    if not is_map(node):
        reader.error("'calendar' must be a map with key: late_december_from", key_line(document, "calendar"))
        return LATE_DECEMBER_FROM
    reader.keys(node, ("late_december_from",), "calendar")
    day = reader.integer(node, "late_december_from", "calendar", 1, required=False)
    if day is not None and day > 31:
        reader.error(
            f"calendar: 'late_december_from' is a day of December, got {day}",
            key_line(node, "late_december_from"),
        )
    return LATE_DECEMBER_FROM if day is None else day


def _read_special_loads(reader: _Reader, document: Any) -> tuple[str, ...]:
    """GB/T 4754 industry codes (or their leading part) whose applications are special loads."""
    node = document.get("special_loads")
    if node is None:
        return ()
    if not is_map(node):
        reader.error(
            "'special_loads' must be a map with key: industry_codes", key_line(document, "special_loads")
        )
        return ()
    reader.keys(node, ("industry_codes",), "special_loads")
    codes = reader.choices(node, "industry_codes", "special_loads", ())
    for index, code in enumerate(node.get("industry_codes") or ()):
        if isinstance(code, str) and not _INDUSTRY.match(code):
            reader.error(
                f"special_loads: industry code {code!r} is not GB/T 4754 (a letter A-T, up to 4 digits)",
                item_line(node["industry_codes"], index),
            )
    return tuple(sorted(codes or ()))


def _read_roster(reader: _Reader, document: Any) -> list[StaffMember]:
    staff: list[StaffMember] = []
    if not is_map(document) or not is_list(document.get("staff")):
        reader.error("the roster is a map with key 'staff': a list of staff members", _line(document))
        return staff
    reader.keys(document, ("staff",), "the roster")
    seen: set[str] = set()
    entries = document["staff"]
    for index, item in enumerate(entries):
        line = item_line(entries, index)
        if not is_map(item):
            reader.error(f"a staff member is a map with keys: {', '.join(_STAFF_KEYS)}", line)
            continue
        what = f"staff member {item.get('id', index + 1)!r}"
        reader.keys(item, _STAFF_KEYS, what)
        staff_id = reader.text(item, "id", what)
        name = reader.text(item, "name", what)
        unit = reader.text(item, "unit", what)
        regions = reader.choices(item, "regions", what, ())
        business_types = reader.choices(item, "business_types", what, _BUSINESS_TYPES)
        capacity = reader.integer(item, "capacity", what, 1)
        if staff_id in seen:
            reader.error(f"staff id '{staff_id}' appears twice", line)
            continue
        if staff_id is None or name is None or unit is None or regions is None:
            continue
        if business_types is None or capacity is None:
            continue
        seen.add(staff_id)
        staff.append(StaffMember(staff_id, name, unit, regions, business_types, capacity))
    return staff


def _check_status_codes(diag: Diagnostics, codes: CodeTables, stages: Mapping[str, str]) -> None:
    for table in codes:
        if table.name.rsplit("/", 1)[-1] != STATUS_CODE_TABLE:
            continue
        for code, stage in table.codes.items():
            if stage not in stages:
                diag.error(
                    f"code '{code}' maps to '{stage}', not a stage of {WORKFLOW_FOLDER}/{STAGES_FILE}",
                    table.file,
                    table.lines.get(code),
                )


def read_workflow_config(
    config_dir: Path,
    diag: Diagnostics,
    codes: CodeTables | None = None,
    supply_basis: FeasibilityConfig | None = None,
) -> WorkflowConfig | None:
    """Read and check workflow/stages.yaml and workflow/roster.yaml under config_dir; problems go to diag.

    With codes, every <system>/status_code table is checked to map onto stages of the model. With
    supply_basis (the feasibility rules), flows are chosen by the supply class it gives.
    Returns None when anything is wrong.
    """
    before = len(diag.errors)
    folder = config_dir / WORKFLOW_FOLDER
    if not folder.is_dir():
        diag.error("the workflow folder is missing", diag.display(folder))
        return None
    stages_path = folder / STAGES_FILE
    reader = _Reader(diag, diag.display(stages_path))
    document = read_yaml(stages_path, reader.file, diag)
    stages: dict[str, str] = {}
    closing: dict[str, CaseOutcome] = {}
    flows: list[Flow] = []
    provinces: list[Province] = []
    commitments: dict[str, int] = {}
    late_december_from = LATE_DECEMBER_FROM
    special_industry_codes: tuple[str, ...] = ()
    monitoring: Monitoring | None = None
    if is_map(document):
        reader.keys(document, _TOP_KEYS, "the stage model")
        stages, closing = _read_stages(reader, document.get("stages"))
        flows, complete = _read_flows(reader, document.get("flows"), stages, closing)
        if flows and complete:
            # Coverage is only judged over a complete set of flows, so one broken flow is reported once.
            _check_coverage(reader, flows, key_line(document, "flows"))
        commitments = _read_top_commitments(reader, document)
        monitoring = _read_monitoring(reader, document.get("monitoring"))
        late_december_from = _read_calendar(reader, document)
        special_industry_codes = _read_special_loads(reader, document)
        provinces = _read_provinces(reader, document.get("provinces"), flows)
    elif document is not None:
        reader.error(f"the stage model is a map with keys: {', '.join(_TOP_KEYS)}", 1)
    roster_path = folder / ROSTER_FILE
    roster_reader = _Reader(diag, diag.display(roster_path))
    roster_document = read_yaml(roster_path, roster_reader.file, diag)
    staff = _read_roster(roster_reader, roster_document) if roster_document is not None else []
    if codes is not None and stages:
        _check_status_codes(diag, codes, stages)
    if len(diag.errors) > before or monitoring is None:
        return None
    config = WorkflowConfig(
        stages,
        tuple(flows),
        monitoring,
        tuple(provinces),
        tuple(staff),
        commitments,
        late_december_from,
        special_industry_codes,
        closing,
        supply_basis,
    )
    assert is_map(document), "a stage model read without errors is a map"
    _check_commitments(
        reader,
        config,
        {flow.name: key_line(document["flows"], flow.name) for flow in flows},
        {province.id: key_line(document["provinces"], province.id) for province in provinces},
    )
    return None if len(diag.errors) > before else config


def load_workflow_config(config_dir: Path) -> WorkflowConfig:
    """Load the workflow configuration under config_dir; ConfigError (file:line) if anything is wrong."""
    diag = Diagnostics(config_dir)
    # The low-voltage basis is the feasibility engine's, so both choose low voltage alike.
    basis = None
    if (config_dir / FEASIBILITY_FOLDER / RULES_FILE).is_file():
        basis = read_feasibility_config(config_dir, diag)
    config = read_workflow_config(config_dir, diag, supply_basis=basis)
    diag.raise_if_any()
    assert config is not None, "a configuration read without errors is always built"
    return config
