"""The hub's notice that one of its read projections took in a change."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import Field

from canonical_model.common import CanonicalModel, GeoPoint


class Projection(StrEnum):
    """The read projections whose changes other consumers act on."""

    GRID = "grid"
    LOADS = "loads"


class ProjectionUpdate(CanonicalModel):
    """A change to grid equipment or load data, published once the projection stores it.

    Consumers of the same source event run in no fixed order. A consumer that reads the projection (the
    feasibility checks) acts on this notice instead, so what it reads already holds the change.
    """

    projection: Projection = Field(description="which projection changed")
    equipment_id: str = Field(min_length=1, description="PMS id of the equipment concerned (设备编号)")
    equipment_kind: str | None = Field(default=None, description="grid kind (transformer, feeder, ...)")
    deleted: bool = Field(default=False, description="the equipment was deleted at the source")
    location: GeoPoint | None = Field(default=None, description="where the equipment is, if known")
    data_date: date | None = Field(default=None, description="day of the load profile, for load changes")
    source_event_id: str = Field(min_length=1, description="the event the projection applied")
    source_event_type: str = Field(min_length=1, description="its type")
