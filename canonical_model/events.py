"""The event catalogue: every event type the hub publishes, with the model of its data and what it means.

An event type's payload is the canonical model its data satisfies (registered with its JSON Schema in
canonical_model/registry.py): consumers decode an event's data into it, and the route table refuses a route
whose mapping produces another model. Where events of legacy records go is the route table's business; the
hub's own events carry their channels here, the routing-key templates their producers fill and the AsyncAPI
document shows.

A family type holds `<kind>` for one word: grid equipment of a kind without a model of its own (a switch, a
pole) is onboarded with a mapping and a route alone, so its types cannot be listed one by one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel

from canonical_model.application import ConnectionApplication
from canonical_model.case import CaseAlert, StageReport, StageTransition, SurveyAssignment
from canonical_model.consistency import ConsistencyFinding
from canonical_model.customer import Customer
from canonical_model.feasibility import FeasibilityAssessment
from canonical_model.grid import (
    DistributionTransformer,
    EquipmentDeletion,
    Feeder,
    GridEquipment,
    MainTransformer,
    Substation,
)
from canonical_model.load import LoadProfile, Measurement, PowerFactorProfile
from canonical_model.planning import CapacityForecastAlert
from canonical_model.projection import Projection, ProjectionUpdate
from canonical_model.registry import schema_name_of, schema_uri

KIND = "<kind>"
_KIND_WORD = re.compile(r"[a-z_]+")

APPLICATION_CHANGED = "cn.yekuo.application.changed.v1"
CUSTOMER_CHANGED = "cn.yekuo.customer.changed.v1"
STAGE_REPORTED = "cn.yekuo.application.stage_reported.v1"
FEASIBILITY_ASSESSED = "cn.yekuo.application.feasibility_assessed.v1"

GRID_SUBSTATION_CHANGED = "cn.yekuo.grid.substation.changed.v1"
GRID_SUBSTATION_DELETED = "cn.yekuo.grid.substation.deleted.v1"
GRID_MAIN_TRANSFORMER_CHANGED = "cn.yekuo.grid.main_transformer.changed.v1"
GRID_MAIN_TRANSFORMER_DELETED = "cn.yekuo.grid.main_transformer.deleted.v1"
GRID_FEEDER_CHANGED = "cn.yekuo.grid.feeder.changed.v1"
GRID_FEEDER_DELETED = "cn.yekuo.grid.feeder.deleted.v1"
GRID_TRANSFORMER_CHANGED = "cn.yekuo.grid.transformer.changed.v1"
GRID_TRANSFORMER_DELETED = "cn.yekuo.grid.transformer.deleted.v1"
GRID_EQUIPMENT_CHANGED = f"cn.yekuo.grid.{KIND}.changed.v1"
GRID_EQUIPMENT_DELETED = f"cn.yekuo.grid.{KIND}.deleted.v1"
CAPACITY_FORECAST_EXCEEDED = "cn.yekuo.grid.capacity_forecast_exceeded.v1"

LOAD_PROFILE_RECORDED = "cn.yekuo.load.profile.recorded.v1"
LOAD_POWER_FACTOR_RECORDED = "cn.yekuo.load.power_factor.recorded.v1"
LOAD_MEASUREMENT_RECORDED = "cn.yekuo.load.measurement.recorded.v1"

CASE_STAGE_CHANGED = "cn.yekuo.case.stage_changed.v1"
CASE_ASSIGNED = "cn.yekuo.case.assigned.v1"
CASE_AT_RISK = "cn.yekuo.case.at_risk.v1"
CASE_OVERDUE = "cn.yekuo.case.overdue.v1"
CASE_FINDING_RAISED = "cn.yekuo.case.consistency_finding.v1"
CASE_FINDING_CLEARED = "cn.yekuo.case.consistency_cleared.v1"
# The case events, which the case feed keeps and the dashboards follow live.
CASE_EVENTS = (
    CASE_STAGE_CHANGED,
    CASE_ASSIGNED,
    CASE_AT_RISK,
    CASE_OVERDUE,
    CASE_FINDING_RAISED,
    CASE_FINDING_CLEARED,
)

PROJECTION_UPDATED = "cn.yekuo.projection.updated.v1"


@dataclass(frozen=True)
class Channel:
    """A routing-key template the hub publishes one of its own events under, and who publishes there.

    Each {placeholder} is filled from the field of that name of key_model: the event's own payload model,
    or the model the producer takes the value from (a case event's class is its application's).
    """

    routing_key: str
    producer: str
    key_model: type[BaseModel]

    @property
    def prefix(self) -> str:
        """The literal words before the first placeholder, e.g. case.stage_changed."""
        return self.routing_key.split("{", 1)[0].rstrip(".")

    def key(self, **values: str) -> str:
        """The routing key with every placeholder filled; KeyError names a placeholder without a value."""
        return self.routing_key.format_map(values)


@dataclass(frozen=True)
class EventType:
    """An event type the hub publishes: its CloudEvents type, its payload model and a one-line description.

    channels: where the hub publishes it itself; empty for the events of legacy records, which go where
    their routes say.
    """

    event_type: str
    payload: type[BaseModel]
    description: str
    channels: tuple[Channel, ...] = ()

    @property
    def dataschema(self) -> str:
        """The URI of the payload's JSON Schema, an event's dataschema."""
        return schema_uri(schema_name_of(self.payload))

    @property
    def family(self) -> bool:
        """Whether the type stands for one type per equipment kind."""
        return KIND in self.event_type

    def matches(self, event_type: str) -> bool:
        """Whether event_type is this type, or one of this family's."""
        if not self.family:
            return event_type == self.event_type
        head, tail = self.event_type.split(KIND)
        if not (event_type.startswith(head) and event_type.endswith(tail)):
            return False
        return _KIND_WORD.fullmatch(event_type[len(head) : len(event_type) - len(tail)]) is not None


def _case_event(event_type: str, payload: type[BaseModel], description: str, producer: str) -> EventType:
    word = event_type.split(".")[3]
    channel = Channel(f"case.{word}.{{customer_class}}", producer, ConnectionApplication)
    return EventType(event_type, payload, description, (channel,))


# The channel of each projection's notices: grid changes by equipment kind, load changes all in one.
PROJECTION_CHANNELS = {
    Projection.GRID: Channel("projection.grid.{equipment_kind}", "grid consumer", ProjectionUpdate),
    Projection.LOADS: Channel("projection.loads", "loads consumer", ProjectionUpdate),
}

CATALOGUE: tuple[EventType, ...] = (
    EventType(
        APPLICATION_CHANGED,
        ConnectionApplication,
        "an application was created or changed in the marketing system",
    ),
    EventType(CUSTOMER_CHANGED, Customer, "a customer was created or changed in the marketing system"),
    EventType(
        STAGE_REPORTED,
        StageReport,
        "a legacy system other than marketing (PMS, dispatch) reported an application's stage change",
    ),
    EventType(GRID_SUBSTATION_CHANGED, Substation, "a substation (变电站) was created or changed"),
    EventType(GRID_SUBSTATION_DELETED, EquipmentDeletion, "a substation (变电站) disappeared from PMS"),
    EventType(
        GRID_MAIN_TRANSFORMER_CHANGED, MainTransformer, "a main transformer (主变) was created or changed"
    ),
    EventType(
        GRID_MAIN_TRANSFORMER_DELETED, EquipmentDeletion, "a main transformer (主变) disappeared from PMS"
    ),
    EventType(GRID_FEEDER_CHANGED, Feeder, "a feeder (馈线) was created or changed"),
    EventType(GRID_FEEDER_DELETED, EquipmentDeletion, "a feeder (馈线) disappeared from PMS"),
    EventType(
        GRID_TRANSFORMER_CHANGED,
        DistributionTransformer,
        "a distribution transformer (配变) was created or changed",
    ),
    EventType(
        GRID_TRANSFORMER_DELETED, EquipmentDeletion, "a distribution transformer (配变) disappeared from PMS"
    ),
    EventType(
        GRID_EQUIPMENT_CHANGED,
        GridEquipment,
        "grid equipment of a further kind (a switch, a pole, ...) was created or changed",
    ),
    EventType(GRID_EQUIPMENT_DELETED, EquipmentDeletion, "grid equipment of a further kind disappeared"),
    EventType(
        LOAD_PROFILE_RECORDED,
        LoadProfile,
        "a daily or 96-point load curve of an equipment (日负荷曲线) was recorded",
    ),
    EventType(
        LOAD_POWER_FACTOR_RECORDED,
        PowerFactorProfile,
        "a 96-point power-factor curve (96点功率因数曲线) was recorded",
    ),
    EventType(
        LOAD_MEASUREMENT_RECORDED, Measurement, "a telemetry value (遥测) of an equipment's load was recorded"
    ),
    _case_event(CASE_STAGE_CHANGED, StageTransition, "a case moved to another stage", "workflow"),
    _case_event(CASE_ASSIGNED, SurveyAssignment, "a site survey was assigned", "workflow monitor"),
    _case_event(
        CASE_AT_RISK,
        CaseAlert,
        "a stage or the whole case (scope) is close to its time limit",
        "workflow monitor",
    ),
    _case_event(
        CASE_OVERDUE,
        CaseAlert,
        "a stage or the whole case (scope) is past its time limit",
        "workflow monitor",
    ),
    _case_event(
        CASE_FINDING_RAISED,
        ConsistencyFinding,
        "a consistency rule found records of the case disagreeing (raised, or raised again)",
        "workflow",
    ),
    _case_event(
        CASE_FINDING_CLEARED,
        ConsistencyFinding,
        "a later record no longer disagrees: the finding is cleared",
        "workflow",
    ),
    EventType(
        FEASIBILITY_ASSESSED,
        FeasibilityAssessment,
        "the supply feasibility of an application was assessed",
        (Channel("feasibility.assessed.{verdict}", "feasibility", FeasibilityAssessment),),
    ),
    # Under grid.# like other news about grid equipment: the event feed and the grid page read it there; it
    # changes no equipment, so the grid projection leaves it.
    EventType(
        CAPACITY_FORECAST_EXCEEDED,
        CapacityForecastAlert,
        "an equipment's forecast peak first crosses its load-rate (or N-1) limit in a month; raised again "
        "only when that month or the limit changes",
        (
            Channel(
                "grid.capacity_forecast_exceeded.{equipment_kind}", "forecast refresh", CapacityForecastAlert
            ),
        ),
    ),
    EventType(
        PROJECTION_UPDATED,
        ProjectionUpdate,
        "the grid or loads projection stored a change (read by the feasibility checks)",
        tuple(PROJECTION_CHANNELS.values()),
    ),
)

_EXACT = {entry.event_type: entry for entry in CATALOGUE if not entry.family}
_FAMILIES = tuple(entry for entry in CATALOGUE if entry.family)


def lookup(event_type: str) -> EventType | None:
    """The catalogue's entry for an event type (a listed type before a family's); None for a type it lacks."""
    entry = _EXACT.get(event_type)
    if entry is not None:
        return entry
    return next((family for family in _FAMILIES if family.matches(event_type)), None)


def listed(event_type: str) -> EventType:
    """The entry of a type the catalogue lists by name; KeyError for any other."""
    return _EXACT[event_type]


def channel_of(event_type: str) -> Channel:
    """The one channel of an event the hub publishes itself."""
    entry = listed(event_type)
    if len(entry.channels) != 1:
        raise KeyError(f"{event_type} is published on {len(entry.channels)} channels, not one")
    return entry.channels[0]
