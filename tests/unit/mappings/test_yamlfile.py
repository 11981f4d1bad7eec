"""YAML reading with 1-based lines, and error collection."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ground.errors import ConfigError
from mappings.yamlfile import Diagnostics, item_line, key_line, line_of, plain, read_yaml


def read(tmp_path: Path, text: str) -> tuple[object, list[ConfigError]]:
    path = tmp_path / "f.yaml"
    path.write_text(text, encoding="utf-8")
    diag = Diagnostics(tmp_path)
    return read_yaml(path, diag.display(path), diag), diag.errors


def test_lines_are_one_based(tmp_path: Path) -> None:
    document, errors = read(tmp_path, "a: 1\nb:\n  - x\n  - {c: 2}\n")
    assert errors == []
    assert key_line(document, "a") == 1  # type: ignore[arg-type]
    items = document["b"]  # type: ignore[index]
    assert (key_line(document, "b"), line_of(items), item_line(items, 1)) == (2, 3, 4)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: 1\nb: [1, 2\nc: 3\n", 3, "expected ',' or ']'"),
        ("a: 1\n  b: 2\n", 2, "mapping values are not allowed here"),
        ("a: 1\nb: 2\na: 3\n", 3, 'found duplicate key "a"'),
        ("a: *nowhere\n", 1, "found undefined alias"),
        ("a: 1\n---\nb: 2\n", 2, "but found another document"),
        ("", 1, "the file is empty"),
    ],
)
def test_broken_yaml_reports_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    document, errors = read(tmp_path, text)
    assert document is None
    [error] = errors
    assert (error.file, error.line) == ("f.yaml", line)
    assert message in str(error)
    assert str(error).startswith(f"f.yaml:{line}: ")


def test_an_unreadable_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes("a: 电压\n".encode("gbk"))
    diag = Diagnostics(tmp_path)
    assert read_yaml(path, "f.yaml", diag) is None
    assert "cannot read the file" in str(diag.errors[0])


def test_display_names_are_relative_to_the_root_when_possible(tmp_path: Path) -> None:
    assert Diagnostics(tmp_path).display(tmp_path / "mappings" / "a.yaml") == "mappings/a.yaml"
    assert Diagnostics(tmp_path / "x").display(tmp_path / "a.yaml") == str(tmp_path / "a.yaml")
    assert Diagnostics().display(Path("rel/a.yaml")) == "rel/a.yaml"


def test_raise_if_any_raises_the_single_error_or_a_listing() -> None:
    diag = Diagnostics()
    diag.raise_if_any()
    diag.error("first", "a.yaml", 3)
    with pytest.raises(ConfigError) as one:
        diag.raise_if_any()
    assert (one.value.file, one.value.line, str(one.value)) == ("a.yaml", 3, "a.yaml:3: first")
    diag.error("second", "b.yaml")
    with pytest.raises(ConfigError) as many:
        diag.raise_if_any()
    assert str(many.value) == "2 configuration errors:\na.yaml:3: first\nb.yaml: second"


def test_plain_turns_yaml_values_into_plain_python(tmp_path: Path) -> None:
    document, _ = read(tmp_path, "a: {b: [1, 2.5, x, true, null, 2026-01-02]}\n")
    value = plain(document)
    assert value == {"a": {"b": [1, 2.5, "x", True, None, dt.date(2026, 1, 2)]}}
    assert type(value) is dict and type(value["a"]["b"]) is list and type(value["a"]["b"][1]) is float
