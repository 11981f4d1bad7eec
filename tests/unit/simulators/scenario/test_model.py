"""Counts in scenario files: a bare number is exact, min/max are bounds, and the report says which."""

from __future__ import annotations

import pydantic
import pytest

from simulators.scenario.model import Count


@pytest.mark.parametrize(
    ("raw", "inside", "outside", "words"),
    [
        (3, [3], [2, 4], "exactly 3"),
        ({"min": 2}, [2, 99], [1], "at least 2"),
        ({"max": 0}, [0], [1], "at most 0"),
        ({"min": 1, "max": 3}, [1, 3], [0, 4], "between 1 and 3"),
    ],
)
def test_a_count_holds_inside_its_range_only(
    raw: object, inside: list[int], outside: list[int], words: str
) -> None:
    count = Count.model_validate(raw)
    assert all(count.holds(value) for value in inside)
    assert not any(count.holds(value) for value in outside)
    assert count.describe() == words


@pytest.mark.parametrize("raw", [{}, {"min": 3, "max": 1}, {"min": -1}, True])
def test_a_count_without_a_sensible_range_is_refused(raw: object) -> None:
    with pytest.raises(pydantic.ValidationError):
        Count.model_validate(raw)
