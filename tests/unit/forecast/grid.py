"""A small seeded grid for the refresh tests, hand-checkable.

T1: a 400 kVA transformer on F1, measured flat at 270 kW for two years: 270 / 0.9 (the rules' power
factor) = 300 kVA, and a flat history is forecast flat, so every forecast month's measured part is 300
kVA. Its limit is 400 x 0.8 = 320 kVA. F1: 10 kV, 485 A, one tie, class unknown (N-1 required): capacity
sqrt(3) x 10 x 485 = 8400.4 kVA, limit min(0.7, 1/(1+1)) = 0.5, so 4200.2 kVA; measured flat at 3240 kW,
3600 kVA. S1: two 50 MVA units and no measured history at all.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.engine import Connection

from canonical_model.application import ConnectionApplication
from tests.unit.feasibility.builders import application, lv_upstream, store_grid, transformer
from tests.unit.forecast.builders import store_days, store_pipeline

NOW = datetime(2026, 1, 15, 4, 0, tzinfo=UTC)
HISTORY_START = date(2024, 1, 1)  # 24 complete months before NOW's month, the least the settings accept
TODAY = NOW.date()
T1_KW = 270.0
F1_KW = 3240.0


def flat(kw: float, start: date = HISTORY_START, end: date = TODAY) -> list[tuple[date, float]]:
    """The same peak every day from start up to (not including) end."""
    return [(start + timedelta(days=n), kw) for n in range((end - start).days)]


def seed_grid(conn: Connection) -> None:
    """S1, F1 and T1 with their history, as described above."""
    store_grid(conn, *lv_upstream(), transformer("T1", "F1", "S1", 100, rated_kva=400))
    store_days(conn, "T1", flat(T1_KW))
    store_days(conn, "F1", flat(F1_KW))


def manufacturer(number: str) -> ConnectionApplication:
    """An application of GB/T 4754 section C (manufacturing): demand factor 0.6 in the shipped rules."""
    return application(number, 500).model_copy(update={"industry_code": "C3411"})


def reserve_on_t1(conn: Connection, number: str, kva: float, deadline: date) -> None:
    """An application of manufacturing holding kva on T1 (and so on F1), due by deadline."""
    store_pipeline(
        conn, manufacturer(number), feeder_id="F1", point_id="T1", reserved_kva=kva, deadline=deadline,
        reserved_at=NOW,
    )  # fmt: skip
