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

Before it is accepted, a submission is pre-reviewed with the workflow's consistency rules
(workflow/consistency.yaml) against what the hub knows: the customer record, the PMS grid and the open
cases. Findings are answered 422 `consistency-findings`, listing each, unless the request names every one
of their rules in accept_findings: then it is accepted and the findings come back with the 202. The same
rules run again on the case once the marketing system has created it: the findings stand on the case,
marked accepted, until the records agree.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from adapters.marketing.outbound import NoLegacyCodeError, submission_arguments
from api.context import Context, Database
from api.inputs import FiniteNumber, RequestModel, SiteLocation, StrictFlag, check_capacity, check_rule_names
from api.problems import (
    PROBLEM_CONTENT_TYPE,
    PROBLEM_TYPES,
    Problem,
    problem,
    problem_body,
    problem_responses,
)
from canonical_model.application import (
    BusinessType,
    CustomerClass,
    Document,
    ImportanceGrade,
    LoadType,
    SubmissionChannel,
)
from canonical_model.common import UrbanRural
from canonical_model.consistency import RULE_PATTERN, ConsistencyFinding, FindingValue
from canonical_model.customer import BankAccount, Contact, CustomerCategory, IdentityDocument
from store.database import Connection, Engine
from store.submissions import Submission, add_submission_once, get_submission, submission_by_key
from workflow.consistency import AppliedFacts, ConsistencyConfig, CustomerFacts
from workflow.findings import DistrictIndex, StoreKnowledge, customer_facts, masked_values
from workflow.queries import is_tracked

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
    industry_code: str | None = Field(
        default=None, pattern=r"^[A-T](\d{2,4})?$", description="declared industry, GB/T 4754 (行业分类)"
    )
    load_type: LoadType = Field(
        default=LoadType.GENERAL,
        description="load type (负荷类型): a charging pile or a heat pump, which has its own demand factor",
    )
    documents: tuple[SubmittedDocument, ...] = Field(
        default=(), max_length=50, description="documents (申请资料)"
    )
    customer_no: str | None = Field(default=None, min_length=1, max_length=32, description="户号")
    customer: NewCustomer | None = Field(default=None, description="a customer to register (新户)")
    accept_findings: tuple[Annotated[str, Field(pattern=RULE_PATTERN, max_length=64)], ...] | None = Field(
        default=None,
        max_length=20,
        description="consistency rules whose findings the submitter has checked and accepts; a submission "
        "with findings of other rules is answered 422 consistency-findings",
    )

    @model_validator(mode="after")
    def _one_customer(self) -> OnlineApplication:
        if (self.customer_no is None) == (self.customer is None):
            raise ValueError("give either customer_no (an existing customer) or customer (a new one)")
        return self


class PreReviewFinding(BaseModel):
    """A consistency finding of the pre-review: what the submission says against what the hub knows."""

    rule: str = Field(description="configured rule that found it; name it in accept_findings to go ahead")
    kind: str = Field(description="built-in check kind of the rule")
    category: str = Field(description="rework cause it prevents", examples=["information_error"])
    systems: tuple[str, ...] = Field(description="where the disagreeing values come from")
    values: tuple[FindingValue, ...] = Field(description="the disagreeing values; personal ones masked")
    message: str = Field(description="what disagrees, in the rule's words")


class SubmissionProblem(Problem):
    """A refused submission; `consistency-findings` lists what the pre-review found."""

    findings: tuple[PreReviewFinding, ...] | None = Field(
        default=None, description="with consistency-findings: each finding not accepted"
    )


class SubmissionAccepted(BaseModel):
    """A submission the hub took on; it creates the application in the marketing system in the background."""

    tracking_id: str = Field(description="id of the submission", examples=[EXAMPLE_TRACKING_ID])
    status_url: str = Field(
        description="where to follow it", examples=[f"/v1/submissions/{EXAMPLE_TRACKING_ID}"]
    )
    replayed: bool = Field(description="true when an earlier request with the same Idempotency-Key made it")
    findings: tuple[PreReviewFinding, ...] = Field(
        default=(), description="findings of the pre-review the request accepted (accept_findings)"
    )


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


def pre_review(
    conn: Connection, application: OnlineApplication, rules: ConsistencyConfig, districts: DistrictIndex
) -> list[dict[str, Any]]:
    """The findings of the rules about a submission, against what the hub knows, personal values masked."""
    applied = AppliedFacts.of(application, system="submission", application_no=None)
    if application.customer is not None:
        customer: CustomerFacts | None = CustomerFacts(
            system="submission",
            customer_no=None,
            industry_code=application.customer.industry_code,
            urban_rural=applied.urban_rural,
        )
    else:
        customer = customer_facts(conn, str(application.customer_no))
    knowledge = StoreKnowledge(conn, districts)
    return [_shown(finding) for finding in rules.check(applied, customer, knowledge)]


def _shown(finding: ConsistencyFinding) -> dict[str, Any]:
    values, _ = masked_values(finding.values)
    return {
        "rule": finding.rule,
        "kind": finding.kind,
        "category": finding.category,
        "systems": list(finding.systems),
        "values": values,
        "message": finding.message,
    }


router = APIRouter(tags=["submissions"])
_REFUSED = PROBLEM_TYPES["consistency-findings"]


@router.post(
    "/v1/applications",
    status_code=202,
    summary="Submit an online application; the hub creates it in the marketing system",
    responses={
        202: {"description": "accepted; follow it at status_url", "model": SubmissionAccepted},
        **problem_responses("idempotency-key-reused"),
        422: {
            "description": f"`consistency-findings`: {_REFUSED.title}; "
            f"`no-legacy-code`: {PROBLEM_TYPES['no-legacy-code'].title}",
            "model": SubmissionProblem,
            "content": {
                PROBLEM_CONTENT_TYPE: {
                    "schema": {"$ref": "#/components/schemas/SubmissionProblem"},
                    "example": problem_body("consistency-findings", _REFUSED.title, "/v1/applications"),
                }
            },
        },
    },
)
def submit(
    application: OnlineApplication,
    context: Context,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_HEADER,
            max_length=MAX_KEY_CHARS,
            description="the same key returns the first submission instead of making another",
        ),
    ] = None,
) -> JSONResponse:
    engine = context.engine
    check_capacity(application.requested_capacity_kva, context.submissions)
    configured = context.consistency_rules()
    accepted = set(application.accept_findings or ())
    if configured is not None:
        check_rule_names(accepted, {rule.name for rule in configured.rules}, "accept_findings")
    request = application.model_dump(mode="json", exclude_none=True)
    digest = _request_hash(request)
    try:
        arguments = submission_arguments(request, context.codes())
    except NoLegacyCodeError as exc:
        raise problem("no-legacy-code", str(exc)) from exc
    if idempotency_key is not None:
        earlier = _earlier(engine, idempotency_key, digest)
        if earlier is not None:
            return earlier
    findings: list[dict[str, Any]] = []
    if configured is not None:
        with engine.connect() as conn:
            findings = pre_review(conn, application, configured, context.districts)
    standing = [finding for finding in findings if finding["rule"] not in accepted]
    if standing:
        names = ", ".join(finding["rule"] for finding in standing)
        raise problem(
            "consistency-findings",
            f"the submission disagrees with what the hub knows ({names}); correct it, or name the "
            "rules in accept_findings to submit it as it is",
            findings=standing,
        )
    tracking_id = str(uuid.uuid4())
    concurrent = add_submission_once(
        engine,
        tracking_id=tracking_id,
        idempotency_key=idempotency_key,
        request_hash=digest,
        request=request,
        arguments=arguments,
    )
    if concurrent is not None:
        return _replayed(str(idempotency_key), concurrent, digest)
    return _accepted(tracking_id, replayed=False, findings=findings)


def _earlier(engine: Engine, key: str, digest: str) -> JSONResponse | None:
    """The answer of the submission an Idempotency-Key made earlier, if it made one."""
    with engine.connect() as conn:
        earlier = submission_by_key(conn, key)
    return _replayed(key, earlier, digest) if earlier is not None else None


@router.get(
    "/v1/submissions/{tracking_id}",
    summary="Where an online submission stands",
    responses={200: {"model": SubmissionStatus}, **problem_responses("submission-not-found")},
)
def read_submission(tracking_id: str, engine: Database) -> dict[str, Any]:
    with engine.connect() as conn:
        submission = get_submission(conn, tracking_id)
        tracked = False
        if submission is not None and submission.application_no is not None:
            tracked = is_tracked(conn, submission.application_no)
    if submission is None:
        raise problem("submission-not-found", f"no submission {tracking_id[:64]}")
    return _view(submission, tracked)


def _replayed(key: str, earlier: Submission, digest: str) -> JSONResponse:
    """The answer to a request whose Idempotency-Key made a submission already."""
    if earlier.request_hash != digest:
        raise problem(
            "idempotency-key-reused",
            f"{IDEMPOTENCY_HEADER} {key!r} was used for a different request; use a new key",
        )
    return _accepted(earlier.tracking_id, replayed=True)


def _accepted(
    tracking_id: str, *, replayed: bool, findings: list[dict[str, Any]] | None = None
) -> JSONResponse:
    location = f"/v1/submissions/{tracking_id}"
    return JSONResponse(
        {
            "tracking_id": tracking_id,
            "status_url": location,
            "replayed": replayed,
            "findings": findings or [],
        },
        status_code=202,
        headers={"Location": location},
    )
