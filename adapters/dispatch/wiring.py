"""The dispatch adapter as a declared source (kind dispatch_dropfolder): the drop folder as a file feed."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from sqlalchemy.engine import Engine

from adapters.dispatch.dropfolder import with_sweeps
from adapters.dispatch.intake import DispatchFeed
from ground.settings import DispatchSettings, SourceSettings
from pipeline.records import SourceParts
from routes.table import Route

# The loop's pause when idle unless the entry gives one; the feed lists the folder every scan_interval_s.
DEFAULT_IDLE_S = 0.05


def dispatch_parts(entry: SourceSettings, engine: Engine, routes: Sequence[Route]) -> SourceParts:
    """A declared dispatch_dropfolder source: its feed, whose loop also sweeps done/ and error/."""
    settings = DispatchSettings.model_validate(entry.settings)
    feed = DispatchFeed.from_settings(settings)
    return SourceParts(
        entry.name,
        feed=feed,
        idle_s=entry.poll_interval_s or DEFAULT_IDLE_S,
        progress_every_rows=settings.progress_every_rows,
        around_step=functools.partial(with_sweeps, feed.folder),
    )
