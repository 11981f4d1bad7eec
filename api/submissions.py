"""Online submissions: POST /v1/applications takes an application from a new platform, GET
/v1/submissions/{tracking_id} follows it until the marketing system has created it.

The request is validated (canonical names and values, the same as the application resource) and turned
into the marketing system's codes before it is accepted, so a value the marketing system has no code for
is refused at once (422, naming the field). So is text holding a control character, a number that is not
a finite JSON number, and a capacity outside the configured range (settings.submissions): a request the
marketing system could never take is not accepted only to fail later. An accepted submission is stored
and answered 202 with its tracking id; the marketing writer creates it in the marketing system with
retries (adapters/marketing/writer.py) and the case is then tracked under the application number the
marketing system answered. One the marketing system refuses, or that fails past the writer's bound, ends
`failed` with the reason in GET /v1/submissions/{tracking_id}.
An Idempotency-Key header makes a retried POST return the first submission instead of making another.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field, model_validator
from sqlalchemy.engine import Engine

from adapters.marketing.outbound import NoLegacyCodeError, ReverseCodes, default_codes, submission_arguments
from api.inputs import FiniteNumber, RequestModel, SiteLocation, StrictFlag, check_capacity
from api.problems import problem, problem_responses
from canonical_model.application import (
    BusinessType,
    CustomerClass,
    Document,
    ImportanceGrade,
    SubmissionChannel,
)
from canonical_model.common import UrbanRural
from canonical_model.customer import BankAccount, Contact, CustomerCategory, IdentityDocument
from store.schema import cases
from store.submissions import Submission, add_submission, get_submission, submission_by_key
from yekuo.settings import Settings, SubmissionSettings

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 191
EXAMPLE_TRACKING_ID = "0b6c1f0e-3a59-4f1e-9d55-2c1b7f0e8a11"


class SubmittedDocument(RequestModel, Document):
    """A document handed in with an online application (申请资料)."""

    doc_type: str = Field(min_length=1, max_length=32, description="document kind (资料类型)")
    name: str = Field(min_length=1, max_length=200, description="document name (资料名称)")
    received: StrictFlag = Field(default=True, description="whether it was received (是否已收)")


class SubmittedIdentityDocument(RequestModel, IdentityDocument):
    """The identity document of a new customer (证件)."""


class SubmittedContact(RequestModel, Contact):
    """A contact person of a new customer (联系人)."""


class SubmittedBankAccount(RequestModel, BankAccount):
    """The bank account of a new customer (银行账户)."""


class NewCustomer(RequestModel):
    """A customer registered together with its first application (新户)."""

    name: str = Field(min_length=1, max_length=200, description="customer name (户名)")
    category: CustomerCategory = Field(description="electricity use category (用电类别)")
    industry_code: str | None = Field(
        default=None, pattern=r"^[A-T](\d{2,4})?$", description="industry classification GB/T 4754 (行业分类)"
    )
    address: str | None = Field(default=None, max_length=500, description="supply address (用电地址)")
    identity_document: SubmittedIdentityDocument = Field(description="identity document (证件)")
    contacts: tuple[SubmittedContact, ...] = Field(
        min_length=1, max_length=10, description="contact persons (联系人)"
    )
    bank_account: SubmittedBankAccount | None = Field(default=None, description="bank account (银行账户)")


class OnlineApplication(RequestModel):
    """An application a new platform submits on behalf of a customer (网上业扩申请).

    Name an existing customer with customer_no, or register a new one with customer.
    """

    business_type: BusinessType = Field(description="business type (业务类型)")
    requested_capacity_kva: FiniteNumber = Field(
        gt=0,
        description="requested capacity, kVA (申请容量); within the hub's configured range "
        "(YEKUO_SUBMISSIONS__MIN_CAPACITY_KVA, YEKUO_SUBMISSIONS__MAX_CAPACITY_KVA)",
    )
    requested_voltage_kv: FiniteNumber | None = Field(
        default=None, gt=0, le=1000, description="supply voltage asked for, kV"
    )
    customer_class: CustomerClass = Field(description="customer class (客户分类)")
    importance_grade: ImportanceGrade = Field(default=ImportanceGrade.NONE, description="重要用户等级")
    site_address: str = Field(min_length=1, max_length=500, description="site address (用电地址)")
    site_location: SiteLocation | None = Field(default=None, description="site location (用电地址坐标)")
    channel: SubmissionChannel = Field(default=SubmissionChannel.ONLINE, description="受理渠道")
    org_no: str = Field(min_length=1, max_length=32, description="responsible supply unit (供电单位)")
    urban_rural: UrbanRural | None = Field(default=None, description="urban or rural area (城乡类别)")
    documents: tuple[SubmittedDocument, ...] = Field(
        default=(), max_length=50, description="documents (申请资料)"
    )
    customer_no: str | None = Field(default=None, min_length=1, max_length=32, description="户号")
    customer: NewCustomer | None = Field(default=None, description="a customer to register (新户)")

    @model_validator(mode="after")
    def _one_customer(self) -> OnlineApplication:
        if (self.customer_no is None) == (self.customer is None):
            raise ValueError("give either customer_no (an existing customer) or customer (a new one)")
        return self


class SubmissionAccepted(BaseModel):
    """A submission the hub took on; it creates the application in the marketing system in the background."""

    tracking_id: str = Field(description="id of the submission", examples=[EXAMPLE_TRACKING_ID])
    status_url: str = Field(
        description="where to follow it", examples=[f"/v1/submissions/{EXAMPLE_TRACKING_ID}"]
    )
    replayed: bool = Field(description="true when an earlier request with the same Idempotency-Key made it")


class SubmissionLinks(BaseModel):
    """Where the submission and its application can be read."""

    self: str = Field(description="this submission")
    application: str | None = Field(description="the application, once the marketing system numbered it")


class SubmissionStatus(BaseModel):
    """Where an online submission stands."""

    tracking_id: str = Field(description="id of the submission")
    status: str = Field(description="pending, submitted or failed", examples=["submitted"])
    application_no: str | None = Field(description="number the marketing system gave the application")
    customer_no: str | None = Field(description="customer number the marketing system gave")
    reason: str | None = Field(description="why it failed, when it did")
    attempts: int = Field(description="calls made to the marketing system")
    last_error: str | None = Field(description="the last transient error while still pending")
    created_at: AwareDatetime = Field(description="when the hub took it on")
    submitted_at: AwareDatetime | None = Field(description="when the marketing system accepted it")
    case_tracked: bool = Field(description="whether the hub tracks the application's case yet")
    links: SubmissionLinks = Field(description="related resources")


def _request_hash(request: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _view(submission: Submission, tracked: bool) -> dict[str, Any]:
    application_no = submission.application_no
    return {
        "tracking_id": submission.tracking_id,
        "status": submission.status,
        "application_no": application_no,
        "customer_no": submission.customer_no,
        "reason": submission.reason,
        "attempts": submission.attempts,
        "last_error": submission.last_error if submission.status == "pending" else None,
        "created_at": submission.created_at.isoformat(),
        "submitted_at": submission.submitted_at.isoformat() if submission.submitted_at else None,
        "case_tracked": tracked,
        "links": {
            "self": f"/v1/submissions/{submission.tracking_id}",
            "application": f"/v1/applications/{application_no}" if application_no else None,
        },
    }


def submissions_router(
    engine: Engine,
    *,
    codes: Callable[[], ReverseCodes] = default_codes,
    limits: SubmissionSettings | None = None,
) -> APIRouter:
    """POST /v1/applications and GET /v1/submissions/{tracking_id} over the hub database.

    limits bound the requested capacity (default: the settings of the environment).
    """
    router = APIRouter(tags=["submissions"])
    bounds = limits or Settings().submissions

    @router.post(
        "/v1/applications",
        status_code=202,
        summary="Submit an online application; the hub creates it in the marketing system",
        responses={
            202: {"description": "accepted; follow it at status_url", "model": SubmissionAccepted},
            **problem_responses("idempotency-key-reused", "no-legacy-code"),
        },
    )
    def submit(
        application: OnlineApplication,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias=IDEMPOTENCY_HEADER,
                max_length=MAX_KEY_CHARS,
                description="the same key returns the first submission instead of making another",
            ),
        ] = None,
    ) -> JSONResponse:
        check_capacity(application.requested_capacity_kva, bounds)
        request = application.model_dump(mode="json", exclude_none=True)
        digest = _request_hash(request)
        try:
            arguments = submission_arguments(request, codes())
        except NoLegacyCodeError as exc:
            raise problem("no-legacy-code", str(exc)) from exc
        if idempotency_key is not None:
            earlier = _earlier(idempotency_key, digest)
            if earlier is not None:
                return earlier
        tracking_id = str(uuid.uuid4())
        try:
            with engine.begin() as conn:
                add_submission(
                    conn,
                    tracking_id=tracking_id,
                    idempotency_key=idempotency_key,
                    request_hash=digest,
                    request=request,
                    arguments=arguments,
                )
        except sa.exc.IntegrityError:
            # A concurrent request with the same Idempotency-Key was stored first.
            earlier = _earlier(idempotency_key or "", digest)
            if earlier is None:
                raise
            return earlier
        return _accepted(tracking_id, replayed=False)

    def _earlier(key: str, digest: str) -> JSONResponse | None:
        with engine.connect() as conn:
            earlier = submission_by_key(conn, key)
        if earlier is None:
            return None
        if earlier.request_hash != digest:
            raise problem(
                "idempotency-key-reused",
                f"{IDEMPOTENCY_HEADER} {key!r} was used for a different request; use a new key",
            )
        return _accepted(earlier.tracking_id, replayed=True)

    @router.get(
        "/v1/submissions/{tracking_id}",
        summary="Where an online submission stands",
        responses={200: {"model": SubmissionStatus}, **problem_responses("submission-not-found")},
    )
    def read_submission(tracking_id: str) -> dict[str, Any]:
        with engine.connect() as conn:
            submission = get_submission(conn, tracking_id)
            tracked = False
            if submission is not None and submission.application_no is not None:
                query = sa.select(cases.c.application_no).where(
                    cases.c.application_no == submission.application_no
                )
                tracked = conn.execute(query).first() is not None
        if submission is None:
            raise problem("submission-not-found", f"no submission {tracking_id[:64]}")
        return _view(submission, tracked)

    return router


def _accepted(tracking_id: str, *, replayed: bool) -> JSONResponse:
    location = f"/v1/submissions/{tracking_id}"
    return JSONResponse(
        {"tracking_id": tracking_id, "status_url": location, "replayed": replayed},
        status_code=202,
        headers={"Location": location},
    )
