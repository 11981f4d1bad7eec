"""Reading configuration YAML with 1-based line numbers, and collecting every ConfigError of a check."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from ground.errors import ConfigError


class Diagnostics:
    """Collects ConfigErrors so that one check reports every broken file, not only the first.

    root: the configuration folder; file names in errors are given relative to it, so that
    `mappings/marketing/application.yaml:12: ...` reads the same on every machine.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = root
        self.errors: list[ConfigError] = []

    def display(self, path: Path) -> str:
        """How a file is named in error messages."""
        if self.root is not None:
            try:
                return path.resolve().relative_to(self.root.resolve()).as_posix()
            except ValueError:
                pass
        return str(path)

    def error(self, message: str, file: str, line: int | None = None) -> None:
        """Record one problem."""
        self.errors.append(ConfigError(message, file=file, line=line))

    def raise_if_any(self) -> None:
        """Raise the single error, or one ConfigError listing all of them."""
        if not self.errors:
            return
        if len(self.errors) == 1:
            raise self.errors[0]
        listing = "\n".join(str(e) for e in self.errors)
        raise ConfigError(f"{len(self.errors)} configuration errors:\n{listing}")


class UnsupportedValueError(Exception):
    """A YAML value the configuration formats do not accept (explicit tags, anchors to odd types)."""


def read_yaml(path: Path, file: str, diag: Diagnostics) -> Any:
    """The document in a YAML file with line information kept, or None after recording why it failed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        diag.error(f"cannot read the file: {exc}", file)
        return None
    try:
        document = YAML(typ="rt", pure=True).load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or type(exc).__name__
        diag.error(f"invalid YAML: {problem}", file, line)
        return None
    except (YAMLError, ValueError, TypeError) as exc:
        diag.error(f"invalid YAML: {exc}", file)
        return None
    if document is None:
        diag.error("the file is empty", file, 1)
    return document


def line_of(node: CommentedMap | CommentedSeq) -> int:
    """Line where a YAML map or list starts."""
    return int(node.lc.line) + 1


def key_line(node: CommentedMap, key: Any) -> int:
    """Line of a key in a YAML map."""
    return int(node.lc.key(key)[0]) + 1


def item_line(node: CommentedSeq, index: int) -> int:
    """Line of an item in a YAML list."""
    return int(node.lc.item(index)[0]) + 1


def plain(value: Any) -> Any:
    """A YAML value as plain Python (dict, list, str, int, float, bool, None, date, datetime)."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dt.date):
        return value
    raise UnsupportedValueError(f"unsupported YAML value {value!r}; write plain scalars, maps and lists")


def unknown_keys(node: CommentedMap, allowed: Iterable[str]) -> list[tuple[Any, int]]:
    """Keys of a YAML map that are not allowed, with their lines."""
    allowed_set = set(allowed)
    return [(key, key_line(node, key)) for key in node if key not in allowed_set]


def is_map(value: Any) -> bool:
    """Whether a loaded YAML value is a map that carries line information."""
    return isinstance(value, CommentedMap)


def is_list(value: Any) -> bool:
    """Whether a loaded YAML value is a list that carries line information."""
    return isinstance(value, CommentedSeq)
