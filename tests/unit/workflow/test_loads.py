"""The loads consumer keeps the latest profile per equipment and day, with the peak of its good points and
where it was, and the latest power-factor curve."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from canonical_model.envelope import CloudEvent
from canonical_model.events import (
    LOAD_MEASUREMENT_RECORDED,
    LOAD_POWER_FACTOR_RECORDED,
    LOAD_PROFILE_RECORDED,
    PROJECTION_UPDATED,
)
from canonical_model.registry import schema_uri
from ground.errors import InvalidRecordError
from pipeline.decoded import DecodedEvent
from store.loads import ProfileFilter, list_profiles, load_measurements, load_profiles, power_factor_curves
from store.schema import outbox
from workflow.loads import handle_load_event


def event(
    kind: str,
    data: dict[str, Any],
    *,
    sequence: int = 1,
    source: str = "/dispatch/load_curve",
    schema: str = "load_profile.v1",
) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=source,
        type=kind,
        subject=data["equipment_id"],
        time=datetime.now(UTC),
        dataschema=schema_uri(schema),
        correlationid="c",
        sequence=sequence,
        data=data,
    )


def profile(equipment: str, day: str, base: float, **changes: Any) -> dict[str, Any]:
    points: list[dict[str, Any]] = [{"load_kw": base + n, "quality": 0} for n in range(96)]
    points[90] = {"load_kw": base * 100, "quality": 128}
    return {
        "equipment_id": equipment,
        "equipment_name": "10kV卧龙1线",
        "data_date": day,
        "source": "dispatch",
        "points": points,
        **changes,
    }


def test_a_profile_is_kept_with_the_peak_of_its_good_points(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        handle_load_event(
            conn, DecodedEvent(event(LOAD_PROFILE_RECORDED, profile("XL1", "2026-11-20", 100.0)))
        )
    with sqlite_engine.connect() as conn:
        [row] = conn.execute(sa.select(load_profiles)).all()
    assert (row.equipment_id, row.data_date, row.phase, row.source) == (
        "XL1",
        date(2026, 11, 20),
        "total",
        "dispatch",
    )
    assert row.peak_kw == 195.0 and row.good_points == 95
    assert row.peak_point == 95, "base + n peaks at the last point; the flagged spike at 90 does not count"
    assert row.equipment_name == "10kV卧龙1线"
    assert row.document["points"][90] == {"quality": 128}, "a value flagged invalid is stored as missing"


def test_an_older_profile_of_the_same_source_does_not_replace_a_newer_one(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        handle_load_event(
            conn, DecodedEvent(event(LOAD_PROFILE_RECORDED, profile("XL1", "2026-11-20", 100.0), sequence=2))
        )
        handle_load_event(
            conn, DecodedEvent(event(LOAD_PROFILE_RECORDED, profile("XL1", "2026-11-20", 500.0), sequence=1))
        )
        handle_load_event(
            conn, DecodedEvent(event(LOAD_PROFILE_RECORDED, profile("XL1", "2026-11-21", 1.0), sequence=3))
        )
    with sqlite_engine.connect() as conn:
        peaks = dict(
            conn.execute(sa.select(load_profiles.c.data_date, load_profiles.c.peak_kw)).tuples().all()
        )
    assert peaks == {date(2026, 11, 20): 195.0, date(2026, 11, 21): 96.0}
    with sqlite_engine.begin() as conn:
        handle_load_event(
            conn, DecodedEvent(event(LOAD_PROFILE_RECORDED, profile("XL1", "2026-11-20", 700.0), sequence=4))
        )
    with sqlite_engine.connect() as conn:
        items, _ = list_profiles(
            conn, ProfileFilter(date_from=date(2026, 11, 20), date_to=date(2026, 11, 20)), limit=5
        )
    assert [item["peak_kw"] for item in items] == [795.0]


def test_metering_and_dispatch_profiles_of_a_day_are_kept_apart(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        handle_load_event(
            conn, DecodedEvent(event(LOAD_PROFILE_RECORDED, profile("PB1", "2026-11-20", 10.0)))
        )
        metering = profile("PB1", "2026-11-20", 20.0, source="metering")
        handle_load_event(
            conn, DecodedEvent(event(LOAD_PROFILE_RECORDED, metering, source="/dispatch/power_curve"))
        )
    with sqlite_engine.connect() as conn:
        sources = conn.execute(sa.select(load_profiles.c.source).order_by(load_profiles.c.source)).scalars()
        assert list(sources) == ["dispatch", "metering"]


def test_measurements_are_kept_per_point_and_time(sqlite_engine: Engine) -> None:
    data = {
        "measurement_id": "XL1-P",
        "equipment_id": "XL1",
        "quantity": "active_power",
        "measured_at": "2026-11-20T20:15:00+08:00",
        "load_kw": 4620.0,
        "source_unit": "MW",
        "quality": 0,
    }
    with sqlite_engine.begin() as conn:
        handle_load_event(conn, DecodedEvent(event(LOAD_MEASUREMENT_RECORDED, data)))
        handle_load_event(
            conn, DecodedEvent(event(LOAD_MEASUREMENT_RECORDED, {**data, "load_kw": 4700.0, "quality": 128}))
        )
    with sqlite_engine.connect() as conn:
        [row] = conn.execute(sa.select(load_measurements)).all()
    assert row.load_kw is None and row.quality == 128 and row.good is False
    assert row.measured_at == datetime(2026, 11, 20, 12, 15, tzinfo=UTC)


def test_an_unknown_event_type_is_an_error(sqlite_engine: Engine) -> None:
    with (
        sqlite_engine.begin() as conn,
        pytest.raises(InvalidRecordError, match=r"cn\.yekuo\.load\.other\.v1"),
    ):
        handle_load_event(
            conn, DecodedEvent(event("cn.yekuo.load.other.v1", profile("XL1", "2026-11-20", 1.0)))
        )


def _notices(engine: Engine) -> list[tuple[str, str | None, str | None]]:
    with engine.connect() as conn:
        bodies = conn.execute(
            sa.select(outbox.c.body).where(outbox.c.event_type == PROJECTION_UPDATED).order_by(outbox.c.id)
        ).scalars()
        events = [CloudEvent.model_validate_json(body) for body in bodies]
    return [(e.subject, e.data.get("data_date"), e.data.get("source_event_id")) for e in events]


def test_each_stored_profile_is_announced_and_an_ignored_one_is_not(sqlite_engine: Engine) -> None:
    newer = event(LOAD_PROFILE_RECORDED, profile("XL1", "2026-11-20", 100.0), sequence=2)
    older = event(LOAD_PROFILE_RECORDED, profile("XL1", "2026-11-20", 500.0), sequence=1)
    with sqlite_engine.begin() as conn:
        handle_load_event(conn, DecodedEvent(newer))
        handle_load_event(conn, DecodedEvent(older))
    assert _notices(sqlite_engine) == [("XL1", "2026-11-20", newer.id)]


def factor_curve(equipment: str, day: str, value: float) -> dict[str, Any]:
    points: list[dict[str, Any]] = [{"power_factor": value} for _ in range(96)]
    points[79] = {"power_factor": 0.5, "quality": 128}
    return {"equipment_id": equipment, "data_date": day, "source": "metering", "points": points}


def test_a_power_factor_curve_is_kept_as_its_good_factors_and_announced(sqlite_engine: Engine) -> None:
    source, schema = "/dispatch/factor_curve", "power_factor_profile.v1"
    newer = event(
        LOAD_POWER_FACTOR_RECORDED,
        factor_curve("PB1", "2026-11-20", 0.9),
        sequence=2,
        source=source,
        schema=schema,
    )
    older = event(
        LOAD_POWER_FACTOR_RECORDED,
        factor_curve("PB1", "2026-11-20", 0.7),
        sequence=1,
        source=source,
        schema=schema,
    )
    with sqlite_engine.begin() as conn:
        handle_load_event(conn, DecodedEvent(newer))
        handle_load_event(conn, DecodedEvent(older))
    with sqlite_engine.connect() as conn:
        [row] = conn.execute(sa.select(power_factor_curves)).all()
    assert (row.equipment_id, row.data_date, row.phase, row.source) == (
        "PB1",
        date(2026, 11, 20),
        "total",
        "metering",
    )
    assert row.factors[0] == 0.9 and row.factors[79] is None and row.good_points == 95
    assert row.event_id == newer.id, "the older curve of the same source did not replace it"
    assert _notices(sqlite_engine) == [("PB1", "2026-11-20", newer.id)]
