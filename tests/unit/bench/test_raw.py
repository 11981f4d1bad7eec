"""The raw benchmark's message body: exactly the size asked for, and JSON."""

from __future__ import annotations

import json

import pytest

from bench.raw import message_body


def test_body_has_the_exact_size_and_is_json() -> None:
    for size in (100, 1200, 4096):
        body = message_body(size)
        assert len(body) == size
        assert json.loads(body)["type"] == "cn.yekuo.bench.v1"


def test_body_too_small_for_its_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        message_body(10)
