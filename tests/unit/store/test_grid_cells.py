"""The coarse spatial key: a box search through the listed cells finds every point inside the box."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from store.grid import CELL_DEGREES, cell_of, cells_covering

LON = st.floats(min_value=73.0, max_value=135.0)
LAT = st.floats(min_value=18.0, max_value=53.5)


@given(LON, LAT, st.floats(0.0, 0.2), st.floats(0.0, 0.2), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_every_point_in_a_box_lies_in_one_of_its_cells(
    lon: float, lat: float, width: float, height: float, fx: float, fy: float
) -> None:
    box = (lon, lat, lon + width, lat + height)
    point = (lon + fx * width, lat + fy * height)
    cells = cells_covering(*box)
    assert cells is not None
    assert cell_of(*point) in cells


def test_neighbouring_cells_differ_and_points_a_cell_apart_do_not_share_one() -> None:
    here = cell_of(113.6501, 34.7501)
    assert cell_of(113.6501 + CELL_DEGREES, 34.7501) != here
    assert cell_of(113.6501, 34.7501 + CELL_DEGREES) != here
    assert cell_of(113.6509, 34.7509) == here
    assert cell_of(None, 34.75) is None


def test_a_box_wider_than_the_key_helps_with_lists_no_cells() -> None:
    assert cells_covering(100.0, 20.0, 101.0, 21.0) is None
    assert len(cells_covering(113.60, 34.70, 113.63, 34.72) or []) == 4 * 3
