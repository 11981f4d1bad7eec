"""Fixtures shared by the unit tests of several layers."""

from __future__ import annotations

import pytest

from ground.settings import PROJECT_ROOT
from mappings.codes import load_code_tables
from mappings.engine import Mapping
from mappings.loader import load_mappings


@pytest.fixture(scope="session")
def shipped_mappings() -> dict[str, Mapping]:
    codes = load_code_tables(PROJECT_ROOT / "mappings" / "codes", root=PROJECT_ROOT)
    return load_mappings(PROJECT_ROOT / "mappings", codes, root=PROJECT_ROOT)
