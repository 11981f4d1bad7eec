"""Fixtures of the route tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from ground.settings import PROJECT_ROOT
from mappings.codes import load_code_tables
from mappings.engine import Mapping
from mappings.loader import load_mappings
from tests.unit.routes.config_copy import copy_config


@pytest.fixture(scope="session")
def shipped_mappings() -> dict[str, Mapping]:
    codes = load_code_tables(PROJECT_ROOT / "mappings" / "codes", root=PROJECT_ROOT)
    return load_mappings(PROJECT_ROOT / "mappings", codes, root=PROJECT_ROOT)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return copy_config(tmp_path / "config")
