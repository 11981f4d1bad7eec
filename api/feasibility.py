"""Feasibility API: the kept assessment of an application, and a what-if preview that reserves nothing.

The preview's input holds to the same rules as a submission (api/inputs.py): finite numbers, a capacity in
the configured range, no control characters.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from api.context import Context, Database, FeasibilityRules
from api.inputs import FiniteNumber, RequestModel, SiteLocation, check_capacity
from api.problems import problem, problem_responses
from canonical_model.application import BusinessType, CustomerClass, ImportanceGrade, LoadType
from canonical_model.common import UrbanRural
from canonical_model.feasibility import FeasibilityAssessment
from feasibility.engine import FeasibilityRequest
from feasibility.service import FeasibilityService
from store.feasibility import assessment_document


class PreviewRequest(RequestModel):
    """A what-if question: could this capacity be supplied at this place?"""

    requested_capacity_kva: FiniteNumber = Field(
        gt=0, description="requested capacity, kVA; within the range submissions are held to"
    )
    site_location: SiteLocation = Field(description="site location, WGS84")
    customer_class: CustomerClass = Field(description="customer class")
    importance_grade: ImportanceGrade = Field(
        default=ImportanceGrade.NONE, description="important user grade"
    )
    urban_rural: UrbanRural | None = Field(default=None, description="area; unknown counts as rural")
    industry_code: str | None = Field(
        default=None,
        pattern=r"^[A-T](\d{2,4})?$",
        description="declared industry, GB/T 4754 (行业分类): selects the demand factor",
    )
    load_type: LoadType = Field(
        default=LoadType.GENERAL,
        description="load type (负荷类型): a charging pile or heat pump has its own demand factor, which "
        "wins over the industry's",
    )
    province: str | None = Field(
        default=None, max_length=64, description="rule set; default rules when left out"
    )
    requested_voltage_kv: FiniteNumber | None = Field(
        default=None, gt=0, description="supply voltage asked for, kV: honoured when valid for the capacity"
    )
    business_type: BusinessType = Field(
        default=BusinessType.NEW_CONNECTION,
        description="business type (业务类型): a capacity increase adds only its increase, a reduction or "
        "suspension frees capacity, changes such as a name change get no capacity check",
    )
    existing_capacity_kva: FiniteNumber | None = Field(
        default=None,
        ge=0,
        description="the customer's contract capacity before a capacity change, kVA (原合同容量)",
    )


router = APIRouter()


@router.get(
    "/v1/applications/{application_no}/feasibility",
    tags=["applications"],
    summary="The latest supply-feasibility assessment of an application, with its rule trace",
    response_model=FeasibilityAssessment,
    responses=problem_responses("feasibility-not-found"),
    response_model_exclude_none=True,
)
def read_feasibility(application_no: str, engine: Database) -> FeasibilityAssessment:
    with engine.connect() as conn:
        document = assessment_document(conn, application_no)
    if document is None:
        raise problem("feasibility-not-found", f"application {application_no} has no feasibility assessment")
    return FeasibilityAssessment.model_validate(document)


@router.post(
    "/v1/feasibility/preview",
    tags=["feasibility"],
    summary="A what-if feasibility check for a place and capacity; reserves nothing",
    response_model=FeasibilityAssessment,
    responses=problem_responses("unknown-province"),
    response_model_exclude_none=True,
)
def preview(body: PreviewRequest, context: Context, rules: FeasibilityRules) -> FeasibilityAssessment:
    check_capacity(body.requested_capacity_kva, context.submissions)
    if body.province is not None and body.province not in rules.provinces:
        raise problem(
            "unknown-province",
            f"province {body.province[:64]!r} has no rule set; known: {sorted(rules.provinces)}",
        )
    request = FeasibilityRequest(
        requested_capacity_kva=body.requested_capacity_kva,
        customer_class=body.customer_class,
        importance_grade=body.importance_grade,
        site=body.site_location,
        urban_rural=body.urban_rural,
        industry_code=body.industry_code,
        load_type=body.load_type,
        requested_voltage_kv=body.requested_voltage_kv,
        business_type=body.business_type,
        existing_capacity_kva=body.existing_capacity_kva,
    )
    with context.engine.connect() as conn:
        return FeasibilityService(rules).preview(conn, request, province=body.province)
