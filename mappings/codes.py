"""Code tables (mappings/codes/<system>/<name>.yaml): legacy code -> canonical value."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mappings.yamlfile import (
    Diagnostics,
    UnsupportedValueError,
    is_map,
    key_line,
    plain,
    read_yaml,
    unknown_keys,
)

TABLE_KEYS = ("table", "description", "codes")


@dataclass(frozen=True)
class CodeTable:
    """One code table; codes are the exact legacy text, values are canonical values."""

    name: str
    file: str
    description: str
    codes: dict[str, Any]
    lines: dict[str, int]

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def __getitem__(self, code: str) -> Any:
        return self.codes[code]


class CodeTables:
    """Every code table, by name (its path under mappings/codes/ without .yaml)."""

    def __init__(
        self, tables: dict[str, CodeTable] | None = None, broken: frozenset[str] = frozenset()
    ) -> None:
        self._tables = dict(tables or {})
        # Tables whose file exists but failed to load: their users are not reported a second time.
        self.broken = broken

    def get(self, name: str) -> CodeTable | None:
        """A table by name, or None."""
        return self._tables.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tables

    def __iter__(self) -> Iterator[CodeTable]:
        return iter(self._tables.values())

    def __len__(self) -> int:
        return len(self._tables)


def read_code_table(path: Path, codes_dir: Path, diag: Diagnostics) -> CodeTable | None:
    """Load one code table, recording every problem in diag; None if it is unusable."""
    file = diag.display(path)
    expected_name = path.relative_to(codes_dir).with_suffix("").as_posix()
    document = read_yaml(path, file, diag)
    if document is None:
        return None
    if not is_map(document):
        diag.error("a code table is a map with keys: table, description, codes", file, 1)
        return None
    before = len(diag.errors)
    for key, line in unknown_keys(document, TABLE_KEYS):
        diag.error(f"unknown key '{key}'; expected one of: {', '.join(TABLE_KEYS)}", file, line)
    name = document.get("table")
    if name is None:
        diag.error(f"missing key 'table' (expected table: {expected_name})", file, 1)
    elif name != expected_name:
        diag.error(
            f"table name '{name}' does not match the file; expected '{expected_name}'",
            file,
            key_line(document, "table"),
        )
    description = document.get("description", "")
    if not isinstance(description, str):
        diag.error("description must be text", file, key_line(document, "description"))
    codes = document.get("codes")
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    if not is_map(codes) or not codes:
        line = key_line(document, "codes") if "codes" in document else 1
        diag.error("'codes' must be a non-empty map of legacy code -> canonical value", file, line)
    else:
        for code, value in codes.items():
            line = key_line(codes, code)
            if not isinstance(code, str):
                diag.error(
                    f"code {code!r} is not text; quote it so the legacy code is kept exactly "
                    '(e.g. "01", not 01)',
                    file,
                    line,
                )
                continue
            try:
                values[code] = plain(value)
            except UnsupportedValueError as exc:
                diag.error(f"code '{code}': {exc}", file, line)
                continue
            lines[code] = line
    if len(diag.errors) > before:
        return None
    return CodeTable(
        name=expected_name,
        file=file,
        description=str(description),
        codes=values,
        lines=lines,
    )


def read_code_tables(codes_dir: Path, diag: Diagnostics) -> CodeTables:
    """Load every code table under codes_dir, recording problems in diag and keeping the good tables."""
    tables: dict[str, CodeTable] = {}
    broken: set[str] = set()
    if not codes_dir.is_dir():
        diag.error("the code table folder is missing", diag.display(codes_dir))
        return CodeTables()
    for path in sorted(codes_dir.rglob("*.yml")):
        diag.error("configuration files end in .yaml; rename this file", diag.display(path))
    for path in sorted(codes_dir.rglob("*.yaml")):
        table = read_code_table(path, codes_dir, diag)
        if table is None:
            broken.add(path.relative_to(codes_dir).with_suffix("").as_posix())
        else:
            tables[table.name] = table
    return CodeTables(tables, frozenset(broken))


def load_code_tables(codes_dir: Path, *, root: Path | None = None) -> CodeTables:
    """Load every code table under codes_dir; raise ConfigError (file:line) if any is wrong."""
    diag = Diagnostics(root)
    tables = read_code_tables(codes_dir, diag)
    diag.raise_if_any()
    return tables
