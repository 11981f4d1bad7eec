"""The mapping engine: applies a loaded mapping to a legacy payload and validates the canonical result."""

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


@dataclass(frozen=True)
class Where:
    """Where a rule runs: the mapping file, and the field prefix inside repeating groups."""

    file: str
    prefix: str = ""


def _read(scope: cabc.Mapping[str, Any], path: tuple[str, ...], rule: Rule, where: Where) -> Any:
    """The value at a dotted source path; blank text counts as absent."""
    current: Any = scope
    for depth, key in enumerate(path):
        if not isinstance(current, cabc.Mapping):
            raise MappingError(
                f"expected an object at source '{'.'.join(path[:depth]) or '<record>'}'",
                file=where.file,
                line=rule.line,
                field=where.prefix + rule.name,
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


def _peek(scope: cabc.Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The raw value at a source path for an error message (None where the path ends early)."""
    current: Any = scope
    for key in path:
        if not isinstance(current, cabc.Mapping):
            return None
        current = current.get(key)
    return current


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
    def produce(self, scope: cabc.Mapping[str, Any], where: Where) -> Any:
        """The target value, or ABSENT."""

    def fail(self, reason: str, value: object, where: Where) -> MappingError:
        """A MappingError for this rule."""
        return MappingError(
            reason,
            file=where.file,
            line=self.line,
            field=where.prefix + self.name,
            value=value,
            source_path=self.source_text,
        )


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

    def produce(self, scope: cabc.Mapping[str, Any], where: Where) -> Any:
        value = _read(scope, self.source, self, where)
        if value is ABSENT:
            if self.default is not ABSENT:
                return copy.deepcopy(self.default)
            if self.required:
                raise self.fail("required value is missing", _peek(scope, self.source), where)
            return ABSENT
        if self.table is not None:
            value = self._lookup(value, where)
        if self.number or self.factor is not None:
            value = self._number(value, where)
            if self.factor is not None:
                value = convert(value, self.factor)
        if self.datetime_format is not None:
            value = self._datetime(value, where)
        return value

    def _lookup(self, value: Any, where: Where) -> Any:
        assert self.table is not None
        if isinstance(value, int) and not isinstance(value, bool):
            code = str(value)
        elif isinstance(value, str):
            code = value
        else:
            raise self.fail(f"a code for table {self.table.name} must be text", value, where)
        if code not in self.table:
            raise self.fail(f"unknown code in table {self.table.name}", code, where)
        found = self.table[code]
        # Scalars are immutable; only a structured code value needs a copy the document can own.
        return copy.deepcopy(found) if isinstance(found, dict | list) else found

    def _number(self, value: Any, where: Where) -> float:
        if isinstance(value, bool):
            raise self.fail("not a number", value, where)
        if isinstance(value, int | float | Decimal):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise self.fail("not a number", value, where) from None
        else:
            raise self.fail("not a number", value, where)
        if not math.isfinite(number):
            raise self.fail("not a finite number", value, where)
        return number

    def _datetime(self, value: Any, where: Where) -> dt.datetime:
        assert self.datetime_format is not None and self.timezone is not None
        if isinstance(value, dt.datetime):
            parsed = value
        elif isinstance(value, str):
            try:
                parsed = _parse_datetime(value, self.datetime_format)
            except ValueError:
                raise self.fail(
                    f"not a date-time in the format {self.datetime_format}", value, where
                ) from None
        else:
            raise self.fail("not a date-time", value, where)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=self.timezone)
        return parsed


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

    def produce(self, scope: cabc.Mapping[str, Any], where: Where) -> Any:
        return copy.deepcopy(self.value)


@dataclass(frozen=True)
class Text:
    """A text template: literal pieces and source paths, e.g. 'APP-{APP_NO}'."""

    pieces: tuple[tuple[str, tuple[str, ...] | None], ...]


@dataclass(frozen=True)
class TemplateRule(Rule):
    """A field whose value is a structure in which every text is a template over source paths."""

    value: Any = None

    def produce(self, scope: cabc.Mapping[str, Any], where: Where) -> Any:
        return self._render(self.value, scope, where)

    def _render(self, value: Any, scope: cabc.Mapping[str, Any], where: Where) -> Any:
        if isinstance(value, Text):
            out = []
            for literal, path in value.pieces:
                out.append(literal)
                if path is not None:
                    found = _read(scope, path, self, where)
                    if found is ABSENT:
                        raise self.fail(
                            f"the template needs source '{'.'.join(path)}', which is missing",
                            _peek(scope, path),
                            where,
                        )
                    out.append(str(found))
            return "".join(out)
        if isinstance(value, dict):
            return {k: self._render(v, scope, where) for k, v in value.items()}
        if isinstance(value, list):
            return [self._render(v, scope, where) for v in value]
        return copy.deepcopy(value)


@dataclass(frozen=True)
class EachRule(Rule):
    """A list field built from a repeating group: one object per source item."""

    source: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    required: bool = False

    @property
    def source_text(self) -> str:
        return ".".join(self.source)

    def produce(self, scope: cabc.Mapping[str, Any], where: Where) -> Any:
        items = _read(scope, self.source, self, where)
        if items is ABSENT:
            if self.required:
                raise self.fail("required list is missing", _peek(scope, self.source), where)
            return ABSENT
        if not isinstance(items, list | tuple):
            raise self.fail("expected a list", items, where)
        built = []
        for index, item in enumerate(items):
            if not isinstance(item, cabc.Mapping):
                raise self.fail(f"item {index} is not an object", item, where)
            inner = Where(where.file, f"{where.prefix}{self.name}[{index}].")
            built.append(build(self.rules, item, inner))
        return built


def build(rules: cabc.Iterable[Rule], scope: cabc.Mapping[str, Any], where: Where) -> dict[str, Any]:
    """The (not yet validated) document the rules produce; objects with no present field are left out."""
    document: dict[str, Any] = {}
    for rule in rules:
        value = rule.produce(scope, where)
        if value is ABSENT:
            continue
        node = document
        for key in rule.target[:-1]:
            node = node.setdefault(key, {})
        node[rule.target[-1]] = value
    return document


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
        document = build(self.rules, payload, Where(self.file))
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
