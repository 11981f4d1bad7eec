"""Where personal data sits in a canonical document, read from the x-pii markers of the model schema."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

# A path is a tuple of property names; "[]" steps into every item of an array.
PiiPath = tuple[str, ...]


@cache
def pii_paths(model: type[BaseModel]) -> tuple[PiiPath, ...]:
    """Every path to a field marked x-pii in the model's JSON Schema."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    found: list[PiiPath] = []

    def walk(node: dict[str, Any], path: PiiPath) -> None:
        if "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        if node.get("x-pii"):
            found.append(path)
            return
        for option in node.get("anyOf", []):
            walk(option, path)
        if node.get("type") == "array" and "items" in node:
            walk(node["items"], (*path, "[]"))
        for name, prop in node.get("properties", {}).items():
            walk(prop, (*path, name))

    walk(schema, ())
    return tuple(found)


def mask_value(value: str) -> str:
    """Keep the last four characters, which is what a service agent needs to confirm identity."""
    visible = value[-4:] if len(value) > 8 else ""
    return "*" * (len(value) - len(visible)) + visible


def mask_document(document: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """A copy of a canonical document with every PII field masked."""
    masked: dict[str, Any] = _copy(document)
    for path in pii_paths(model):
        _mask_at(masked, path)
    return masked


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _mask_at(node: Any, path: PiiPath) -> None:
    if not path:
        return
    head, rest = path[0], path[1:]
    if head == "[]":
        for item in node if isinstance(node, list) else ():
            _mask_at(item, rest)
        return
    if not isinstance(node, dict) or node.get(head) is None:
        return
    if rest:
        _mask_at(node[head], rest)
    elif isinstance(node[head], str):
        node[head] = mask_value(node[head])


def mask_name(name: str) -> str:
    """The first character and a star for each other one (张三 -> 张*), as service counters show names."""
    return name[:1] + "*" * (len(name) - 1)
