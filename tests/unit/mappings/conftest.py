"""Fixtures of the mapping tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.mappings.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)
