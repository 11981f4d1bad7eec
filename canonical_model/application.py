"""ConnectionApplication (业扩申请): a request for new supply or more capacity."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import AwareDatetime, Field

from canonical_model.common import CanonicalModel, GeoPoint, SourceRef, UrbanRural


class BusinessType(StrEnum):
    """Kind of application (业务类型), the business types of 供电营业规则."""

    NEW_CONNECTION = "new_connection"  # 新装
    CAPACITY_INCREASE = "capacity_increase"  # 增容
    CAPACITY_REDUCTION = "capacity_reduction"  # 减容
    SUSPENSION = "suspension"  # 暂停
    TEMPORARY_SUPPLY = "temporary_supply"  # 临时用电
    RELOCATION = "relocation"  # 迁址
    VOLTAGE_CHANGE = "voltage_change"  # 改压
    METER_RELOCATION = "meter_relocation"  # 移表
    NAME_CHANGE = "name_change"  # 更名
    OWNERSHIP_TRANSFER = "ownership_transfer"  # 过户
    TARIFF_CHANGE = "tariff_change"  # 改类


class LoadType(StrEnum):
    """What the requested capacity feeds, where its demand factor and daily profile differ (负荷类型)."""

    GENERAL = "general"  # no distinct type: the industry's or the residential demand factor applies
    EV_CHARGING = "ev_charging"  # 充电桩, a customer's own charging pile
    HEAT_PUMP = "heat_pump"  # 热泵, space heating (煤改电)


class CustomerClass(StrEnum):
    """Customer class that selects the process and its time limits (客户分类)."""

    LV_RESIDENTIAL = "lv_residential"
    LV_NON_RESIDENTIAL = "lv_non_residential"
    HV_SINGLE_SOURCE = "hv_single_source"
    HV_DUAL_SOURCE = "hv_dual_source"


class ImportanceGrade(StrEnum):
    """Important power user grade per GB/T 29328 (重要用户等级); 'none' for ordinary customers."""

    NONE = "none"
    SPECIAL = "special"
    FIRST = "first"
    SECOND = "second"
    TEMPORARY = "temporary"


class SubmissionChannel(StrEnum):
    """Where the application was submitted (受理渠道)."""

    SERVICE_HALL = "service_hall"
    ONLINE = "online"
    MOBILE_APP = "mobile_app"
    HOTLINE = "hotline"
    ACCOUNT_MANAGER = "account_manager"


class ReworkCause(StrEnum):
    """Why the source sent an application back to an earlier stage (退回原因)."""

    INFORMATION_ERROR = "information_error"
    DOCUMENTS_MISSING = "documents_missing"
    DESIGN_CHANGE = "design_change"
    GRID_CONSTRAINT = "grid_constraint"


class Document(CanonicalModel):
    """A document handed in with the application (申请资料)."""

    doc_type: str = Field(min_length=1, description="document kind (资料类型)")
    name: str = Field(min_length=1, description="document name (资料名称)")
    received: bool = Field(default=True, description="whether it was received (是否已收)")


class ConnectionApplication(CanonicalModel):
    """An application for a new connection or a capacity change (业扩报装申请)."""

    application_no: str = Field(min_length=1, description="application number (申请编号)")
    business_type: BusinessType = Field(description="business type (业务类型)")
    customer_no: str = Field(min_length=1, description="customer number (户号)")
    requested_capacity_kva: float = Field(
        gt=0,
        description="requested capacity, kVA (申请容量): for a capacity increase the total after it, for a "
        "reduction or suspension the capacity the customer keeps",
    )
    requested_voltage_kv: float | None = Field(
        default=None, gt=0, description="supply voltage the customer asked for, kV (申请供电电压)"
    )
    customer_class: CustomerClass = Field(description="customer class (客户分类)")
    temporary_until: date | None = Field(
        default=None,
        description="last day of a temporary supply (临时用电截止日期); its reservation lapses after it",
    )
    importance_grade: ImportanceGrade = Field(
        default=ImportanceGrade.NONE, description="important user grade (重要用户等级)"
    )
    site_location: GeoPoint | None = Field(default=None, description="site location (用电地址坐标)")
    site_address: str | None = Field(default=None, description="site address (用电地址)")
    channel: SubmissionChannel = Field(description="submission channel (受理渠道)")
    submitted_at: AwareDatetime = Field(description="when the application was accepted (受理时间)")
    updated_at: AwareDatetime = Field(description="when the source last changed the record (变更时间)")
    legacy_status: str | None = Field(default=None, description="status code in the source (流程状态)")
    stage: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="workflow stage the source reports, a stage id of workflow/stages.yaml (流程环节)",
    )
    rework_cause: ReworkCause | None = Field(
        default=None,
        description="why the source last sent the application back to an earlier stage (退回原因); null when "
        "it gave no cause or did not send it back",
    )
    org_no: str | None = Field(default=None, description="responsible supply unit (供电单位)")
    industry_code: str | None = Field(
        default=None, pattern=r"^[A-T](\d{2,4})?$", description="declared industry, GB/T 4754 (行业分类)"
    )
    load_type: LoadType = Field(
        default=LoadType.GENERAL,
        description="load type (负荷类型): selects its own demand factor and time-of-day profile",
    )
    special_load: bool | None = Field(
        default=None,
        description="a special load (特殊负荷: impact, harmonic or unbalanced load); null when not stated",
    )
    urban_rural: UrbanRural | None = Field(default=None, description="urban or rural area (城乡类别)")
    documents: tuple[Document, ...] = Field(default=(), description="documents handed in (申请资料)")
    source_refs: tuple[SourceRef, ...] = Field(default=(), description="legacy records this came from")
