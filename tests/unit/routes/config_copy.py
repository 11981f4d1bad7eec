"""A copy of the shipped configuration folders that a test may break."""

from __future__ import annotations

import shutil
from pathlib import Path

from ground.settings import PROJECT_ROOT


def copy_config(target: Path) -> Path:
    """Copy the YAML files of the shipped configuration folders into target; return target."""
    for folder in ("mappings", "routes", "workflow", "feasibility", "forecast", "knowledge"):
        shutil.copytree(
            PROJECT_ROOT / folder,
            target / folder,
            ignore=shutil.ignore_patterns("*.py", "__pycache__"),
        )
    return target


def line_of(path: Path, text: str) -> int:
    """The 1-based line of the first line of path that contains text."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def replace(path: Path, old: str, new: str) -> int:
    """Replace text once in a file; return the line it was on."""
    line = line_of(path, old)
    content = path.read_text(encoding="utf-8")
    path.write_text(content.replace(old, new, 1), encoding="utf-8")
    return line
