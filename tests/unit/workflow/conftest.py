"""Fixtures of the workflow tests: the shipped configuration, the calendar and a tracker on SQLite."""

from __future__ import annotations

import pytest

from ground.settings import PROJECT_ROOT
from workflow.cases import CaseTracker
from workflow.config import WorkflowConfig, load_workflow_config
from workflow.workdays import WorkingCalendar


@pytest.fixture(scope="session")
def config() -> WorkflowConfig:
    return load_workflow_config(PROJECT_ROOT)


@pytest.fixture(scope="session")
def calendar() -> WorkingCalendar:
    return WorkingCalendar()


@pytest.fixture
def tracker(config: WorkflowConfig, calendar: WorkingCalendar) -> CaseTracker:
    return CaseTracker(config, calendar)
