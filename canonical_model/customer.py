"""Customer (用电客户): who takes supply, with personal data marked as PII."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from canonical_model.common import CanonicalModel, GeoPoint, SourceRef, UrbanRural, pii


class CustomerCategory(StrEnum):
    """Electricity use category (用电类别)."""

    RESIDENTIAL = "residential"
    GENERAL_COMMERCIAL = "general_commercial"
    LARGE_INDUSTRY = "large_industry"
    AGRICULTURAL = "agricultural"
    OTHER = "other"


class IdentityDocumentType(StrEnum):
    """Kind of identity document (证件类型)."""

    RESIDENT_ID = "resident_id"
    BUSINESS_LICENCE = "business_licence"
    PASSPORT = "passport"
    OTHER = "other"


class IdentityDocument(CanonicalModel):
    """An identity document (证件)."""

    type: IdentityDocumentType = Field(description="document type (证件类型)")
    number: str = Field(min_length=1, json_schema_extra=pii("document number (证件号码)"))


class BankAccount(CanonicalModel):
    """A bank account for direct debit (银行账户)."""

    bank: str = Field(min_length=1, description="bank name (开户银行)")
    account_no: str = Field(min_length=1, json_schema_extra=pii("account number (银行账号)"))


class Contact(CanonicalModel):
    """A contact person (联系人)."""

    name: str = Field(min_length=1, description="contact name (联系人)")
    phone: str = Field(min_length=1, json_schema_extra=pii("phone number (联系电话)"))
    role: str | None = Field(default=None, description="role, e.g. legal representative (联系类型)")


class Customer(CanonicalModel):
    """A customer of the utility (用电客户)."""

    customer_no: str = Field(min_length=1, description="customer number (户号)")
    name: str = Field(min_length=1, description="customer name (户名)")
    category: CustomerCategory = Field(description="electricity use category (用电类别)")
    industry_code: str | None = Field(
        default=None, pattern=r"^[A-T](\d{2,4})?$", description="industry classification GB/T 4754 (行业分类)"
    )
    address: str | None = Field(default=None, description="supply address (用电地址)")
    location: GeoPoint | None = Field(default=None, description="supply point location (用电地址坐标)")
    supply_voltage_kv: float | None = Field(default=None, gt=0, description="supply voltage, kV (供电电压)")
    contract_capacity_kva: float | None = Field(
        default=None, ge=0, description="contracted capacity, kVA (合同容量)"
    )
    org_no: str | None = Field(default=None, description="responsible supply unit (供电单位)")
    urban_rural: UrbanRural | None = Field(default=None, description="urban or rural area (城乡类别)")
    transformer_district_id: str | None = Field(default=None, description="transformer district (台区) TG_ID")
    contacts: tuple[Contact, ...] = Field(default=(), description="contact persons (联系人)")
    identity_document: IdentityDocument | None = Field(default=None, description="identity document (证件)")
    bank_account: BankAccount | None = Field(default=None, description="bank account (银行账户)")
    source_refs: tuple[SourceRef, ...] = Field(default=(), description="legacy records this came from")
