"""Fault triggers of the marketing simulator: a reproducible plan of which call or record misbehaves how.

A FaultPlan holds rules "fault F on operation O, on its calls N..M" or "record APP_NO=X carries fault F".
Rules are counted per rule: calls=(2, 3) fires on the second and third request the rule matches, so a
plan gives the same faults on every run. Call faults spoil a whole answer; record faults change the
matching application records inside an otherwise good answer. A rule may also hold for a time window only
(after=S, for=S: seconds since the plan started), as an outage from 10:00 to 10:30 does; calls outside
the window are not counted by it. `yekuo sim marketing --fault SPEC` takes rules in the form
`fault[:op=Operation][:calls=N|N-M|N-][:app=APP_NO][:delay=seconds][:after=seconds][:for=seconds]`.

TRIGGER_TABLE lists every trigger with what the simulator does and what the hub must do about it;
trigger_table_markdown() renders it for the README.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from ground.errors import ConfigError


class Fault(StrEnum):
    """A fault trigger of the marketing simulator."""

    LATENCY = "latency"
    BUSINESS_FAULT = "business_fault"
    SERVER_FAULT = "server_fault"
    HTTP_500 = "http_500"
    CONNECTION_RESET = "connection_reset"
    TIMEOUT = "timeout"
    MALFORMED_XML = "malformed_xml"
    XML_BOMB = "xml_bomb"
    EXTERNAL_ENTITY = "external_entity"
    WRONG_NAMESPACE = "wrong_namespace"
    MISSING_FIELDS = "missing_fields"
    UNKNOWN_CODE = "unknown_code"
    DUPLICATE = "duplicate"


# Faults that change records inside a good answer; the others spoil the whole answer of a call.
RECORD_FAULTS = frozenset({Fault.MISSING_FIELDS, Fault.UNKNOWN_CODE, Fault.DUPLICATE})
# Call faults answered before the operation runs: the request has no effect.
REFUSING_FAULTS = frozenset({Fault.BUSINESS_FAULT, Fault.SERVER_FAULT, Fault.HTTP_500})
# Fields a MISSING_FIELDS record lacks, and the code an UNKNOWN_CODE record carries in VOLT_CODE.
MISSING_FIELD_NAMES = ("CUST_CLASS_CODE", "CHANNEL_CODE")
UNKNOWN_VOLT_CODE = "AC99999"
DEFAULT_DELAY_S = {Fault.LATENCY: 0.5, Fault.TIMEOUT: 30.0}


@dataclass(frozen=True)
class Trigger:
    """One row of the trigger table."""

    fault: Fault
    simulator: str
    hub: str


TRIGGER_TABLE: tuple[Trigger, ...] = (
    Trigger(
        Fault.LATENCY,
        "answers correctly after `delay` seconds (default 0.5)",
        "waits within its timeout; the records arrive",
    ),
    Trigger(
        Fault.BUSINESS_FAULT,
        "soap:Client fault (业务异常) instead of running the operation",
        "not retried; a write-back or submission is marked failed with the faultstring, a listing is read "
        "again on the next poll; other records are not held up",
    ),
    Trigger(
        Fault.SERVER_FAULT,
        "soap:Server fault (e.g. ORA-12541) instead of running the operation",
        "retried with exponential backoff and jitter; then delivered",
    ),
    Trigger(
        Fault.HTTP_500,
        "HTTP 500 with an HTML error page instead of running the operation",
        "retried with backoff; then delivered",
    ),
    Trigger(
        Fault.CONNECTION_RESET,
        "runs the operation, then sends half the answer and drops the connection",
        "retried; a repeated write is recognised by its request id, so it takes effect once",
    ),
    Trigger(
        Fault.TIMEOUT,
        "runs the operation, then holds the answer for `delay` seconds (default 30)",
        "gives up after its timeout and retries; a repeated write takes effect once",
    ),
    Trigger(
        Fault.MALFORMED_XML,
        "HTTP 200 with the answer cut off in the middle of the XML",
        "answer refused as malformed; read again with backoff; then delivered",
    ),
    Trigger(
        Fault.XML_BOMB,
        "HTTP 200 with a billion-laughs DOCTYPE (nested entities) around the answer",
        "refused unexpanded (no DTD, libxml2's entity limits); read again with backoff; then delivered",
    ),
    Trigger(
        Fault.EXTERNAL_ENTITY,
        "HTTP 200 whose answer pulls in file:///etc/passwd through an external entity",
        "refused unresolved (no external entities, no network); read again; then delivered",
    ),
    Trigger(
        Fault.WRONG_NAMESPACE,
        "HTTP 200 with the answer in namespace urn:yekuo:sim:marketing:v0",
        "answer refused as malformed; read again with backoff; then delivered",
    ),
    Trigger(
        Fault.MISSING_FIELDS,
        f"the matching application records lack {' and '.join(MISSING_FIELD_NAMES)}",
        "each such record parked as invalid ('required value is missing', naming the field); "
        "the others delivered",
    ),
    Trigger(
        Fault.UNKNOWN_CODE,
        f"the matching application records carry VOLT_CODE {UNKNOWN_VOLT_CODE}",
        "each such record parked as invalid ('unknown code', naming field and value); the others delivered",
    ),
    Trigger(
        Fault.DUPLICATE,
        "the matching application records appear twice in the answer",
        "staged once: one case, one timeline entry",
    ),
)


def trigger_table_markdown() -> str:
    """The trigger table as a Markdown table."""
    lines = ["| trigger | the simulator | the hub |", "|---|---|---|"]
    lines.extend(f"| `{row.fault.value}` | {row.simulator} | {row.hub} |" for row in TRIGGER_TABLE)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class FaultRule:
    """Fire `fault` on the calls first..last (1-based, last None: no end) of the requests this rule matches.

    operation None matches every operation. app_no narrows the rule: a call fault then matches only
    requests about that application (appNo); a record fault changes only that application's records.
    delay_s is the pause of latency and timeout. after_s and for_s limit the rule to calls arriving in that
    window (seconds since the plan started; for_s None: no end).
    """

    fault: Fault
    operation: str | None = None
    first: int = 1
    last: int | None = None
    app_no: str | None = None
    delay_s: float | None = None
    after_s: float = 0.0
    for_s: float | None = None

    def __post_init__(self) -> None:
        if self.first < 1 or (self.last is not None and self.last < self.first):
            raise ConfigError(f"fault {self.fault.value}: calls {self.first}-{self.last} is not a range")
        for what, value in (("delay", self.delay_s), ("after", self.after_s), ("for", self.for_s)):
            if value is not None and value < 0:
                raise ConfigError(f"fault {self.fault.value}: {what} must not be negative, got {value}")

    def active_at(self, elapsed_s: float) -> bool:
        """Whether a call arriving elapsed_s seconds after the plan started lies in the rule's window."""
        if elapsed_s < self.after_s:
            return False
        return self.for_s is None or elapsed_s < self.after_s + self.for_s

    @property
    def delay(self) -> float:
        """The pause of a latency or timeout fault, seconds."""
        return self.delay_s if self.delay_s is not None else DEFAULT_DELAY_S.get(self.fault, 0.0)

    @classmethod
    def parse(cls, spec: str) -> FaultRule:
        """A rule from `fault[:op=Operation][:calls=N|N-M|N-][:app=APP_NO][:delay=s][:after=s][:for=s]`."""
        name, *options = [part.strip() for part in spec.split(":")]
        try:
            fault = Fault(name)
        except ValueError:
            known = ", ".join(fault.value for fault in Fault)
            raise ConfigError(
                f"unknown marketing fault trigger {name!r} in {spec!r}; known: {known}"
            ) from None
        values: dict[str, str] = {}
        for option in options:
            key, separator, value = option.partition("=")
            if not separator or key not in ("op", "calls", "app", "delay", "after", "for") or not value:
                raise ConfigError(
                    f"fault {spec!r}: expected op=, calls=, app=, delay=, after= or for=, got {option!r}"
                )
            values[key] = value
        first, last = _calls(values.get("calls", "1-"), spec)
        seconds: dict[str, float] = {}
        for key in ("delay", "after", "for"):
            if key in values:
                try:
                    seconds[key] = float(values[key])
                except ValueError:
                    raise ConfigError(f"fault {spec!r}: {key} must be a number of seconds") from None
        return cls(
            fault,
            values.get("op"),
            first,
            last,
            values.get("app"),
            seconds.get("delay"),
            after_s=seconds.get("after", 0.0),
            for_s=seconds.get("for"),
        )


def _calls(text: str, spec: str) -> tuple[int, int | None]:
    start, dash, end = text.partition("-")
    try:
        first = int(start)
        last = None if dash and not end else int(end) if dash else first
    except ValueError:
        raise ConfigError(f"fault {spec!r}: calls must be N, N-M or N-, got {text!r}") from None
    return first, last


@dataclass(frozen=True)
class CallFaults:
    """What a plan does to one call: at most one call fault, and record faults per APP_NO (None: all)."""

    call: FaultRule | None = None
    records: tuple[FaultRule, ...] = ()

    def record_faults(self, app_no: str) -> set[Fault]:
        """The record faults the application with this APP_NO carries in this answer."""
        return {rule.fault for rule in self.records if rule.app_no in (None, app_no)}


@dataclass(frozen=True)
class CallRecord:
    """A call the simulator answered, the faults the plan gave it, and when it came (monotonic seconds)."""

    operation: str
    app_no: str | None
    faults: tuple[Fault, ...]
    at: float


@dataclass
class FaultPlan:
    """Rules, and a log of every call with the faults it got; thread-safe."""

    rules: Sequence[FaultRule] = ()
    calls: list[CallRecord] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.rules = tuple(self.rules)
        self._counts = [0] * len(self.rules)
        self._lock = threading.Lock()
        self._started = self.clock()

    def restart_clock(self) -> None:
        """Count the rules' time windows from now on (e.g. once the simulated day begins)."""
        with self._lock:
            self._started = self.clock()

    @classmethod
    def parse(cls, specs: Iterable[str]) -> FaultPlan:
        """A plan from command-line specs."""
        return cls([FaultRule.parse(spec) for spec in specs])

    def begin_call(self, operation: str, app_no: str | None) -> CallFaults:
        """Count a call and return the faults it gets."""
        call: FaultRule | None = None
        records: list[FaultRule] = []
        with self._lock:
            now = self.clock()
            elapsed = now - self._started
            for index, rule in enumerate(self.rules):
                if rule.operation not in (None, operation) or not rule.active_at(elapsed):
                    continue
                if rule.fault not in RECORD_FAULTS and rule.app_no not in (None, app_no):
                    continue
                self._counts[index] += 1
                count = self._counts[index]
                if count < rule.first or (rule.last is not None and count > rule.last):
                    continue
                if rule.fault in RECORD_FAULTS:
                    records.append(rule)
                elif call is None:
                    call = rule
            faults = CallFaults(call, tuple(records))
            fired = ((call.fault,) if call else ()) + tuple(rule.fault for rule in records)
            self.calls.append(CallRecord(operation, app_no, fired, now))
        return faults

    def count(self, operation: str, fault: Fault | None = None) -> int:
        """How many calls of an operation were answered (with this fault, if given)."""
        with self._lock:
            return sum(
                1
                for record in self.calls
                if record.operation == operation and (fault is None or fault in record.faults)
            )
