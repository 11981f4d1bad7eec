"""Tests of the rules every request body holds to: nested models included, and a sane capacity range."""

from __future__ import annotations

import typing
from collections.abc import Iterator

import pytest
from pydantic import BaseModel, ValidationError

from api.feasibility import PreviewRequest
from api.inputs import RequestModel, SiteLocation
from api.submissions import OnlineApplication
from ground.settings import SubmissionSettings


def _models_in(annotation: object) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        for field in annotation.model_fields.values():
            yield from _models_in(field.annotation)
    for argument in typing.get_args(annotation):
        yield from _models_in(argument)


@pytest.mark.parametrize("body", [OnlineApplication, PreviewRequest])
def test_every_model_inside_a_request_body_holds_to_the_request_rules(body: type[BaseModel]) -> None:
    # The text check runs per model: a nested canonical model would let control characters through.
    models = set(_models_in(body))
    assert len(models) > 1
    assert all(issubclass(model, RequestModel) for model in models), models


def test_a_site_location_takes_finite_numbers_in_range_only() -> None:
    assert SiteLocation.model_validate({"lon": 112.5, "lat": 33}).lat == 33.0
    for lon in (float("nan"), float("inf"), "112.5", True, 180.5):
        with pytest.raises(ValidationError) as refused:
            SiteLocation.model_validate({"lon": lon, "lat": 33})
        assert [error["loc"] for error in refused.value.errors()] == [("lon",)]


def test_a_capacity_range_upside_down_is_a_settings_error() -> None:
    with pytest.raises(ValidationError, match="min_capacity_kva 500 is above max_capacity_kva 50"):
        SubmissionSettings(min_capacity_kva=500, max_capacity_kva=50)
    for bad in (float("inf"), float("nan"), 0):
        with pytest.raises(ValidationError):
            SubmissionSettings(max_capacity_kva=bad)
    assert SubmissionSettings(min_capacity_kva=50, max_capacity_kva=50).max_capacity_kva == 50
