"""Stage analytics: durations in working days per stage, class and unit, and rework counts."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from ground.clock import frozen_at
from pipeline.decoded import DecodedEvent
from workflow.analytics import VisitFilter, percentile, stage_analytics
from workflow.cases import CaseTracker

from .events import application_event


@pytest.mark.parametrize("size", [1, 2, 5, 10, 37])
def test_percentiles_interpolate_like_the_inclusive_method(size: int) -> None:
    values = sorted(random.Random(size).uniform(0, 30) for _ in range(size))
    assert percentile(values, 0.5) == pytest.approx(statistics.median(values))
    if size >= 2:
        assert percentile(values, 0.9) == pytest.approx(
            statistics.quantiles(values, n=10, method="inclusive")[8]
        )
    assert percentile([], 0.5) is None


def _feed(
    engine: Engine,
    tracker: CaseTracker,
    number: str,
    org_no: str,
    steps: list[tuple[str, str]],
    **application: Any,
) -> None:
    with engine.begin() as conn:
        for sequence, (stage, at) in enumerate(steps, start=1):
            event = application_event(
                number, sequence, stage=stage, updated_at=at, org_no=org_no, **application
            )
            tracker(conn, DecodedEvent(event))


def test_figures_per_stage_class_and_unit_with_rework(sqlite_engine: Engine, tracker: CaseTracker) -> None:
    # Submitted Friday 20 November 09:13:05; durations count working-day hours only.
    _feed(
        sqlite_engine,
        tracker,
        "A1",
        "41401",
        [
            ("acceptance", "2026-11-20T09:13:05+08:00"),
            ("scheme_reply", "2026-11-23T09:13:05+08:00"),  # acceptance: 1 working day (the weekend is free)
            ("external_works", "2026-11-26T09:13:05+08:00"),  # scheme reply: 3
        ],
    )
    _feed(
        sqlite_engine,
        tracker,
        "A2",
        "41402",
        [
            ("acceptance", "2026-11-20T09:13:05+08:00"),
            ("scheme_reply", "2026-11-24T09:13:05+08:00"),  # acceptance: 2
            ("acceptance", "2026-11-25T09:13:05+08:00"),  # scheme reply: 1, then a rework
            ("scheme_reply", "2026-11-25T21:13:05+08:00"),  # acceptance again: 0.5
        ],
    )
    with sqlite_engine.connect() as conn:
        analytics = stage_analytics(conn, stage_order=tuple(tracker.config.stages))
    by_stage = {item.stage: item for item in analytics.by_stage}
    assert list(by_stage) == ["acceptance", "scheme_reply", "external_works"]
    acceptance = by_stage["acceptance"]
    assert acceptance.completed == 3
    assert acceptance.mean_days == pytest.approx((1 + 2 + 0.5) / 3)
    assert acceptance.p50_days == pytest.approx(1.0)
    assert acceptance.p90_days == pytest.approx(1.8)
    assert acceptance.over_limit == 0  # due 24 November, left on the 23rd and 24th
    scheme = by_stage["scheme_reply"]
    assert (scheme.completed, scheme.rework, scheme.in_progress) == (2, 1, 1)
    assert scheme.mean_days == pytest.approx(2.0)
    assert by_stage["external_works"].in_progress == 1 and by_stage["external_works"].mean_days is None
    units = {(item.stage, item.unit): item.completed for item in analytics.by_unit}
    assert units[("acceptance", "41401")] == 1 and units[("acceptance", "41402")] == 2
    assert {item.customer_class for item in analytics.by_class} == {"hv_single_source"}
    assert (analytics.rework_total, analytics.cases_with_rework) == (1, 1)

    with sqlite_engine.connect() as conn:
        only_a1 = stage_analytics(conn, where=VisitFilter(unit="41401"))
    assert {item.stage: item.completed for item in only_a1.by_stage} == {
        "acceptance": 1,
        "scheme_reply": 1,
        "external_works": 0,
    }


def test_spread_and_bottlenecks_count_working_days_past_deadlines(
    sqlite_engine: Engine, tracker: CaseTracker
) -> None:
    # Residential 2-step flow: acceptance 2 working days, energisation 3; March 2026 has no holiday.
    with frozen_at(datetime(2026, 6, 1, tzinfo=UTC)):
        # B1: acceptance Mon 2 March 09:00, due Wed 4, left Fri 6 12:00: 1.5 working days past (5 and half
        # of 6). Energisation from then, due Wed 11, left Thu 12 06:00: 0.25 past.
        _feed(
            sqlite_engine,
            tracker,
            "B1",
            "41401",
            [
                ("acceptance", "2026-03-02T09:00:00+08:00"),
                ("energisation", "2026-03-06T12:00:00+08:00"),
                ("archived", "2026-03-12T06:00:00+08:00"),
            ],
            customer_class="lv_residential",
            submitted_at="2026-03-02T09:00:00+08:00",
        )
        # B2: acceptance left Wed 4 March 18:00, in time although it lasted 2.375 working days.
        # Energisation due Mon 9, left Tue 10 12:00: 0.5 past.
        _feed(
            sqlite_engine,
            tracker,
            "B2",
            "41402",
            [
                ("acceptance", "2026-03-02T09:00:00+08:00"),
                ("energisation", "2026-03-04T18:00:00+08:00"),
                ("archived", "2026-03-10T12:00:00+08:00"),
            ],
            customer_class="lv_residential",
            submitted_at="2026-03-02T09:00:00+08:00",
        )
        with sqlite_engine.connect() as conn:
            analytics = stage_analytics(conn, stage_order=tuple(tracker.config.stages))
    acceptance = next(item for item in analytics.by_stage if item.stage == "acceptance")
    durations = [15 / 24 + 3 + 12 / 24, 15 / 24 + 1 + 18 / 24]
    assert acceptance.min_days == pytest.approx(min(durations))
    assert acceptance.max_days == pytest.approx(max(durations))
    assert acceptance.p10_days == pytest.approx(min(durations) + 0.1 * (max(durations) - min(durations)))
    assert acceptance.stdev_days == pytest.approx(statistics.pstdev(durations))
    stages = [
        (item.stage, round(item.excess_days, 6), item.over_limit, item.completed)
        for item in analytics.bottleneck_stages
    ]
    assert stages == [("acceptance", 1.5, 1, 2), ("energisation", 0.75, 2, 2)]
    units = [
        (item.unit, round(item.excess_days, 6), item.over_limit, item.completed)
        for item in analytics.bottleneck_units
    ]
    assert units == [("41401", 1.75, 2, 2), ("41402", 0.5, 1, 2)]
    assert analytics.as_dict()["bottlenecks"]["units"][0] == {
        "stage": None,
        "unit": "41401",
        "excess_days": 1.75,
        "over_limit": 2,
        "completed": 2,
    }


def test_no_visits_give_empty_spreads_and_rankings(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as conn:
        analytics = stage_analytics(conn)
    assert analytics.by_stage == () and analytics.bottleneck_stages == () and analytics.bottleneck_units == ()
