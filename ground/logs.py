"""Log set-up: one line per record, each carrying the correlation id of the change being handled.

Personal data must never reach a log: the hub logs keys and reasons, not documents or records. As a
second line of defence the handler redacts anything shaped like an identity number (18-character PRC
resident ID or unified social credit code), a mainland mobile number or a bank account digit run.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
from collections.abc import Iterator

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="-")


class _CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        return True


# Bounded by anything that is not a letter or digit, so Chinese text around a number does not hide it.
_PII_SHAPES = re.compile(
    r"(?<![0-9A-Za-z])(?:"
    r"\d{17}[\dXx]"  # resident identity card (GB 11643)
    r"|[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}"  # unified social credit code (GB 32100)
    r"|1[3-9]\d{9}"  # mainland mobile number
    r"|\d{16,30}"  # bank card or account; 13-digit application numbers stay readable
    r")(?![0-9A-Za-z])"
)
REDACTED = "[redacted]"
# Kept at WARNING: their chatter (zeep's WSDL loading, pika's connection steps) would drown the hub's own
# lines, and zeep's DEBUG lines carry whole SOAP bodies, personal data included.
QUIET_LIBRARIES = ("zeep", "pika", "urllib3", "uvicorn.access", "httpx")


def redact(text: str) -> str:
    """The text with every identity-number, mobile-number or account-number shaped value replaced."""
    return _PII_SHAPES.sub(REDACTED, text)


class PiiRedactingFilter(logging.Filter):
    """Rewrites a record's message (arguments merged in) and its traceback text with PII-shaped values
    redacted; the record then carries no arguments, so no handler can format the originals back in."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


@contextlib.contextmanager
def correlated(value: str) -> Iterator[None]:
    """Tag every log line written inside the block with this correlation id."""
    token = correlation_id.set(value)
    try:
        yield
    finally:
        correlation_id.reset(token)


HANDLER_NAME = "yekuo"


def configure(level: int = logging.INFO) -> None:
    """Send hub logs to stderr as key=value lines with the correlation id."""
    handler = logging.StreamHandler()
    handler.set_name(HANDLER_NAME)
    handler.addFilter(_CorrelationFilter())
    handler.addFilter(PiiRedactingFilter())
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s level=%(levelname)s logger=%(name)s cid=%(correlation_id)s %(message)s"
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in QUIET_LIBRARIES:
        logging.getLogger(noisy).setLevel(logging.WARNING)
