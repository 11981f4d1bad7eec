"""The grid-bucket spatial index and the haversine distance."""

from __future__ import annotations

import pytest

from feasibility.spatial import METRES_PER_DEGREE_LAT, SpatialIndex, haversine_m


def test_haversine_of_one_degree_of_latitude() -> None:
    # pi x 6,371,008.8 m / 180 = 111,195.08 m
    assert haversine_m(113.0, 34.0, 113.0, 35.0) == pytest.approx(111_195.08, abs=0.01)
    assert round(METRES_PER_DEGREE_LAT, 2) == 111_195.08


def test_haversine_along_a_parallel_shrinks_with_latitude() -> None:
    # at 60 degrees a degree of longitude is about half of one at the equator
    assert haversine_m(0, 60, 1, 60) == pytest.approx(111_195.08 / 2, rel=0.002)


def test_within_returns_nearest_first_and_respects_the_radius_across_cells() -> None:
    index: SpatialIndex[str] = SpatialIndex(cell_deg=0.001)  # about 111 m cells: points span many of them
    index.add(113.6500, 34.7500, "here")
    index.add(113.6500, 34.7520, "222 m north")  # 0.002 degrees x 111,195 m
    index.add(113.6500, 34.7450, "556 m south")
    index.add(113.7000, 34.7500, "4.6 km east")
    found = index.within(113.65, 34.75, 600)
    assert [item for _, item in found] == ["here", "222 m north", "556 m south"]
    assert found[1][0] == pytest.approx(222.39, abs=0.01)
    assert index.within(113.65, 34.75, 100) == [(0.0, "here")]
    assert index.size == 4


def test_cell_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        SpatialIndex(cell_deg=0)
