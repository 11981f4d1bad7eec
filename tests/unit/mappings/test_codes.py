"""Code tables: legacy text kept exactly, every mistake reported with file and line."""

from __future__ import annotations

import pytest

from ground.errors import ConfigError
from mappings.codes import load_code_tables, read_code_tables
from mappings.yamlfile import Diagnostics
from tests.unit.mappings.workspace import Workspace


def errors_of(ws: Workspace) -> list[tuple[str | None, int | None, str]]:
    diag = Diagnostics(ws.root)
    read_code_tables(ws.codes_dir, diag)
    return [(e.file, e.line, str(e)) for e in diag.errors]


def test_tables_load_by_name_with_values_and_lines(ws: Workspace) -> None:
    ws.write(
        "mappings/codes/sys/volt.yaml",
        """\
        table: sys/volt
        description: voltage codes
        codes:
          AC00101: 10
          "0": 0.4
          X: [1, 2]
        """,
    )
    tables = load_code_tables(ws.codes_dir, root=ws.root)
    table = tables.get("sys/volt")
    assert table is not None
    assert (table.name, table.file, table.description) == (
        "sys/volt",
        "mappings/codes/sys/volt.yaml",
        "voltage codes",
    )
    assert table.codes == {"AC00101": 10, "0": 0.4, "X": [1, 2]}
    assert type(table.codes["0"]) is float
    assert table.lines == {"AC00101": 4, "0": 5, "X": 6}
    assert "AC00101" in table and "AC00102" not in table
    assert "sys/volt" in tables and len(tables) == 1
    assert [t.name for t in tables] == ["sys/volt"]


def test_unquoted_numeric_codes_are_rejected_because_leading_zeros_would_be_lost(ws: Workspace) -> None:
    ws.write("mappings/codes/sys/flag.yaml", 'table: sys/flag\ncodes:\n  "1": true\n  01: true\n')
    [(file, line, message)] = errors_of(ws)
    assert (file, line) == ("mappings/codes/sys/flag.yaml", 4)
    assert "code 1 is not text; quote it" in message


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "table: sys/other\ncodes: {a: 1}\n",
            1,
            "table name 'sys/other' does not match the file; expected 'sys/t'",
        ),
        ("codes: {a: 1}\n", 1, "missing key 'table'"),
        ("table: sys/t\ncodes: {}\n", 2, "'codes' must be a non-empty map"),
        ("table: sys/t\ncodes: [a, b]\n", 2, "'codes' must be a non-empty map"),
        ("table: sys/t\ncode: {a: 1}\ncodes: {a: 1}\n", 2, "unknown key 'code'"),
        ("table: sys/t\ndescription: [x]\ncodes: {a: 1}\n", 2, "description must be text"),
        ("table: sys/t\ncodes: {a: !!binary aGVsbG8=}\n", 2, "unsupported YAML value"),
        ("table: sys/t\ncodes: {a: 1, a: 2}\n", 2, "duplicate key"),
        ("- a\n", 1, "a code table is a map"),
    ],
)
def test_table_mistakes(ws: Workspace, text: str, line: int, message: str) -> None:
    ws.write("mappings/codes/sys/t.yaml", text)
    errors = errors_of(ws)
    assert any(e[:2] == ("mappings/codes/sys/t.yaml", line) and message in e[2] for e in errors), errors
    with pytest.raises(ConfigError):
        load_code_tables(ws.codes_dir, root=ws.root)


def test_broken_tables_are_remembered_and_good_ones_kept(ws: Workspace) -> None:
    ws.table("sys/good", "a: 1\n")
    ws.write("mappings/codes/sys/bad.yaml", "table: sys/bad\ncodes: {}\n")
    ws.write("mappings/codes/sys/old.yml", "table: sys/old\n")
    diag = Diagnostics(ws.root)
    tables = read_code_tables(ws.codes_dir, diag)
    assert [t.name for t in tables] == ["sys/good"]
    assert tables.broken == {"sys/bad"}
    assert [(e.file, e.line) for e in diag.errors] == [
        ("mappings/codes/sys/old.yml", None),
        ("mappings/codes/sys/bad.yaml", 2),
    ]


def test_a_missing_folder_is_an_error(ws: Workspace) -> None:
    with pytest.raises(ConfigError, match="the code table folder is missing"):
        load_code_tables(ws.root / "none", root=ws.root)
