"""The PMS adapter as a declared source (kind pms_db): the database poller over the PMS routes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Engine

from adapters.pms.source import PmsSource
from ground.settings import PmsSettings, SourceSettings
from pipeline.records import SourceParts
from routes.table import Route

# The loop's pause when idle unless the entry gives one: the marketing system's default poll interval.
DEFAULT_POLL_INTERVAL_S = 1.0


def pms_parts(entry: SourceSettings, engine: Engine, routes: Sequence[Route]) -> SourceParts:
    """A declared pms_db source: the poller of the tables the PMS routes read, its state in the hub DB."""
    settings = PmsSettings.model_validate(entry.settings)
    # The entry names the checkpoint and the sync state, so two PMS databases never share a watermark.
    source = PmsSource(routes, state_engine=engine, settings=settings, name=entry.name)
    return SourceParts(entry.name, poll=source, idle_s=entry.poll_interval_s or DEFAULT_POLL_INTERVAL_S)
