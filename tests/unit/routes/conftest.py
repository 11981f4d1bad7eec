"""Fixtures of the route tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.routes.config_copy import copy_config


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return copy_config(tmp_path / "config")
