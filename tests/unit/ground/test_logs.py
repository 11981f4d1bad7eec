"""The log filter redacts identity, mobile and account numbers from messages, arguments and tracebacks."""

from __future__ import annotations

import io
import logging

import pytest

from ground.logs import REDACTED, PiiRedactingFilter, redact


@pytest.mark.parametrize(
    "value",
    [
        "41130219850317002X",  # resident identity card
        "411302198503170021",
        "91411300MA40ABCD1X",  # unified social credit code
        "13912345678",  # mobile
        "6212345678901234567",  # bank card
        "41051234567890123456",  # corporate account
    ],
)
def test_personal_values_are_redacted_even_inside_chinese_text(value: str) -> None:
    assert redact(f"证件号码{value}，请核对") == f"证件号码{REDACTED}，请核对"


@pytest.mark.parametrize(
    "text",
    [
        "application 2611260000123 moved to scheme_reply",  # 13-digit application number
        "customer 4131257758 stored",  # 10-digit customer number
        "event 3f2a1b4c-1234-4abc-9def-123456789012 relayed",
        "at 2026-11-26 08:00:00, VOLT_CODE AC00101",
    ],
)
def test_keys_and_times_stay_readable(text: str) -> None:
    assert redact(text) == text


def attach_redacting_handler(logger: logging.Logger, stream: io.StringIO) -> None:
    handler = logging.StreamHandler(stream)
    handler.addFilter(PiiRedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False


def test_the_filter_redacts_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("tests.yekuo.redaction")
    logger.setLevel(logging.DEBUG)
    attach_redacting_handler(logger, stream)
    try:
        logger.info("customer %s phone %s", "4131257758", "13912345678")
        try:
            raise ValueError("bad CERT_NO 41130219850317002X")
        except ValueError:
            logger.exception("mapping failed for %s", {"BANK_ACCT": "6212345678901234567"})
    finally:
        logger.handlers.clear()
        logger.propagate = True

    written = stream.getvalue()
    assert "customer 4131257758 phone [redacted]" in written
    assert "ValueError: bad CERT_NO [redacted]" in written
    assert "{'BANK_ACCT': '[redacted]'}" in written
    for value in ("13912345678", "41130219850317002X", "6212345678901234567"):
        assert value not in written
