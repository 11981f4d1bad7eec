"""A grid-bucket spatial index over WGS84 points, with haversine distances in metres.

Points fall into cells of a fixed size in degrees; a radius query visits only the cells its bounding box
covers and measures the exact great-circle distance to each point there. This is enough for connection
point searches of a few kilometres and needs no native library.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Generic, TypeVar

EARTH_RADIUS_M = 6_371_008.8
METRES_PER_DEGREE_LAT = math.pi * EARTH_RADIUS_M / 180
T = TypeVar("T")


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance between two WGS84 points, metres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


class SpatialIndex(Generic[T]):
    """Items at points, found by distance from a point; cell_deg 0.01 is about 1.1 km of latitude."""

    def __init__(self, cell_deg: float = 0.01) -> None:
        if cell_deg <= 0:
            raise ValueError(f"cell size must be positive, not {cell_deg}")
        self._cell = cell_deg
        self._cells: dict[tuple[int, int], list[tuple[float, float, T]]] = defaultdict(list)
        self.size = 0

    def _key(self, lon: float, lat: float) -> tuple[int, int]:
        return math.floor(lon / self._cell), math.floor(lat / self._cell)

    def add(self, lon: float, lat: float, item: T) -> None:
        """Index an item at a point."""
        self._cells[self._key(lon, lat)].append((lon, lat, item))
        self.size += 1

    def within(self, lon: float, lat: float, radius_m: float) -> list[tuple[float, T]]:
        """(distance in metres, item) of every item within the radius, nearest first."""
        dlat = radius_m / METRES_PER_DEGREE_LAT
        # Longitude degrees shrink with latitude; the widest point of the circle sets the box.
        cos_lat = max(math.cos(math.radians(min(89.9, abs(lat) + dlat))), 1e-6)
        dlon = dlat / cos_lat
        min_x, min_y = self._key(lon - dlon, lat - dlat)
        max_x, max_y = self._key(lon + dlon, lat + dlat)
        found: list[tuple[float, T]] = []
        for x in range(min_x, max_x + 1):
            for y in range(min_y, max_y + 1):
                for item_lon, item_lat, item in self._cells.get((x, y), ()):
                    distance = haversine_m(lon, lat, item_lon, item_lat)
                    if distance <= radius_m:
                        found.append((distance, item))
        found.sort(key=lambda pair: pair[0])
        return found
