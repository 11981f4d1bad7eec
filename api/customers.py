"""Customers API: a customer's canonical record, personal data masked unless the caller holds pii:read.

Every unmasked read is recorded in the audit log (store/audit.py) with the caller and the fields shown.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.context import Database
from api.problems import problem, problem_responses
from api.security import PII_READ, CurrentPrincipal
from canonical_model.customer import Customer
from canonical_model.pii import mask_document, pii_paths
from store.audit import record_pii_read
from workflow.queries import get_customer

PII_FIELDS = [".".join(path) for path in pii_paths(Customer)]


router = APIRouter(tags=["customers"])


@router.get(
    "/v1/customers/{customer_no}",
    summary="A customer; personal data masked unless the caller holds pii:read",
    responses={200: {"model": Customer}, **problem_responses("customer-not-found")},
)
def read_customer(customer_no: str, principal: CurrentPrincipal, engine: Database) -> dict[str, Any]:
    unmasked = principal.can(PII_READ)
    # Reading unmasked personal data and recording who did it commit together, or neither happens.
    with engine.begin() as conn:
        document = get_customer(conn, customer_no)
        if document is None:
            raise problem("customer-not-found", f"customer {customer_no} is not known")
        if unmasked:
            record_pii_read(conn, principal.sub, f"customer/{customer_no}", PII_FIELDS)
    return document if unmasked else mask_document(document, Customer)
