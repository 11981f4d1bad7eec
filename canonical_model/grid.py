"""Grid equipment (电网设备) from the production management system: substations, feeders, transformers.

Identifiers are the PMS equipment ids (OBJ_ID). Capacities are in kVA whatever unit the source uses, voltages
in kV, allowed currents in A. A deletion is its own document: it names the equipment and the last version
of it the hub saw, so a consumer can tell a deletion from an older change that arrives late.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import AwareDatetime, Field

from canonical_model.common import CanonicalModel, GeoPoint, SourceRef

KIND_PATTERN = r"^[a-z][a-z0-9_]*$"


class EquipmentStatus(StrEnum):
    """Operating status of a piece of equipment (运行状态)."""

    PLANNED = "planned"
    IN_SERVICE = "in_service"
    OUT_OF_SERVICE = "out_of_service"
    DECOMMISSIONED = "decommissioned"


class TransformerOwnership(StrEnum):
    """Whether a distribution transformer serves the public or one customer (使用性质: 公用 / 专用)."""

    PUBLIC = "public"
    DEDICATED = "dedicated"


class SupplyAreaClass(StrEnum):
    """Supply-area class (供电区域类别, 配电网规划设计技术导则 DL/T 5729) by load density."""

    A_PLUS = "A+"
    A = "A"
    B = "B"
    C = "C"
    D = "D"
    E = "E"


# The classes as a pattern rather than an enum: client generators name enum members after their values,
# and "A+" and "A" would both become A.
AREA_CLASS_PATTERN = r"^(A\+|[A-E])$"


class _Equipment(CanonicalModel):
    """Fields every piece of grid equipment has."""

    name: str = Field(min_length=1, description="equipment name (设备名称)")
    status: EquipmentStatus = Field(description="operating status (运行状态)")
    voltage_kv: float | None = Field(default=None, gt=0, description="rated voltage, kV (电压等级)")
    location: GeoPoint | None = Field(default=None, description="position from the GIS (地理坐标)")
    commissioned_on: date | None = Field(default=None, description="commissioning date (投运日期)")
    updated_at: AwareDatetime | None = Field(
        default=None, description="when the source last changed the record (更新时间)"
    )
    source_refs: tuple[SourceRef, ...] = Field(default=(), description="legacy records this came from")


class Substation(_Equipment):
    """A substation (变电站)."""

    substation_id: str = Field(min_length=1, description="PMS equipment id of the substation (电站ID)")
    owner_unit: str | None = Field(default=None, description="operating and maintenance unit (运维单位)")
    supply_area_class: str | None = Field(
        default=None, pattern=AREA_CLASS_PATTERN, description="supply-area class A+ ... E (供电区域)"
    )
    spare_bays: int | None = Field(
        default=None, ge=0, description="spare 10 kV outgoing bays, for dedicated lines (10kV备用间隔数)"
    )


class MainTransformer(_Equipment):
    """A main transformer of a substation (主变压器); N-1 checks count them per substation."""

    transformer_id: str = Field(min_length=1, description="PMS equipment id (设备ID)")
    substation_id: str = Field(min_length=1, description="substation it stands in (所属电站)")
    rated_capacity_kva: float = Field(gt=0, description="rated capacity, kVA (额定容量)")


class Feeder(_Equipment):
    """A medium-voltage feeder (馈线, 10 kV line) leaving a substation."""

    feeder_id: str = Field(min_length=1, description="PMS equipment id of the line (线路ID)")
    substation_id: str | None = Field(default=None, description="source substation (起始电站)")
    allowed_current_a: float | None = Field(default=None, gt=0, description="allowed current, A (允许电流)")
    tie_switch_count: int | None = Field(
        default=None, ge=0, description="tie switches to other feeders, for N-1 (联络开关数)"
    )
    supply_area_class: str | None = Field(
        default=None, pattern=AREA_CLASS_PATTERN, description="supply-area class A+ ... E (供电区域)"
    )
    bus_section: str | None = Field(
        default=None,
        min_length=1,
        description="the substation bus section its breaker is on, e.g. I or II (所属母线段)",
    )


class DistributionTransformer(_Equipment):
    """A distribution transformer (配电变压器) on a feeder; its transformer district is the marketing link."""

    transformer_id: str = Field(min_length=1, description="PMS equipment id (设备ID)")
    feeder_id: str | None = Field(default=None, description="feeder it hangs on (所属馈线)")
    substation_id: str | None = Field(default=None, description="substation of that feeder (所属电站)")
    rated_capacity_kva: float = Field(gt=0, description="rated capacity, kVA (额定容量)")
    model: str | None = Field(default=None, description="type designation, e.g. S13-M-400/10 (型号)")
    ownership: TransformerOwnership | None = Field(default=None, description="public or dedicated (使用性质)")
    route_length_m: float | None = Field(
        default=None,
        ge=0,
        description="length along the 10 kV line from the source substation, metres, where the GIS has "
        "the route (供电路径长度)",
    )
    transformer_district_id: str | None = Field(
        default=None,
        description="marketing transformer district TG_ID (台区); the 营配贯通 link, whose reverse is "
        "the marketing system's G_TRAN.PMS_EQUIP_ID",
    )


class GridEquipment(_Equipment):
    """Any other kind of grid equipment (poles, switches, ...) tracked without a model of its own."""

    equipment_id: str = Field(min_length=1, description="PMS equipment id (设备ID)")
    kind: str = Field(pattern=KIND_PATTERN, description="equipment kind, e.g. switch or pole (设备类型)")
    feeder_id: str | None = Field(default=None, description="feeder it belongs to (所属馈线)")
    substation_id: str | None = Field(default=None, description="substation it belongs to (所属电站)")


class EquipmentDeletion(CanonicalModel):
    """Equipment that no longer exists in the source (deleted there, found by reconciliation)."""

    equipment_id: str = Field(min_length=1, description="PMS equipment id (设备ID)")
    kind: str = Field(pattern=KIND_PATTERN, description="equipment kind, e.g. transformer (设备类型)")
    last_changed_at: AwareDatetime | None = Field(
        default=None, description="source change time of the last version the hub saw before the deletion"
    )
    detected_at: AwareDatetime = Field(description="when the hub found the equipment gone")
    source_refs: tuple[SourceRef, ...] = Field(default=(), description="legacy records this came from")
