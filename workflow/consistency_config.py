"""Reading the consistency rules (workflow/consistency.yaml) with file and line in every error.

The file is read with line numbers and checked as a whole at start-up, like the stage model: unknown keys,
kinds, categories and parameters, a message naming a fact its kind does not offer, a rule defined twice. A
province replaces the file with its own in its configuration folder (YEKUO_CONFIG_DIR).
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

from canonical_model.consistency import RULE_PATTERN
from mappings.yamlfile import Diagnostics, is_list, is_map, item_line, key_line, read_yaml, unknown_keys
from workflow.consistency import CATEGORIES, KINDS, ConsistencyConfig, Kind, Rule

CONSISTENCY_FILE = "consistency.yaml"
WORKFLOW_FOLDER = "workflow"
_NAME = re.compile(RULE_PATTERN)

_RULE_KEYS = ("name", "kind", "category", "message", "enabled", "params")


def _plain(node: Any) -> Any:
    """A loaded YAML value as plain Python values (maps and lists without line information)."""
    if is_map(node):
        return {key: _plain(value) for key, value in node.items()}
    if is_list(node):
        return [_plain(item) for item in node]
    return node


def _read_rule(node: Any, line: int, file: str, diag: Diagnostics) -> Rule | None:
    before = len(diag.errors)
    if not is_map(node):
        diag.error(f"a rule is a map with keys: {', '.join(_RULE_KEYS)}", file, line)
        return None
    for key, key_at in unknown_keys(node, _RULE_KEYS):
        diag.error(f"unknown key '{key}' in a rule; expected one of: {', '.join(_RULE_KEYS)}", file, key_at)
    name = node.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        diag.error(f"a rule needs 'name' in lower_snake_case, got {name!r}", file, line)
        name = "?"
    what = f"rule '{name}'"
    kind = node.get("kind")
    if kind not in KINDS:
        at = key_line(node, "kind") if "kind" in node else line
        diag.error(f"{what}: 'kind' must be one of: {', '.join(KINDS)}; got {kind!r}", file, at)
    category = node.get("category", "information_error")
    if category not in CATEGORIES:
        diag.error(
            f"{what}: 'category' must be one of: {', '.join(CATEGORIES)}; got {category!r}",
            file,
            key_line(node, "category"),
        )
    enabled = node.get("enabled", True)
    if not isinstance(enabled, bool):
        diag.error(
            f"{what}: 'enabled' must be true or false, got {enabled!r}", file, key_line(node, "enabled")
        )
    message = node.get("message")
    if not isinstance(message, str) or not message.strip():
        diag.error(f"{what} needs 'message', a non-empty text", file, line)
    params: dict[str, Any] = {}
    if kind in KINDS:
        spec = KINDS[kind]
        if isinstance(message, str):
            _check_template(message, spec.fields, what, file, key_line(node, "message"), diag)
        params = _read_params(node, spec, what, file, line, diag)
    if len(diag.errors) > before:
        return None
    return Rule(str(name), str(kind), str(category), str(message), bool(enabled), params)


def _check_template(
    message: str, fields: frozenset[str], what: str, file: str, line: int, diag: Diagnostics
) -> None:
    try:
        named = [name for _, name, spec, conversion in string.Formatter().parse(message) if name is not None]
    except ValueError as exc:
        diag.error(f"{what}: 'message' is not a valid template: {exc}", file, line)
        return
    for name in named:
        if name not in fields:
            diag.error(
                f"{what}: 'message' names {{{name}}}; this kind offers: {', '.join(sorted(fields))}",
                file,
                line,
            )


def _read_params(node: Any, spec: Kind, what: str, file: str, line: int, diag: Diagnostics) -> dict[str, Any]:
    given = node.get("params")
    if given is None:
        given = {}
    elif not is_map(given):
        diag.error(f"{what}: 'params' must be a map", file, key_line(node, "params"))
        return {}
    for key, key_at in unknown_keys(given, tuple(spec.params)) if is_map(given) else []:
        diag.error(
            f"{what}: unknown parameter '{key}'; this kind takes: {', '.join(spec.params)}", file, key_at
        )
    params: dict[str, Any] = {}
    for name, (reader, default) in spec.params.items():
        if name not in given:
            if default is None:
                diag.error(f"{what} needs parameter '{name}'", file, line)
            params[name] = default
            continue
        try:
            params[name] = reader(_plain(given[name]))
        except ValueError as exc:
            diag.error(f"{what}: parameter '{name}' {exc}", file, key_line(given, name))
    return params


def read_consistency_config(config_dir: Path, diag: Diagnostics) -> ConsistencyConfig | None:
    """Read config_dir/workflow/consistency.yaml, recording every problem with file and line."""
    path = config_dir / WORKFLOW_FOLDER / CONSISTENCY_FILE
    file = diag.display(path)
    document = read_yaml(path, file, diag)
    if document is None:
        return None
    if not is_map(document) or "rules" not in document:
        diag.error("the consistency rules are a map with key: rules", file, 1)
        return None
    for key, key_at in unknown_keys(document, ("rules",)):
        diag.error(f"unknown key '{key}'; expected: rules", file, key_at)
    nodes = document["rules"]
    if not is_list(nodes):
        diag.error("'rules' must be a list of rules", file, key_line(document, "rules"))
        return None
    before = len(diag.errors)
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, node in enumerate(nodes):
        line = item_line(nodes, index)
        rule = _read_rule(node, line, file, diag)
        if rule is None:
            continue
        if rule.name in seen:
            diag.error(f"rule '{rule.name}' is defined twice", file, line)
        seen.add(rule.name)
        rules.append(rule)
    return None if len(diag.errors) > before else ConsistencyConfig(tuple(rules))


def load_consistency_config(config_dir: Path) -> ConsistencyConfig:
    """Load the consistency rules under config_dir; ConfigError (file:line) if anything is wrong."""
    diag = Diagnostics(config_dir)
    config = read_consistency_config(config_dir, diag)
    diag.raise_if_any()
    assert config is not None, "rules read without errors are always built"
    return config
