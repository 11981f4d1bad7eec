"""The route table (routes/*.yaml): source record -> mapping -> event type, exchange and routing key."""

from __future__ import annotations

import re
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from canonical_model.envelope import EVENT_TYPE_PATTERN
from canonical_model.events import lookup
from ground.errors import MappingError
from mappings.engine import Mapping
from mappings.targets import always_present, is_scalar
from mappings.templates import Pieces, parse_template, placeholders
from mappings.yamlfile import (
    Diagnostics,
    is_list,
    is_map,
    item_line,
    key_line,
    read_yaml,
    unknown_keys,
)

ROUTE_KEYS = (
    "name",
    "description",
    "source",
    "mapping",
    "event_type",
    "exchange",
    "routing_key",
    "subject",
    "on_invalid",
)
REQUIRED_KEYS = ("name", "source", "mapping", "event_type", "exchange", "routing_key", "subject")
SOURCE_KEYS = ("system", "record", "table", "key", "changed_at", "join", "deleted")
# Optional in 'source': where a table-polling adapter reads the records. All three or none.
TABLE_KEYS = ("table", "key", "changed_at")
JOIN_KEYS = ("as", "table", "key", "changed_at")
# Table and column names are spliced into SQL as quoted identifiers; keep them to plain legacy names.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$#]{0,63}$")
_RECORD = re.compile(r"^[a-z][a-z0-9_]*$")
_ROUTE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_EVENT_TYPE = re.compile(EVENT_TYPE_PATTERN)
# AMQP topic routing keys are dot-separated words; '*' and '#' only belong in bindings.
_KEY_FORBIDDEN = frozenset(".*#")


class InvalidPolicy(StrEnum):
    """What happens to a record that cannot become a valid event."""

    PARK = "park"


@dataclass(frozen=True)
class KeyTemplate:
    """A routing key or subject template over the top-level fields of a canonical document."""

    text: str
    pieces: Pieces
    file: str
    line: int
    routing_key: bool

    @property
    def fields(self) -> list[str]:
        """The document fields the template reads."""
        return placeholders(self.pieces)

    def render(self, data: AbcMapping[str, Any]) -> str:
        """The template filled from a mapped document; MappingError if a value is unusable."""
        out = []
        for literal, name in self.pieces:
            out.append(literal)
            if name is None:
                continue
            value = data.get(name)
            if value is None or isinstance(value, dict | list) or str(value) == "":
                raise MappingError(
                    f"template {self.text!r} needs a text or number value",
                    file=self.file,
                    line=self.line,
                    field=name,
                    value=value,
                )
            text = str(value)
            if self.routing_key and _KEY_FORBIDDEN.intersection(text):
                raise MappingError(
                    f"routing key template {self.text!r} would get '.', '*' or '#' from the value",
                    file=self.file,
                    line=self.line,
                    field=name,
                    value=value,
                )
            out.append(text)
        return "".join(out)


@dataclass(frozen=True)
class JoinedTable:
    """A table read together with the polled one (one row per key), nested in the payload under `alias`."""

    alias: str
    table: str
    key: str
    changed_at: str


@dataclass(frozen=True)
class TableSource:
    """Where a table-polling adapter reads a route's records, from the route's `source` options.

    table, key, changed_at: the polled table, its key column and its last-changed column.
    join: a table joined on its `key` column = the polled key; its own changes re-read the joined row.
    deleted: the record type of deletion records for rows that disappear (None: deletions are not sought).
    line: the line of `source`, for errors found later (a missing table, a missing column).
    """

    table: str
    key: str
    changed_at: str
    join: JoinedTable | None
    deleted: str | None
    line: int = field(compare=False)


@dataclass(frozen=True)
class Route:
    """One route: records of (source_system, record_type) -> mapping -> event on exchange with routing key."""

    name: str
    source_system: str
    record_type: str
    mapping: str
    event_type: str
    exchange: str
    routing_key: KeyTemplate
    subject: KeyTemplate
    on_invalid: InvalidPolicy
    file: str
    line: int
    description: str = ""
    table: TableSource | None = None


def _text(entry: CommentedMap, key: str, file: str, diag: Diagnostics) -> str | None:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        diag.error(f"'{key}' must be non-empty text, not {value!r}", file, key_line(entry, key))
        return None
    return value


def _identifier(node: CommentedMap, key: str, where: str, file: str, diag: Diagnostics) -> str | None:
    value = node.get(key)
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        diag.error(
            f"'{key}' in {where} must be a table or column name (letters, digits, '_', '$', '#'; "
            f"at most 64), not {value!r}",
            file,
            key_line(node, key),
        )
        return None
    return value


def _joined_table(node: Any, line: int, file: str, diag: Diagnostics) -> JoinedTable | None:
    if not is_map(node):
        diag.error("'join' must be a map: {as: ..., table: ..., key: ..., changed_at: ...}", file, line)
        return None
    before = len(diag.errors)
    for bad, bad_line in unknown_keys(node, JOIN_KEYS):
        diag.error(f"unknown key '{bad}' in 'join'; expected: {', '.join(JOIN_KEYS)}", file, bad_line)
    missing = [key for key in JOIN_KEYS if key not in node]
    if missing:
        diag.error(f"'join' lacks {', '.join(repr(k) for k in missing)}", file, line)
        return None
    alias, table, key, changed_at = (_identifier(node, k, "'join'", file, diag) for k in JOIN_KEYS)
    if len(diag.errors) > before or not (alias and table and key and changed_at):
        return None
    return JoinedTable(alias=alias, table=table, key=key, changed_at=changed_at)


def _table_source(
    source: CommentedMap, record: str | None, file: str, diag: Diagnostics
) -> TableSource | None:
    """The table options of a route's source; None when it has none or they are wrong (errors in diag)."""
    present = [key for key in (*TABLE_KEYS, "join", "deleted") if key in source]
    if not present:
        return None
    line = key_line(source, present[0])
    missing = [key for key in TABLE_KEYS if key not in source]
    if missing:
        diag.error(
            f"a polled table needs 'table', 'key' and 'changed_at' in 'source'; "
            f"lacks {', '.join(repr(k) for k in missing)}",
            file,
            line,
        )
        return None
    before = len(diag.errors)
    table, key, changed_at = (_identifier(source, k, "'source'", file, diag) for k in TABLE_KEYS)
    join = _joined_table(source["join"], key_line(source, "join"), file, diag) if "join" in source else None
    deleted = source.get("deleted")
    bad_record = not isinstance(deleted, str) or not _RECORD.match(deleted) or deleted == record
    if "deleted" in source and bad_record:
        diag.error(
            f"'deleted' names the record type of deletion records (lower-case, not the polled record "
            f"itself), not {deleted!r}",
            file,
            key_line(source, "deleted"),
        )
    if len(diag.errors) > before or not (table and key and changed_at):
        return None
    return TableSource(
        table=table,
        key=key,
        changed_at=changed_at,
        join=join,
        deleted=deleted if isinstance(deleted, str) else None,
        line=line,
    )


def _template(
    entry: CommentedMap,
    key: str,
    mapping: Mapping | None,
    file: str,
    diag: Diagnostics,
) -> KeyTemplate | None:
    text = _text(entry, key, file, diag)
    if text is None:
        return None
    line = key_line(entry, key)
    try:
        pieces = parse_template(text)
    except ValueError as exc:
        diag.error(str(exc), file, line)
        return None
    template = KeyTemplate(text, pieces, file, line, routing_key=key == "routing_key")
    ok = True
    if template.routing_key:
        literal = "".join(lit + ("x" if name else "") for lit, name in pieces)
        if "*" in literal or "#" in literal or any(not word for word in literal.split(".")):
            diag.error(
                f"routing key {text!r} must be dot-separated non-empty words without '*' or '#'", file, line
            )
            ok = False
    if mapping is not None:
        model = mapping.target
        for name in template.fields:
            info = model.model_fields.get(name)
            if info is None:
                diag.error(
                    f"'{key}' uses {{{name}}}, which is not a field of {model.__name__} "
                    f"(fields: {', '.join(model.model_fields)})",
                    file,
                    line,
                )
                ok = False
            elif not is_scalar(info):
                diag.error(f"'{key}' uses {{{name}}}, which is not a text, number or code field", file, line)
                ok = False
            elif not always_present(info):
                diag.error(
                    f"'{key}' uses {{{name}}}, which {model.__name__} allows to be absent; "
                    f"use a field that every document has",
                    file,
                    line,
                )
                ok = False
    return template if ok else None


def _route(
    entry: Any,
    line: int,
    file: str,
    mappings: AbcMapping[str, Mapping],
    broken: frozenset[str],
    diag: Diagnostics,
) -> Route | None:
    if not is_map(entry):
        diag.error("a route is a map with keys: " + ", ".join(ROUTE_KEYS), file, line)
        return None
    before = len(diag.errors)
    for bad, bad_line in unknown_keys(entry, ROUTE_KEYS):
        diag.error(
            f"unknown key '{bad}' in a route; expected one of: {', '.join(ROUTE_KEYS)}", file, bad_line
        )
    missing = [key for key in REQUIRED_KEYS if key not in entry]
    if missing:
        diag.error(f"the route lacks {', '.join(repr(k) for k in missing)}", file, line)
        return None

    name = _text(entry, "name", file, diag)
    if name is not None and not _ROUTE_NAME.match(name):
        diag.error(
            f"route name {name!r} must be lower-case letters, digits, '-', '_' or '.'",
            file,
            key_line(entry, "name"),
        )

    system = record = None
    table: TableSource | None = None
    source = entry["source"]
    if not is_map(source):
        diag.error("'source' must be a map: {system: ..., record: ...}", file, key_line(entry, "source"))
    else:
        for bad, bad_line in unknown_keys(source, SOURCE_KEYS):
            diag.error(f"unknown key '{bad}' in 'source'; expected: {', '.join(SOURCE_KEYS)}", file, bad_line)
        system, record = source.get("system"), source.get("record")
        if not isinstance(system, str) or not system or not isinstance(record, str) or not record:
            diag.error(
                "'source' needs text values for both 'system' and 'record'", file, key_line(entry, "source")
            )
            system = record = None
        table = _table_source(source, record, file, diag)

    mapping: Mapping | None = None
    mapping_name = _text(entry, "mapping", file, diag)
    if mapping_name is not None:
        mapping = mappings.get(mapping_name)
        if mapping is None and mapping_name not in broken:
            diag.error(
                f"unknown mapping {mapping_name!r} (expected mappings/{mapping_name}.yaml)",
                file,
                key_line(entry, "mapping"),
            )
    if (
        mapping is not None
        and system is not None
        and (system, record)
        != (
            mapping.source_system,
            mapping.record_type,
        )
    ):
        diag.error(
            f"the route's source {system}/{record} differs from mapping {mapping.name!r}'s source "
            f"{mapping.source_system}/{mapping.record_type}",
            file,
            key_line(entry, "source"),
        )

    event_type = _text(entry, "event_type", file, diag)
    if event_type is not None:
        _check_event_type(event_type, mapping, file, key_line(entry, "event_type"), diag)
    exchange = _text(entry, "exchange", file, diag)
    routing_key = _template(entry, "routing_key", mapping, file, diag)
    subject = _template(entry, "subject", mapping, file, diag)

    policy = InvalidPolicy.PARK
    if "on_invalid" in entry:
        value = entry["on_invalid"]
        if value not in {p.value for p in InvalidPolicy}:
            known = ", ".join(p.value for p in InvalidPolicy)
            diag.error(f"on_invalid {value!r} is not one of: {known}", file, key_line(entry, "on_invalid"))
        else:
            policy = InvalidPolicy(value)
    description = entry.get("description", "")
    if not isinstance(description, str):
        diag.error("description must be text", file, key_line(entry, "description"))

    if len(diag.errors) > before or mapping is None:
        return None
    assert name and system and record and event_type and exchange and routing_key and subject
    return Route(
        name=name,
        source_system=system,
        record_type=record,
        mapping=mapping.name,
        event_type=event_type,
        exchange=exchange,
        routing_key=routing_key,
        subject=subject,
        on_invalid=policy,
        file=file,
        line=line,
        description=str(description),
        table=table,
    )


def _check_event_type(
    event_type: str, mapping: Mapping | None, file: str, line: int, diag: Diagnostics
) -> None:
    """A route publishes a type of the event catalogue, with the data that type carries."""
    if not _EVENT_TYPE.match(event_type):
        diag.error(
            f"event type {event_type!r} does not look like cn.yekuo.<entity>.<change>.v<N>", file, line
        )
        return
    listed = lookup(event_type)
    if listed is None:
        diag.error(
            f"event type {event_type!r} is not in the event catalogue (canonical_model/events.py)", file, line
        )
    elif mapping is not None and mapping.target is not listed.payload:
        diag.error(
            f"event type {event_type} carries a {listed.payload.__name__}, but mapping {mapping.name!r} "
            f"produces a {mapping.target.__name__}",
            file,
            line,
        )


def read_route_file(
    path: Path,
    mappings: AbcMapping[str, Mapping],
    diag: Diagnostics,
    broken: frozenset[str] = frozenset(),
) -> list[Route]:
    """The good routes of one file; problems are recorded in diag."""
    file = diag.display(path)
    document = read_yaml(path, file, diag)
    if document is None:
        return []
    if not is_map(document) or "routes" not in document:
        diag.error("a route file is a map with one key, 'routes', holding a list of routes", file, 1)
        return []
    for bad, bad_line in unknown_keys(document, ("routes",)):
        diag.error(f"unknown key '{bad}'; a route file has only 'routes'", file, bad_line)
    entries = document["routes"]
    if not is_list(entries) or not entries:
        diag.error("'routes' must be a non-empty list", file, key_line(document, "routes"))
        return []
    routes = []
    for index, entry in enumerate(entries):
        route = _route(entry, item_line(entries, index), file, mappings, broken, diag)
        if route is not None:
            routes.append(route)
    return routes


def read_routes(
    routes_dir: Path,
    mappings: AbcMapping[str, Mapping],
    diag: Diagnostics,
    broken: frozenset[str] = frozenset(),
) -> tuple[Route, ...]:
    """Every good route in routes_dir/*.yaml; problems (including duplicates across files) go to diag.

    broken: names of mappings whose files exist but failed to load, so routes using them are not
    reported a second time.
    """
    if not routes_dir.is_dir():
        diag.error("the route folder is missing", diag.display(routes_dir))
        return ()
    for path in sorted(routes_dir.glob("*.yml")):
        diag.error("configuration files end in .yaml; rename this file", diag.display(path))
    routes: list[Route] = []
    names: dict[str, Route] = {}
    publishes: dict[tuple[str, str, str], Route] = {}
    for path in sorted(routes_dir.glob("*.yaml")):
        for route in read_route_file(path, mappings, diag, broken):
            first = names.get(route.name)
            if first is not None:
                diag.error(
                    f"route name {route.name!r} is already used at {first.file}:{first.line}",
                    route.file,
                    route.line,
                )
                continue
            key = (route.source_system, route.record_type, route.event_type)
            twin = publishes.get(key)
            if twin is not None:
                diag.error(
                    f"route {route.name!r} publishes {route.event_type} for {route.source_system}/"
                    f"{route.record_type} like route {twin.name!r} at {twin.file}:{twin.line}",
                    route.file,
                    route.line,
                )
                continue
            names[route.name] = route
            publishes[key] = route
            routes.append(route)
    _check_tables(routes, diag)
    return tuple(routes)


def _check_tables(routes: list[Route], diag: Diagnostics) -> None:
    """Table options across routes: one table per record, and a route for every deletion record."""
    sources = {(route.source_system, route.record_type) for route in routes}
    polled: dict[tuple[str, str], Route] = {}
    for route in routes:
        if route.table is None:
            continue
        deleted = route.table.deleted
        if deleted is not None and (route.source_system, deleted) not in sources:
            diag.error(
                f"deletion records {route.source_system}/{deleted} have no route; add one or drop 'deleted'",
                route.file,
                route.table.line,
            )
        first = polled.setdefault((route.source_system, route.record_type), route)
        if first is not route and first.table != route.table:
            diag.error(
                f"{route.source_system}/{route.record_type} is already read from table "
                f"{first.table.table if first.table else '?'} as configured by route {first.name!r} at "
                f"{first.file}:{first.line}; routes of one record must agree on its table",
                route.file,
                route.table.line,
            )


def load_routes(
    routes_dir: Path, mappings: AbcMapping[str, Mapping], *, root: Path | None = None
) -> tuple[Route, ...]:
    """Every route in routes_dir/*.yaml; raise ConfigError (file:line) listing every problem."""
    diag = Diagnostics(root)
    routes = read_routes(routes_dir, mappings, diag)
    diag.raise_if_any()
    return routes
