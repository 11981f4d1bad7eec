"""LoadProfile, PowerFactorProfile and Measurement: 96 points, quality codes kept, flagged or missing values
never good."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from canonical_model.load import LoadPoint, LoadProfile, Measurement, PowerFactorPoint, PowerFactorProfile


def profile(points: list[dict[str, object]]) -> LoadProfile:
    return LoadProfile.model_validate(
        {"equipment_id": "XL000001", "data_date": "2026-11-20", "source": "dispatch", "points": points}
    )


def test_the_peak_counts_good_points_only() -> None:
    points: list[dict[str, object]] = [{"load_kw": 100.0 + n, "quality": 0} for n in range(96)]
    points[50] = {"load_kw": 9000.0, "quality": 128}
    points[51] = {"load_kw": 8000.0, "quality": 32}
    points[52] = {"quality": 128}
    loads = profile(points)
    assert loads.peak_kw == 195.0
    assert loads.good_points == 93
    assert loads.points[50].quality == 128 and loads.points[50].load_kw is None
    assert loads.points[51].quality == 32 and loads.points[51].load_kw == 8000.0
    assert loads.data_date == date(2026, 11, 20) and loads.phase == "total"


def test_points_without_codes_count_as_good_when_they_have_a_value() -> None:
    points: list[dict[str, object]] = [{"load_kw": 10.0} for _ in range(96)]
    points[0] = {}
    loads = profile(points)
    assert loads.good_points == 95 and loads.peak_kw == 10.0
    assert LoadPoint().good is False


def test_a_profile_with_no_good_point_has_no_peak() -> None:
    assert profile([{"load_kw": 5.0, "quality": 64}] * 96).peak_kw is None


@pytest.mark.parametrize("count", [95, 97])
def test_a_profile_has_exactly_96_points(count: int) -> None:
    with pytest.raises(ValidationError, match="points"):
        profile([{"load_kw": 1.0}] * count)


def test_negative_quality_codes_are_refused() -> None:
    with pytest.raises(ValidationError, match="quality"):
        LoadPoint(load_kw=1.0, quality=-1)


def test_a_measurement_is_good_only_unflagged_with_a_value() -> None:
    base = {
        "measurement_id": "XL000001-P",
        "equipment_id": "XL000001",
        "quantity": "active_power",
        "measured_at": "2026-11-20T20:15:00+08:00",
        "source_unit": "MW",
    }
    assert Measurement.model_validate({**base, "load_kw": 4620.0, "quality": 0}).good
    assert not Measurement.model_validate({**base, "load_kw": 4620.0, "quality": 128}).good
    assert not Measurement.model_validate({**base, "quality": 0}).good
    with pytest.raises(ValidationError, match="measured_at"):
        Measurement.model_validate({**base, "measured_at": "2026-11-20T20:15:00"})


@pytest.mark.parametrize(
    ("quality", "kept"), [(128, None), (0x80 | 0x40, None), (64, 0.0), (32, 0.0), (0, 0.0)]
)
def test_a_value_flagged_invalid_is_kept_as_missing_with_its_code(quality: int, kept: float | None) -> None:
    point = LoadPoint.model_validate({"load_kw": 0.0, "quality": quality})
    assert point.load_kw == kept and point.quality == quality
    assert point.model_dump(exclude_none=True) == {
        "quality": quality,
        **({} if kept is None else {"load_kw": kept}),
    }
    measurement = Measurement.model_validate(
        {
            "measurement_id": "XL000001-P",
            "equipment_id": "XL000001",
            "quantity": "active_power",
            "measured_at": "2026-11-20T20:15:00+08:00",
            "source_unit": "MW",
            "load_kw": 0.0,
            "quality": quality,
        }
    )
    assert measurement.load_kw == kept and measurement.quality == quality


def test_the_peak_point_is_the_index_of_the_highest_good_point_the_first_of_equal_ones() -> None:
    points: list[dict[str, object]] = [{"load_kw": 100.0, "quality": 0} for _ in range(96)]
    points[10] = {"load_kw": 900.0, "quality": 32}  # substituted: not good, not the peak
    points[30] = {"load_kw": 400.0, "quality": 0}
    points[79] = {"load_kw": 400.0, "quality": 0}
    loads = profile(points)
    assert (loads.peak_point, loads.peak_kw) == (30, 400.0)
    assert profile([{"quality": 128}] * 96).peak_point is None


def factors(points: list[dict[str, object]]) -> PowerFactorProfile:
    return PowerFactorProfile.model_validate(
        {"equipment_id": "PB0000001", "data_date": "2026-11-20", "source": "metering", "points": points}
    )


def test_power_factors_keep_the_good_values_and_drop_flagged_or_missing_ones() -> None:
    points: list[dict[str, object]] = [{"power_factor": 0.95, "quality": 0} for _ in range(96)]
    points[3] = {"power_factor": 0.88, "quality": 64}
    points[4] = {"quality": 0}
    curve = factors(points)
    assert curve.good_points == 94 and curve.phase == "total"
    assert curve.good_factors[:6] == (0.95, 0.95, 0.95, None, None, 0.95)
    assert curve.points[3].power_factor == 0.88, "a stale value keeps its number, it is just not good"


@pytest.mark.parametrize("value", [0.0, -0.9, 1.01, 95.0])
def test_a_power_factor_outside_zero_to_one_is_refused(value: float) -> None:
    with pytest.raises(ValidationError, match="power_factor"):
        PowerFactorPoint(power_factor=value, quality=0)
    assert PowerFactorPoint(power_factor=1.0).good


@pytest.mark.parametrize("value", [0.0, 9.99])
def test_a_factor_flagged_invalid_is_missing_whatever_its_value(value: float) -> None:
    point = PowerFactorPoint.model_validate({"power_factor": value, "quality": 0x80})
    assert point.power_factor is None and not point.good


@pytest.mark.parametrize("count", [95, 97])
def test_a_power_factor_curve_has_exactly_96_points(count: int) -> None:
    with pytest.raises(ValidationError, match="points"):
        factors([{"power_factor": 0.9}] * count)
