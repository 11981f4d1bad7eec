"""Optional profiling of the measured hub stages with pyinstrument (`python -m bench --profile`).

Each stage run in the calling thread is sampled and its call tree written to profile-<stage>.txt next to
the results. Figures of a profiled run include the profiler's overhead and are marked so in the JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_INTERVAL_S = 0.001


class Profiles:
    """Context managers that profile a named stage into folder, or do nothing when folder is None."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.written: dict[str, str] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        """Profile the block as `stage`."""
        if self.folder is None:
            yield
            return
        # Imported here: pyinstrument is a development tool, needed only when profiling is asked for.
        from pyinstrument import Profiler

        profiler = Profiler(interval=_INTERVAL_S)
        profiler.start()
        try:
            yield
        finally:
            profiler.stop()
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"profile-{stage}.txt"
            path.write_text(profiler.output_text(unicode=True, color=False, show_all=False), encoding="utf-8")
            self.written[stage] = str(path)
