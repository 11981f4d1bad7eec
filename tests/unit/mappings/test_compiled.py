"""Every shipped mapping, compiled at load, gives what the rule-by-rule engine gave for the same records.

The cases are built from each mapping's own rules: a record with a valid value at every source path,
then that record with one source value changed at a time (missing, blank, padded, of the wrong kind,
every code of its table), so every rule's success and error paths run. data/compiled_expected.json holds
the outcomes the rule-by-rule engine gave for them: a digest of the exact JSON document, or the error
class and message.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from ground.errors import InvalidRecordError
from ground.settings import PROJECT_ROOT
from mappings.codes import load_code_tables
from mappings.engine import EachRule, Mapping, Rule, TemplateRule, Text, ValueRule
from mappings.loader import load_mappings
from mappings.targets import check_value, item_model, resolve
from tests.unit.mappings.samples import application_record, customer_record

EXPECTED = Path(__file__).parent / "data" / "compiled_expected.json"
_MOMENT = dt.datetime(2026, 11, 20, 9, 13, 5)
_PLAIN_CANDIDATES: tuple[Any, ...] = ("A-1", "H62", 12.5, 7, "2026-11-20", True)
_NUMBER_CANDIDATES = ("12.5", "7", "0.9")
# As many items as a day's curve holds, the longest list a canonical model asks for.
_ITEMS = 96
# One source value changed at a time: what each stands for, and the value.
_CHANGES: tuple[tuple[str, Any], ...] = (
    ("none", None),
    ("blank", "   "),
    ("padded", "  A-1  "),
    ("text", "ZZ?"),
    ("int", 42),
    ("float", 1.1),
    ("nan", "nan"),
    ("bool", True),
    ("list", [1]),
    ("object", {"X": 1}),
)
SAMPLES: dict[str, list[dict[str, Any]]] = {
    "marketing/application": [application_record(), application_record(DOCUMENTS=[])],
    "marketing/customer": [customer_record(), customer_record(CONTACTS=None)],
}


def _has(record: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = record
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def _set(record: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = record
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


def _valid(rule: ValueRule, model: type[BaseModel]) -> Any:
    if rule.table is not None:
        return next(iter(rule.table.codes))
    if rule.datetime_format is not None:
        return _MOMENT.strftime(rule.datetime_format)
    info = resolve(model, rule.target)
    if rule.number or rule.factor is not None:
        return next((c for c in _NUMBER_CANDIDATES if check_value(info, float(c)) is None), "12.5")
    return next((c for c in _PLAIN_CANDIDATES if check_value(info, c) is None), "A-1")


def _template_paths(value: Any) -> Iterator[tuple[str, ...]]:
    if isinstance(value, Text):
        yield from (path for _, path in value.pieces if path is not None)
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _template_paths(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _template_paths(inner)


def _fill(rules: tuple[Rule, ...], model: type[BaseModel]) -> dict[str, Any]:
    """A record with a valid value at every source path the rules read."""
    record: dict[str, Any] = {}
    for rule in rules:
        if isinstance(rule, ValueRule):
            _set(record, rule.source, _valid(rule, model))
        elif isinstance(rule, TemplateRule):
            for path in _template_paths(rule.value):
                if not _has(record, path):
                    _set(record, path, "T-1")
        elif isinstance(rule, EachRule):
            inner = item_model(resolve(model, rule.target))
            assert inner is not None
            _set(record, rule.source, [_fill(rule.rules, inner) for _ in range(_ITEMS)])
    return record


def _variants(
    rules: tuple[Rule, ...], model: type[BaseModel], base: dict[str, Any], at: tuple[str, ...]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The base record with one value changed, for every source path the rules read (at: the item path)."""

    def changed(path: tuple[str, ...], value: Any) -> dict[str, Any]:
        record = copy.deepcopy(base)
        node = record
        for key in at:
            node = node[key]
        _set(node[0] if at else node, path, value)
        return record

    where = f"{'.'.join(at)}[0]." if at else ""
    for rule in rules:
        paths: list[tuple[str, ...]] = []
        if isinstance(rule, ValueRule | EachRule):
            paths.append(rule.source)
        if isinstance(rule, TemplateRule):
            paths.extend(_template_paths(rule.value))
        for path in paths:
            label = where + ".".join(path)
            for name, value in _CHANGES:
                yield f"{label}={name}", changed(path, value)
            if len(path) > 1:
                yield f"{label}:parent-text", changed(path[:1], "X")
        if isinstance(rule, ValueRule) and rule.table is not None:
            for code in rule.table.codes:
                yield f"{where}{rule.source_text}=code:{code}", changed(rule.source, code)
        if isinstance(rule, EachRule):
            label = where + rule.source_text
            yield f"{label}:item-text", changed(rule.source, ["X"])
            items = tuple(_fill(rule.rules, _item(rule, model)) for _ in range(_ITEMS))
            yield f"{label}:tuple", changed(rule.source, items)
            if not at:
                yield from _variants(rule.rules, _item(rule, model), base, rule.source)


def _item(rule: EachRule, model: type[BaseModel]) -> type[BaseModel]:
    inner = item_model(resolve(model, rule.target))
    assert inner is not None
    return inner


def cases(mapping: Mapping) -> Iterator[tuple[str, Any]]:
    """(label, payload) for a mapping: the shipped samples, a filled record and its variants, a non-object."""
    for number, sample in enumerate(SAMPLES.get(mapping.name, [])):
        yield f"sample {number}", sample
    base = _fill(mapping.rules, mapping.target)
    yield "filled", base
    yield "empty", {}
    yield from _variants(mapping.rules, mapping.target, base, ())
    yield "not an object", ["X"]


def outcome(mapping: Mapping, payload: Any) -> str:
    """What applying the mapping gives: the document's digest, or the error class and message."""
    try:
        document = mapping.apply(payload)
    except InvalidRecordError as exc:
        return f"{type(exc).__name__}: {exc}"
    text = json.dumps(document, ensure_ascii=False, sort_keys=True)
    return "document " + hashlib.sha256(text.encode("utf-8")).hexdigest()


def shipped() -> dict[str, Mapping]:
    codes = load_code_tables(PROJECT_ROOT / "mappings" / "codes", root=PROJECT_ROOT)
    return load_mappings(PROJECT_ROOT / "mappings", codes, root=PROJECT_ROOT)


def outcomes(mappings: dict[str, Mapping]) -> dict[str, dict[str, str]]:
    return {
        name: {label: outcome(mapping, payload) for label, payload in cases(mapping)}
        for name, mapping in sorted(mappings.items())
    }


def test_every_shipped_mapping_gives_the_recorded_outcomes() -> None:
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    got = outcomes(shipped())
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name] == expected[name], name


@pytest.mark.parametrize("kind", ["document", "MappingError", "SchemaViolationError", "MalformedInputError"])
def test_the_recorded_outcomes_cover_every_kind(kind: str) -> None:
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    assert any(result.startswith(kind) for by_label in expected.values() for result in by_label.values())
