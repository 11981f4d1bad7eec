"""Counts the SQL statements an engine sends while a block runs: each is a round trip to the database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine


@dataclass
class StatementCount:
    """How many statements were sent (an executemany counts once: psycopg pipelines it)."""

    statements: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *_args: Any) -> None:
        """Listener for the engine's before_cursor_execute event."""
        with self._lock:
            self.statements += 1

    def per(self, items: int) -> float:
        """Statements per item (event, request); 0 when there were no items."""
        return self.statements / items if items else 0.0


@contextmanager
def counting_statements(engine: Engine) -> Iterator[StatementCount]:
    """Count every statement the engine's connections send, from any thread, until the block ends."""
    count = StatementCount()
    sa.event.listen(engine, "before_cursor_execute", count.add)
    try:
        yield count
    finally:
        sa.event.remove(engine, "before_cursor_execute", count.add)
