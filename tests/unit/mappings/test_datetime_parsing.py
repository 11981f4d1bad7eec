"""The fast date-time path agrees with strptime on every text, valid or not."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mappings.engine import _ISO_SHAPES, _parse_datetime


def _strptime_answer(text: str, datetime_format: str) -> dt.datetime | str:
    try:
        return dt.datetime.strptime(text, datetime_format)
    except ValueError:
        return "rejected"


def _fast_answer(text: str, datetime_format: str) -> dt.datetime | str:
    try:
        return _parse_datetime(text, datetime_format)
    except ValueError:
        return "rejected"


@pytest.mark.parametrize("datetime_format", sorted(_ISO_SHAPES))
@pytest.mark.parametrize(
    "text",
    [
        "2026-11-26 09:05:00",
        "2026-11-26T09:05:00",
        "2026-11-26",
        "2026-02-30 00:00:00",
        "2026-11-26 24:00:00",
        "2026-11-26 09:05:00+08:00",
        "2026-11-26 09:05",
        "20261126090500",
        "２０２６-11-26 09:05:00",
        "٢٠٢٦-11-26 09:05:00",
        " 2026-11-26 09:05:00",
    ],
)
def test_known_texts_get_the_strptime_answer(text: str, datetime_format: str) -> None:
    assert _fast_answer(text, datetime_format) == _strptime_answer(text, datetime_format)


@given(st.datetimes(), st.sampled_from(sorted(_ISO_SHAPES)))
def test_formatted_datetimes_round_trip(moment: dt.datetime, datetime_format: str) -> None:
    text = moment.strftime(datetime_format)
    assert _fast_answer(text, datetime_format) == _strptime_answer(text, datetime_format)


@given(st.text(alphabet="0123456789-: T٢", max_size=20), st.sampled_from(sorted(_ISO_SHAPES)))
def test_arbitrary_texts_get_the_strptime_answer(text: str, datetime_format: str) -> None:
    assert _fast_answer(text, datetime_format) == _strptime_answer(text, datetime_format)
