"""The marketing simulator's multi-year history: volume growth and EV-charging adoption."""

from __future__ import annotations

from collections import Counter

from simulators.marketing import history


def test_volume_and_ev_share_follow_the_documented_parameters() -> None:
    customers, applications = history.generate_history(3, 500, 2021, 3, per_year=400)
    assert len(customers) == 500
    # 400, 400 x 1.05 = 420, 400 x 1.05^2 = 441 applications by acceptance time.
    assert Counter(row["HANDLE_TIME"][:4] for row in applications) == {"2021": 400, "2022": 420, "2023": 441}
    eligible = Counter(
        row["HANDLE_TIME"][:4]
        for row in applications
        if row["CUST_CLASS_CODE"] == "01" and row["BUSI_TYPE_CODE"] in ("101", "111")
    )
    ev = Counter(row["HANDLE_TIME"][:4] for row in applications if row["LOAD_TYPE"] == "01")
    # Charging piles only among residential new connections and increases, their share 5% x 1.6^k: about
    # 0.05, 0.08 and 0.128 of some 290 eligible ones a year, so within 0.04 (two and a half sd) of it.
    assert all(row["CUST_CLASS_CODE"] == "01" for row in applications if row["LOAD_TYPE"] == "01")
    for k, year in enumerate(("2021", "2022", "2023")):
        assert abs(ev[year] / eligible[year] - history.ev_share(k)) < 0.04
    assert history.ev_share(10) == 1.0


def test_the_same_seed_gives_the_same_history() -> None:
    assert history.generate_history(7, 50, 2022, 1, per_year=30) == history.generate_history(
        7, 50, 2022, 1, per_year=30
    )
    assert history.generate_history(7, 50, 2022, 1, per_year=30) != history.generate_history(
        8, 50, 2022, 1, per_year=30
    )


def test_the_history_world_holds_the_complete_years_before_this_one() -> None:
    world = history.history_world(5, 100, 2, 50, this_year=2026)
    years = Counter(row["HANDLE_TIME"][:4] for row in world.all_applications())
    # 50 in 2024 and 50 x 1.05 = 52.5, rounded to 52, in 2025.
    assert years == {"2024": 50, "2025": 52}
