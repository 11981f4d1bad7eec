"""Canonical data model v1: the hub's own vocabulary, independent of any legacy system."""

from canonical_model.application import (
    BusinessType,
    ConnectionApplication,
    CustomerClass,
    Document,
    ImportanceGrade,
    SubmissionChannel,
)
from canonical_model.common import GeoPoint, SourceRef, UrbanRural
from canonical_model.customer import (
    BankAccount,
    Contact,
    Customer,
    CustomerCategory,
    IdentityDocument,
    IdentityDocumentType,
)
from canonical_model.envelope import CloudEvent

__all__ = [
    "BankAccount",
    "BusinessType",
    "CloudEvent",
    "ConnectionApplication",
    "Contact",
    "Customer",
    "CustomerCategory",
    "CustomerClass",
    "Document",
    "GeoPoint",
    "IdentityDocument",
    "IdentityDocumentType",
    "ImportanceGrade",
    "SourceRef",
    "SubmissionChannel",
    "UrbanRural",
]
