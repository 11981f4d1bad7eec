"""Log set-up: one line per record, each carrying the correlation id of the change being handled."""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="-")


class _CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        return True


@contextlib.contextmanager
def correlated(value: str) -> Iterator[None]:
    """Tag every log line written inside the block with this correlation id."""
    token = correlation_id.set(value)
    try:
        yield
    finally:
        correlation_id.reset(token)


def configure(level: int = logging.INFO) -> None:
    """Send hub logs to stderr as key=value lines with the correlation id."""
    handler = logging.StreamHandler()
    handler.addFilter(_CorrelationFilter())
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s level=%(levelname)s logger=%(name)s cid=%(correlation_id)s %(message)s"
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Library chatter (zeep's WSDL loading, pika's connection steps) would drown the hub's own lines.
    for noisy in ("zeep", "pika", "urllib3", "uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
