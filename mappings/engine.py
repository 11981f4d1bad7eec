"""The mapping engine: rules compiled at load into functions of a legacy payload, and the result validated."""

from __future__ import annotations

import collections.abc as cabc
import copy
import datetime as dt
import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ground.errors import MalformedInputError, MappingError, SchemaViolationError
from mappings.codes import CodeTable
from mappings.units import convert


class _Absent:
    """Marks a value the legacy record does not have (missing key, None, empty or blank text)."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Any = _Absent()

# A compiled rule: (scope, field prefix inside repeating groups) -> the target value, or ABSENT. The prefix
# only names the field in errors.
Producer = cabc.Callable[[cabc.Mapping[str, Any], str], Any]
_Step = cabc.Callable[[Any, str], Any]
# Values that need no copy for each document: nothing can change them.
_IMMUTABLE = (str, int, float, bool, type(None))


def _peek(scope: cabc.Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The raw value at a source path for an error message (None where the path ends early)."""
    current: Any = scope
    for key in path:
        if not isinstance(current, cabc.Mapping):
            return None
        current = current.get(key)
    return current


def _copier(value: Any) -> cabc.Callable[[], Any]:
    """A function giving a copy of value that a document can own (the value itself when it is immutable)."""
    if isinstance(value, _IMMUTABLE):
        return lambda: value
    return lambda: copy.deepcopy(value)


@dataclass(frozen=True)
class Rule(ABC):
    """How one target field is produced; subclasses say from what."""

    target: tuple[str, ...]
    line: int

    @property
    def name(self) -> str:
        """The target field path as written in the mapping file."""
        return ".".join(self.target)

    @property
    def source_text(self) -> str | None:
        """The source path shown in error messages, if the rule reads one."""
        return None

    @abstractmethod
    def compile(self, file: str) -> Producer:
        """The rule as one function of the record, everything the record does not decide settled once."""

    def fail(self, reason: str, value: object, file: str, prefix: str) -> MappingError:
        """A MappingError for this rule."""
        return MappingError(
            reason,
            file=file,
            line=self.line,
            field=prefix + self.name,
            value=value,
            source_path=self.source_text,
        )

    def reader(self, path: tuple[str, ...], file: str) -> Producer:
        """A function reading the value at a dotted source path; blank text counts as absent."""
        first, rest = path[0], path[1:]
        if not rest:
            # Most sources are a field of the record itself: read without the walk.
            def read_field(scope: cabc.Mapping[str, Any], prefix: str) -> Any:
                current = scope.get(first)
                if current is None:
                    return ABSENT
                if isinstance(current, str):
                    current = current.strip()
                    if not current:
                        return ABSENT
                return current

            return read_field

        def read(scope: cabc.Mapping[str, Any], prefix: str) -> Any:
            # The scope is an object already: the payload and every item are checked before rules run.
            current = scope.get(first)
            if current is None:
                return ABSENT
            for depth, key in enumerate(rest, start=1):
                if type(current) is not dict and not isinstance(current, cabc.Mapping):
                    raise MappingError(
                        f"expected an object at source '{'.'.join(path[:depth])}'",
                        file=file,
                        line=self.line,
                        field=prefix + self.name,
                        value=current,
                        source_path=".".join(path),
                    )
                current = current.get(key)
                if current is None:
                    return ABSENT
            if isinstance(current, str):
                current = current.strip()
                if not current:
                    return ABSENT
            return current

        return read


@dataclass(frozen=True)
class ValueRule(Rule):
    """A field read from one source path, then looked up, converted or parsed."""

    source: tuple[str, ...]
    table: CodeTable | None = None
    number: bool = False
    factor: Decimal | None = None
    datetime_format: str | None = None
    timezone: ZoneInfo | None = None
    default: Any = ABSENT
    required: bool = False

    @property
    def source_text(self) -> str:
        return ".".join(self.source)

    def compile(self, file: str) -> Producer:
        read = self.reader(self.source, file)
        steps = self._steps(file)
        source = self.source
        required = self.required
        default = None if self.default is ABSENT else _copier(self.default)
        if not steps and default is None and not required:
            return read
        if len(steps) == 1 and default is None and not required:
            (step,) = steps

            def produce_one(scope: cabc.Mapping[str, Any], prefix: str) -> Any:
                value = read(scope, prefix)
                return ABSENT if value is ABSENT else step(value, prefix)

            return produce_one

        def produce(scope: cabc.Mapping[str, Any], prefix: str) -> Any:
            value = read(scope, prefix)
            if value is ABSENT:
                if default is not None:
                    return default()
                if required:
                    raise self.fail("required value is missing", _peek(scope, source), file, prefix)
                return ABSENT
            for step in steps:
                value = step(value, prefix)
            return value

        return produce

    def _steps(self, file: str) -> tuple[_Step, ...]:
        """What is done to a present value, in order: look up, read as a number, convert, parse."""
        steps: list[_Step] = []
        if self.table is not None:
            steps.append(self._lookup(self.table, file))
        if self.number or self.factor is not None:
            steps.append(self._number(file))
            factor = self.factor
            if factor is not None and factor != 1:
                steps.append(lambda value, _prefix: convert(value, factor))
        if self.datetime_format is not None:
            assert self.timezone is not None
            steps.append(self._datetime(self.datetime_format, self.timezone, file))
        return tuple(steps)

    def _lookup(self, table: CodeTable, file: str) -> _Step:
        codes = table.codes

        def lookup(value: Any, prefix: str) -> Any:
            if isinstance(value, str):
                code = value
            elif isinstance(value, int) and not isinstance(value, bool):
                code = str(value)
            else:
                raise self.fail(f"a code for table {table.name} must be text", value, file, prefix)
            if code not in codes:
                raise self.fail(f"unknown code in table {table.name}", code, file, prefix)
            found = codes[code]
            # Scalars are immutable; only a structured code value needs a copy the document can own.
            return copy.deepcopy(found) if isinstance(found, dict | list) else found

        return lookup

    def _number(self, file: str) -> _Step:
        def number(value: Any, prefix: str) -> float:
            if isinstance(value, bool):
                raise self.fail("not a number", value, file, prefix)
            if isinstance(value, int | float | Decimal):
                result = float(value)
            elif isinstance(value, str):
                try:
                    result = float(value)
                except ValueError:
                    raise self.fail("not a number", value, file, prefix) from None
            else:
                raise self.fail("not a number", value, file, prefix)
            if not math.isfinite(result):
                raise self.fail("not a finite number", value, file, prefix)
            return result

        return number

    def _datetime(self, datetime_format: str, timezone: ZoneInfo, file: str) -> _Step:
        def to_datetime(value: Any, prefix: str) -> dt.datetime:
            if isinstance(value, dt.datetime):
                parsed = value
            elif isinstance(value, str):
                try:
                    parsed = _parse_datetime(value, datetime_format)
                except ValueError:
                    raise self.fail(
                        f"not a date-time in the format {datetime_format}", value, file, prefix
                    ) from None
            else:
                raise self.fail("not a date-time", value, file, prefix)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone)
            return parsed

        return to_datetime


# Formats whose text datetime.fromisoformat reads exactly, with the shape that must match first (fromisoformat
# alone accepts more than the format allows). strptime costs about ten times as much per value.
_ISO_SHAPES = {
    "%Y-%m-%d %H:%M:%S": re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", re.ASCII),
    "%Y-%m-%dT%H:%M:%S": re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", re.ASCII),
    "%Y-%m-%d": re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII),
}


def _parse_datetime(text: str, datetime_format: str) -> dt.datetime:
    """strptime's answer for text in datetime_format, faster for the ISO-shaped formats legacy systems use."""
    shape = _ISO_SHAPES.get(datetime_format)
    if shape is not None and shape.fullmatch(text):
        return dt.datetime.fromisoformat(text)
    return dt.datetime.strptime(text, datetime_format)


@dataclass(frozen=True)
class ConstantRule(Rule):
    """A field with the same value in every document."""

    value: Any = None

    def compile(self, file: str) -> Producer:
        value = _copier(self.value)
        return lambda _scope, _prefix: value()


@dataclass(frozen=True)
class Text:
    """A text template: literal pieces and source paths, e.g. 'APP-{APP_NO}'."""

    pieces: tuple[tuple[str, tuple[str, ...] | None], ...]


@dataclass(frozen=True)
class TemplateRule(Rule):
    """A field whose value is a structure in which every text is a template over source paths."""

    value: Any = None

    def compile(self, file: str) -> Producer:
        return self._render(self.value, file)

    def _render(self, value: Any, file: str) -> Producer:
        if isinstance(value, Text):
            return self._text(value, file)
        if isinstance(value, dict):
            items = tuple((key, self._render(inner, file)) for key, inner in value.items())
            return lambda scope, prefix: {key: render(scope, prefix) for key, render in items}
        if isinstance(value, list):
            renders = tuple(self._render(inner, file) for inner in value)
            return lambda scope, prefix: [render(scope, prefix) for render in renders]
        constant = _copier(value)
        return lambda _scope, _prefix: constant()

    def _text(self, text: Text, file: str) -> Producer:
        pieces = tuple(
            (literal, None if path is None else (path, self.reader(path, file)))
            for literal, path in text.pieces
        )

        def render(scope: cabc.Mapping[str, Any], prefix: str) -> str:
            out = []
            for literal, source in pieces:
                out.append(literal)
                if source is not None:
                    path, read = source
                    found = read(scope, prefix)
                    if found is ABSENT:
                        raise self.fail(
                            f"the template needs source '{'.'.join(path)}', which is missing",
                            _peek(scope, path),
                            file,
                            prefix,
                        )
                    out.append(str(found))
            return "".join(out)

        return render


@dataclass(frozen=True)
class EachRule(Rule):
    """A list field built from a repeating group: one object per source item."""

    source: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    required: bool = False

    @property
    def source_text(self) -> str:
        return ".".join(self.source)

    def compile(self, file: str) -> Producer:
        read = self.reader(self.source, file)
        build_item = compile_rules(self.rules, file)
        source = self.source
        required = self.required
        name = self.name

        def produce(scope: cabc.Mapping[str, Any], prefix: str) -> Any:
            items = read(scope, prefix)
            if items is ABSENT:
                if required:
                    raise self.fail("required list is missing", _peek(scope, source), file, prefix)
                return ABSENT
            if not isinstance(items, list | tuple):
                raise self.fail("expected a list", items, file, prefix)
            built = []
            for index, item in enumerate(items):
                if type(item) is not dict and not isinstance(item, cabc.Mapping):
                    raise self.fail(f"item {index} is not an object", item, file, prefix)
                built.append(build_item(item, f"{prefix}{name}[{index}]."))
            return built

        return produce


def compile_rules(
    rules: cabc.Iterable[Rule], file: str
) -> cabc.Callable[[cabc.Mapping[str, Any], str], dict[str, Any]]:
    """A function building the (not yet validated) document the rules produce.

    Objects with no present field are left out.
    """
    steps = tuple((rule.compile(file), rule.target[:-1], rule.target[-1]) for rule in rules)
    if all(not parents for _, parents, _ in steps):
        flat = tuple((produce, last) for produce, _, last in steps)

        def build_flat(scope: cabc.Mapping[str, Any], prefix: str) -> dict[str, Any]:
            document: dict[str, Any] = {}
            for produce, name in flat:
                value = produce(scope, prefix)
                if value is not ABSENT:
                    document[name] = value
            return document

        return build_flat

    def build(scope: cabc.Mapping[str, Any], prefix: str) -> dict[str, Any]:
        document: dict[str, Any] = {}
        for produce, parents, last in steps:
            value = produce(scope, prefix)
            if value is ABSENT:
                continue
            node = document
            for key in parents:
                node = node.setdefault(key, {})
            node[last] = value
        return document

    return build


@dataclass(frozen=True)
class FieldEntry:
    """Where a target field's mapping entry is, for error messages."""

    line: int
    source: str | None


@dataclass(frozen=True)
class Mapping:
    """A loaded, validated mapping from one legacy record type to one canonical model."""

    name: str
    file: str
    source_system: str
    record_type: str
    target: type[BaseModel]
    schema_name: str
    rules: tuple[Rule, ...]
    fields_line: int
    # Target path (list indexes left out) -> its entry; turns pydantic error locations into lines.
    entries: dict[tuple[str, ...], FieldEntry] = field(default_factory=dict)
    _build: cabc.Callable[[cabc.Mapping[str, Any], str], dict[str, Any]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # Compiled once here: applying the mapping then runs no rule interpretation per record.
        object.__setattr__(self, "_build", compile_rules(self.rules, self.file))

    def apply(self, payload: cabc.Mapping[str, Any]) -> dict[str, Any]:
        """The canonical JSON-ready document for a legacy payload.

        Raises MappingError for a mapping step that fails and SchemaViolationError when the result
        does not satisfy the target model; both name this file and the line of the field entry.
        """
        if not isinstance(payload, cabc.Mapping):
            raise MalformedInputError(
                f"{self.file}: the payload of a {self.source_system}/{self.record_type} record "
                f"must be an object, got {type(payload).__name__}"
            )
        document = self._build(payload, "")
        try:
            model = self.target.model_validate(document)
        except ValidationError as exc:
            raise SchemaViolationError(self._describe(exc)) from exc
        dumped: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
        return dumped

    def entry_for(self, loc: tuple[int | str, ...]) -> FieldEntry:
        """The field entry responsible for a pydantic error location (longest matching path)."""
        path = tuple(part for part in loc if isinstance(part, str))
        for end in range(len(path), 0, -1):
            entry = self.entries.get(path[:end])
            if entry is not None:
                return entry
        return FieldEntry(self.fields_line, None)

    def _describe(self, exc: ValidationError) -> str:
        problems = []
        errors = exc.errors()
        for error in errors:
            if error["type"] == "too_short" and _holds_a_failed_item(error["loc"], errors):
                # pydantic counts a list's length without its failed items, so a 96-point curve with one
                # bad point is also "too short": noise beside the point's own error.
                continue
            entry = self.entry_for(error["loc"])
            field_name = ".".join(str(part) for part in error["loc"]) or "<document>"
            source = f" (source {entry.source})" if entry.source else ""
            value = "" if error["type"] == "missing" else f": {error['input']!r}"
            problems.append(
                f"{self.file}:{entry.line}: field '{field_name}'{source} ({self.target.__name__}): "
                f"{error['msg']}{value}"
            )
        return "; ".join(problems)


def _holds_a_failed_item(loc: tuple[int | str, ...], errors: cabc.Sequence[ErrorDetails]) -> bool:
    """Whether another error lies inside the value at loc."""
    return any(len(other["loc"]) > len(loc) and other["loc"][: len(loc)] == loc for other in errors)
