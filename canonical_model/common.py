"""Building blocks shared by the canonical models."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict


class CanonicalModel(BaseModel):
    """Base of every canonical model: unknown fields are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class GeoPoint(CanonicalModel):
    """A WGS84 position (经纬度)."""

    lon: float = Field(ge=-180, le=180, description="longitude, WGS84 (经度)")
    lat: float = Field(ge=-90, le=90, description="latitude, WGS84 (纬度)")


class SourceRef(CanonicalModel):
    """Where a canonical record came from in a legacy system."""

    system: str = Field(min_length=1, description="legacy system, e.g. marketing, pms, dispatch")
    record_type: str = Field(min_length=1, description="record kind in that system")
    key: str = Field(min_length=1, description="natural key in that system")


class UrbanRural(StrEnum):
    """Urban or rural supply area (城乡类别); sets the low-voltage ceiling."""

    URBAN = "urban"
    RURAL = "rural"


def pii(description: str) -> JsonDict:
    """Field schema extras marking personal data, which the API masks and the store encrypts."""
    return {"x-pii": True, "description": description}
