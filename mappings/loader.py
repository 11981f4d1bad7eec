"""Loading and validating mapping files (mappings/<system>/<record>.yaml) into engine objects."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from ruamel.yaml.comments import CommentedMap

from canonical_model.registry import MODELS
from mappings.codes import CodeTable, CodeTables
from mappings.engine import (
    ABSENT,
    ConstantRule,
    EachRule,
    FieldEntry,
    Mapping,
    Rule,
    TemplateRule,
    Text,
    ValueRule,
)
from mappings.targets import (
    TargetPathError,
    check_value,
    item_model,
    nested_model,
    resolve,
)
from mappings.templates import parse_template
from mappings.units import UnitError, conversion_factor, unit_of_field
from mappings.yamlfile import (
    Diagnostics,
    UnsupportedValueError,
    is_map,
    key_line,
    plain,
    read_yaml,
    unknown_keys,
)

CODES_FOLDER = "codes"
DEFAULT_TIMEZONE = "Asia/Shanghai"
TOP_KEYS = ("mapping", "description", "source", "target", "fields")
SOURCE_KEYS = ("system", "record")
KINDS = ("from", "constant", "template", "each")
# What may accompany each kind of entry.
COMPANIONS: dict[str, tuple[str, ...]] = {
    "from": ("codes", "number", "unit", "datetime", "timezone", "default", "required"),
    "constant": (),
    "template": (),
    "each": ("fields", "required"),
}
FIELD_KEYS = tuple(sorted({*KINDS, *(k for keys in COMPANIONS.values() for k in keys)}))
_SAMPLE_DATETIME = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

Models = AbcMapping[str, tuple[type[BaseModel], str]]


@dataclass
class _Context:
    """One mapping file being read."""

    file: str
    codes: CodeTables
    diag: Diagnostics
    entries: dict[tuple[str, ...], FieldEntry] = field(default_factory=dict)
    failed: bool = False
    checked_tables: set[tuple[str, str, str]] = field(default_factory=set)

    def error(self, message: str, line: int | None, file: str | None = None) -> None:
        self.failed = True
        self.diag.error(message, file or self.file, line)


def _path(text: Any) -> tuple[str, ...] | None:
    """A dotted path split into its parts, or None if it is not a well-formed path."""
    if not isinstance(text, str) or not text:
        return None
    parts = tuple(text.split("."))
    if any(not part or part != part.strip() for part in parts):
        return None
    return parts


def _flag(entry: CommentedMap, key: str, ctx: _Context) -> bool:
    value = entry.get(key, False)
    if not isinstance(value, bool):
        ctx.error(f"'{key}' must be true or false, not {value!r}", key_line(entry, key))
        return False
    return value


def _plain(entry: CommentedMap, key: str, ctx: _Context) -> Any:
    try:
        return plain(entry[key])
    except UnsupportedValueError as exc:
        ctx.error(f"'{key}': {exc}", key_line(entry, key))
        return ABSENT


def _compile_template(value: Any, line: int, ctx: _Context) -> Any:
    """The template structure with every text parsed; errors recorded at the template's line."""
    if isinstance(value, str):
        try:
            pieces = parse_template(value)
        except ValueError as exc:
            ctx.error(str(exc), line)
            return value
        return Text(tuple((literal, tuple(name.split(".")) if name else None) for literal, name in pieces))
    if isinstance(value, dict):
        return {k: _compile_template(v, line, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [_compile_template(v, line, ctx) for v in value]
    return value


def _check_table(
    table: CodeTable, info: FieldInfo, label: str, numeric: bool, line: int, ctx: _Context
) -> None:
    """Every value of a code table must suit the field that uses it; reported at the table's line."""
    key = (table.name, label, str(numeric))
    if key in ctx.checked_tables:
        return
    ctx.checked_tables.add(key)
    used_by = f"(used by {ctx.file}:{line} for '{label}')"
    for code, value in table.codes.items():
        if numeric:
            if isinstance(value, bool) or not isinstance(value, int | float):
                ctx.error(
                    f"code '{code}': {value!r} is not a number {used_by}", table.lines[code], table.file
                )
            continue
        problem = check_value(info, value)
        if problem is not None:
            ctx.error(
                f"code '{code}': {value!r} is not a valid '{label}': {problem} {used_by}",
                table.lines[code],
                table.file,
            )


def _value_rule(
    target: tuple[str, ...], label: str, info: FieldInfo, entry: CommentedMap, line: int, ctx: _Context
) -> Rule | None:
    source = _path(entry["from"])
    if source is None:
        ctx.error(
            f"'from' must be a source field path like APP_NO or A.B, not {entry['from']!r}",
            key_line(entry, "from"),
        )
    number = _flag(entry, "number", ctx)
    required = _flag(entry, "required", ctx)

    table: CodeTable | None = None
    if "codes" in entry:
        name = entry["codes"]
        found = ctx.codes.get(name) if isinstance(name, str) else None
        if found is None:
            if name not in ctx.codes.broken:
                ctx.error(
                    f"unknown code table {name!r} (expected mappings/codes/{name}.yaml)",
                    key_line(entry, "codes"),
                )
        else:
            table = found

    factor: Decimal | None = None
    if "unit" in entry:
        try:
            factor = conversion_factor(str(entry["unit"]), unit_of_field(target[-1]))
        except UnitError as exc:
            ctx.error(str(exc), key_line(entry, "unit"))

    datetime_format: str | None = None
    timezone: ZoneInfo | None = None
    if "datetime" in entry:
        fmt = entry["datetime"]
        if not isinstance(fmt, str) or "%" not in fmt:
            ctx.error(
                f"'datetime' must be a strptime format like \"%Y-%m-%d %H:%M:%S\", not {fmt!r}",
                key_line(entry, "datetime"),
            )
        else:
            datetime_format = str(fmt)
        for other in ("codes", "number", "unit"):
            if other in entry:
                ctx.error(f"'{other}' cannot be combined with 'datetime'", key_line(entry, other))
        if check_value(info, _SAMPLE_DATETIME) is not None:
            ctx.error(f"'{label}' does not hold a date-time", key_line(entry, "datetime"))
        zone_name = entry.get("timezone", DEFAULT_TIMEZONE)
        try:
            timezone = ZoneInfo(str(zone_name))
        except (ZoneInfoNotFoundError, ValueError):
            where = key_line(entry, "timezone") if "timezone" in entry else line
            ctx.error(f"unknown time zone {zone_name!r} (use an IANA name like Asia/Shanghai)", where)
    elif "timezone" in entry:
        ctx.error("'timezone' only applies together with 'datetime'", key_line(entry, "timezone"))

    if table is not None:
        _check_table(table, info, label, number or factor is not None, line, ctx)

    default: Any = ABSENT
    if "default" in entry:
        if required:
            ctx.error(
                "a field with a default is never missing; drop 'required' or 'default'",
                key_line(entry, "default"),
            )
        default = _plain(entry, "default", ctx)
        if default is None:
            ctx.error("'default: null' means no default; remove it", key_line(entry, "default"))
        elif default is not ABSENT:
            problem = check_value(info, default)
            if problem is not None:
                ctx.error(
                    f"default {default!r} is not a valid '{label}': {problem}", key_line(entry, "default")
                )

    if source is None:
        return None
    return ValueRule(
        target=target,
        line=line,
        source=source,
        table=table,
        number=number,
        factor=factor,
        datetime_format=datetime_format,
        timezone=timezone,
        default=default,
        required=required,
    )


def _entry(
    key: Any,
    entry: Any,
    line: int,
    model: type[BaseModel],
    prefix: tuple[str, ...],
    ctx: _Context,
) -> Rule | None:
    """One field entry as a rule; None (with errors recorded) when it is wrong."""
    target = _path(key)
    if target is None:
        ctx.error(f"{key!r} is not a target field path like name or site_location.lon", line)
        return None
    label = ".".join(prefix + target)
    try:
        info = resolve(model, target)
    except TargetPathError as exc:
        ctx.error(f"unknown target field '{label}': {exc}", line)
        return None
    if not is_map(entry):
        ctx.error(f"the entry for '{label}' must be a map, e.g. {{from: SOURCE_FIELD}}", line)
        return None
    unknown = unknown_keys(entry, FIELD_KEYS)
    for bad, bad_line in unknown:
        ctx.error(
            f"unknown key '{bad}' in the entry for '{label}'; expected one of: {', '.join(FIELD_KEYS)}",
            bad_line,
        )
    kinds = [k for k in KINDS if k in entry]
    if not kinds and unknown:
        return None
    if len(kinds) != 1:
        found = ", ".join(kinds) or "none"
        ctx.error(f"the entry for '{label}' needs exactly one of {', '.join(KINDS)} (found: {found})", line)
        return None
    kind = kinds[0]
    for other in entry:
        if other != kind and other in FIELD_KEYS and other not in COMPANIONS[kind]:
            ctx.error(f"'{other}' cannot be used with '{kind}'", key_line(entry, other))

    rule: Rule | None
    if kind == "from":
        rule = _value_rule(target, label, info, entry, line, ctx)
        source_text = entry["from"] if isinstance(entry["from"], str) else None
    elif kind == "constant":
        value = _plain(entry, "constant", ctx)
        if value is not ABSENT:
            problem = check_value(info, value)
            if problem is not None:
                ctx.error(
                    f"constant {value!r} is not a valid '{label}': {problem}", key_line(entry, "constant")
                )
        rule = ConstantRule(target=target, line=line, value=value)
        source_text = None
    elif kind == "template":
        value = _plain(entry, "template", ctx)
        rule = TemplateRule(
            target=target, line=line, value=_compile_template(value, key_line(entry, "template"), ctx)
        )
        source_text = None
    else:
        rule = _each_rule(target, label, info, entry, line, prefix, ctx)
        source_text = entry["each"] if isinstance(entry["each"], str) else None
    ctx.entries[prefix + target] = FieldEntry(line, source_text)
    return rule


def _each_rule(
    target: tuple[str, ...],
    label: str,
    info: FieldInfo,
    entry: CommentedMap,
    line: int,
    prefix: tuple[str, ...],
    ctx: _Context,
) -> Rule | None:
    source = _path(entry["each"])
    if source is None:
        ctx.error(
            f"'each' must be a source field path naming a list, not {entry['each']!r}",
            key_line(entry, "each"),
        )
    required = _flag(entry, "required", ctx)
    model = item_model(info)
    if model is None:
        ctx.error(f"'{label}' is not a list of objects, so 'each' cannot fill it", key_line(entry, "each"))
        return None
    if "fields" not in entry:
        ctx.error(f"the entry for '{label}' needs 'fields' for the items of the list", line)
        return None
    rules = _fields(entry["fields"], key_line(entry, "fields"), model, prefix + target, ctx)
    if source is None or rules is None:
        return None
    return EachRule(target=target, line=line, source=source, rules=rules, required=required)


def _coverage(
    model: type[BaseModel], targets: list[tuple[str, ...]], label: tuple[str, ...], line: int, ctx: _Context
) -> None:
    """Every field the model requires must be mapped, including inside partly mapped nested objects."""
    heads: dict[str, list[tuple[str, ...]]] = {}
    for target in targets:
        heads.setdefault(target[0], []).append(target[1:])
    for name, info in model.model_fields.items():
        if info.is_required() and name not in heads:
            ctx.error(f"{model.__name__} requires '{'.'.join((*label, name))}', which no entry maps", line)
    for name, rests in heads.items():
        inner = nested_model(model.model_fields[name])
        deeper = [rest for rest in rests if rest]
        if inner is not None and deeper and len(deeper) == len(rests):
            _coverage(inner, deeper, (*label, name), line, ctx)


def _fields(
    node: Any, line: int, model: type[BaseModel], prefix: tuple[str, ...], ctx: _Context
) -> tuple[Rule, ...] | None:
    """The rules of a `fields:` map for a model."""
    if not is_map(node) or not node:
        ctx.error("'fields' must be a non-empty map of target field -> entry", line)
        return None
    rules: list[Rule] = []
    seen: dict[tuple[str, ...], int] = {}
    for key, entry in node.items():
        entry_line = key_line(node, key)
        target = _path(key)
        if target is not None:
            for other, other_line in seen.items():
                shorter = min(len(other), len(target))
                if other[:shorter] == target[:shorter]:
                    ctx.error(
                        f"'{'.'.join(target)}' overlaps '{'.'.join(other)}' on line {other_line}", entry_line
                    )
            seen[target] = entry_line
        rule = _entry(key, entry, entry_line, model, prefix, ctx)
        if rule is not None:
            rules.append(rule)
    _coverage(model, [t for t in seen if _resolves(model, t)], prefix, line, ctx)
    return tuple(rules)


def _resolves(model: type[BaseModel], target: tuple[str, ...]) -> bool:
    try:
        resolve(model, target)
    except TargetPathError:
        return False
    return True


def read_mapping(
    path: Path, codes: CodeTables, base_dir: Path, diag: Diagnostics, models: Models = MODELS
) -> Mapping | None:
    """Load one mapping file, recording every problem in diag; None if it is unusable.

    models: target model name -> (model class, versioned schema name); the canonical registry.
    """
    file = diag.display(path)
    ctx = _Context(file=file, codes=codes, diag=diag)
    expected_name = path.relative_to(base_dir).with_suffix("").as_posix()
    document = read_yaml(path, file, diag)
    if document is None:
        return None
    if not is_map(document):
        ctx.error(f"a mapping file is a map with keys: {', '.join(TOP_KEYS)}", 1)
        return None
    for bad, bad_line in unknown_keys(document, TOP_KEYS):
        ctx.error(f"unknown key '{bad}'; expected one of: {', '.join(TOP_KEYS)}", bad_line)
    for required in ("mapping", "source", "target", "fields"):
        if required not in document:
            ctx.error(f"missing key '{required}'", 1)
    if ctx.failed:
        return None

    name = document["mapping"]
    if name != expected_name:
        ctx.error(
            f"mapping name {name!r} does not match the file; expected '{expected_name}'",
            key_line(document, "mapping"),
        )

    source = document["source"]
    system = record = ""
    if not is_map(source):
        ctx.error("'source' must be a map: {system: ..., record: ...}", key_line(document, "source"))
    else:
        for bad, bad_line in unknown_keys(source, SOURCE_KEYS):
            ctx.error(f"unknown key '{bad}' in 'source'; expected: system, record", bad_line)
        system, record = source.get("system"), source.get("record")
        if not isinstance(system, str) or not system or not isinstance(record, str) or not record:
            ctx.error(
                "'source' needs text values for both 'system' and 'record'", key_line(document, "source")
            )

    target_name = document["target"]
    if target_name not in models:
        ctx.error(
            f"unknown target model {target_name!r}; known models: {', '.join(models)}",
            key_line(document, "target"),
        )
        return None
    model, schema_name = models[target_name]
    fields_line = key_line(document, "fields")
    rules = _fields(document["fields"], fields_line, model, (), ctx)
    if ctx.failed or rules is None:
        return None
    return Mapping(
        name=expected_name,
        file=file,
        source_system=str(system),
        record_type=str(record),
        target=model,
        schema_name=schema_name,
        rules=rules,
        fields_line=fields_line,
        entries=dict(ctx.entries),
    )


def mapping_files(mappings_dir: Path) -> list[Path]:
    """Every mapping file under mappings_dir (code tables excluded), sorted."""
    codes_dir = mappings_dir / CODES_FOLDER
    return sorted(p for p in mappings_dir.rglob("*.yaml") if codes_dir not in p.parents)


def read_mappings(
    mappings_dir: Path, codes: CodeTables, diag: Diagnostics, models: Models = MODELS
) -> tuple[dict[str, Mapping], frozenset[str]]:
    """Every good mapping under mappings_dir by name, and the names of the files that failed."""
    mappings: dict[str, Mapping] = {}
    broken: set[str] = set()
    if not mappings_dir.is_dir():
        diag.error("the mapping folder is missing", diag.display(mappings_dir))
        return mappings, frozenset()
    codes_dir = mappings_dir / CODES_FOLDER
    for path in sorted(mappings_dir.rglob("*.yml")):
        if codes_dir not in path.parents:
            diag.error("configuration files end in .yaml; rename this file", diag.display(path))
    for path in mapping_files(mappings_dir):
        mapping = read_mapping(path, codes, mappings_dir, diag, models)
        if mapping is None:
            broken.add(path.relative_to(mappings_dir).with_suffix("").as_posix())
        else:
            mappings[mapping.name] = mapping
    return mappings, frozenset(broken)


def load_mapping(
    path: Path, codes: CodeTables, base_dir: Path, *, root: Path | None = None, models: Models = MODELS
) -> Mapping:
    """Load one mapping file (its name is its path under base_dir); raise ConfigError (file:line)."""
    diag = Diagnostics(root)
    mapping = read_mapping(path, codes, base_dir, diag, models)
    diag.raise_if_any()
    assert mapping is not None
    return mapping


def load_mappings(
    mappings_dir: Path, codes: CodeTables, *, root: Path | None = None, models: Models = MODELS
) -> dict[str, Mapping]:
    """Load every mapping under mappings_dir by name; raise ConfigError listing every problem."""
    diag = Diagnostics(root)
    mappings, _ = read_mappings(mappings_dir, codes, diag, models)
    diag.raise_if_any()
    return mappings
