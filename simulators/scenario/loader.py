"""Loading scenario files: YAML with line numbers, validated into a Scenario, every error as file:line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic

from ground.errors import ConfigError
from mappings.yamlfile import (
    Diagnostics,
    UnsupportedValueError,
    is_list,
    is_map,
    item_line,
    key_line,
    line_of,
    plain,
    read_yaml,
)
from simulators.scenario.model import Scenario


def load_scenario(path: Path) -> Scenario:
    """The scenario in a file; raises ConfigError naming file and line of every problem found."""
    file = str(path)
    diag = Diagnostics()
    document = read_yaml(path, file, diag)
    diag.raise_if_any()
    if not is_map(document):
        raise ConfigError(
            "a scenario file holds a map (name, seed, scale, faults, expect)", file=file, line=1
        )
    try:
        data = plain(document)
    except UnsupportedValueError as exc:
        raise ConfigError(str(exc), file=file, line=line_of(document)) from None
    try:
        return Scenario.model_validate(data)
    except pydantic.ValidationError as exc:
        for error in exc.errors():
            location = [part for part in error["loc"] if not _is_union_tag(part)]
            where = ".".join(str(part) for part in location) or "(top)"
            diag.error(f"{where}: {error['msg']}", file, _line(document, location))
        diag.raise_if_any()
        raise  # unreachable: a ValidationError always carries errors


def _is_union_tag(part: int | str) -> bool:
    # A discriminated union adds the tag ("marketing", ...) to the location; it is no key of the file.
    return part in ("marketing", "dispatch", "pms") or (isinstance(part, str) and "[" in part)


def _line(document: Any, location: list[int | str]) -> int:
    """The line of the deepest node of the location that exists in the file."""
    node = document
    line = line_of(document)
    for part in location:
        if is_map(node) and part in node:
            line = key_line(node, part)
            node = node[part]
        elif is_list(node) and isinstance(part, int) and 0 <= part < len(node):
            line = item_line(node, part)
            node = node[part]
        else:
            break
    return line
