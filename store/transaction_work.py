"""Work shared by the statements of one transaction: values worked out once, and steps run once at its end.

A consumer applies a batch of events in one transaction. Some per-event writes only need doing once per
transaction (bumping the grid revision), or are cheaper gathered and done together (staging the
projection notices). The consumer opens a TransactionWork around the batch and finishes it just before
the commit; code that runs outside any (a test, a one-off command) simply does its work at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection

_KEY = "yekuo.transaction_work"


class TransactionWork:
    """A memo for one transaction, and the steps to run when its work is finished (before the commit)."""

    def __init__(self) -> None:
        self.memo: dict[str, Any] = {}
        self._closing: list[Callable[[Connection], None]] = []

    def before_end(self, step: Callable[[Connection], None]) -> None:
        """Run step(conn) when the work is finished, after the steps registered before it."""
        self._closing.append(step)

    def finish(self, conn: Connection) -> None:
        """Run the registered steps in the caller's transaction; the caller commits afterwards."""
        steps, self._closing = self._closing, []
        for step in steps:
            step(conn)


@contextmanager
def transaction_work(conn: Connection) -> Iterator[TransactionWork]:
    """Open the work of the transaction (or savepoint) the caller is about to run on conn.

    Leaving the block forgets the work, finished or not: work that was not finished belongs to a
    transaction that is being rolled back. An enclosing work is restored, so a savepoint gets its own.
    """
    outer = conn.info.get(_KEY)
    work = TransactionWork()
    conn.info[_KEY] = work
    try:
        yield work
    finally:
        if outer is None:
            conn.info.pop(_KEY, None)
        else:
            conn.info[_KEY] = outer


def current_work(conn: Connection) -> TransactionWork | None:
    """The work open on conn, or None."""
    work = conn.info.get(_KEY)
    return work if isinstance(work, TransactionWork) else None
