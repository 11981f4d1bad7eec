"""The supply-scheme reply form (供电方案答复单) as a Chinese PDF, laid out by a YAML template.

The form's labels, code texts, metering table and validity periods live in api/scheme_reply.yaml; a
province overrides any of them in <config_dir>/documents/scheme_reply.yaml. The text is set in Noto Sans SC,
shipped by a Python package and embedded as a subset, so a machine without Chinese system fonts renders it.
The customer's name is masked (张*) unless the caller holds pii:read; an unmasked form is audited.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import pylopdf_fonts_zh_cn
from fastapi import APIRouter, Depends
from fastapi.responses import Response
from fpdf import FPDF
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from api.applications import latest_feasibility
from api.context import Context, Database, Now
from api.problems import problem, problem_responses
from api.security import PII_READ, CurrentPrincipal
from canonical_model.pii import mask_name
from ground.errors import ConfigError
from ground.settings import Settings
from store.audit import record_pii_read
from workflow.queries import get_case, get_customer
from workflow.workdays import local_date

SHIPPED_TEMPLATE = Path(__file__).with_name("scheme_reply.yaml")
OVERRIDE_TEMPLATE = Path("documents") / "scheme_reply.yaml"
PDF_MEDIA_TYPE = "application/pdf"
FONT_FAMILY = "NotoSansSC"
# Below this voltage a supply is single-phase 220 V; from HIGH_VOLTAGE_KV up it is high voltage.
SINGLE_PHASE_BELOW_KV = 0.3
HIGH_VOLTAGE_KV = 1.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AccuracyRow(_Strict):
    """A meter accuracy class that applies from a capacity up."""

    min_kva: float = Field(ge=0)
    text: str


class MeteringTable(_Strict):
    """How the metering point, the meter's accuracy and the CT ratio follow from voltage and capacity."""

    hv_low_side_below_kva: float = Field(gt=0)
    points: dict[str, str]
    accuracy: tuple[AccuracyRow, ...] = Field(min_length=1)
    single_phase_accuracy: str
    direct_connection_below_a: float = Field(gt=0)
    ct_load_fraction: float = Field(gt=0, le=1)
    ct_secondary_a: int = Field(gt=0)
    ct_primary_ratings_a: tuple[int, ...] = Field(min_length=1)
    direct_connection: str


class ReplyTemplate(_Strict):
    """The reply form's layout and texts, as api/scheme_reply.yaml spells them."""

    title: str
    issuer: str
    font_size: float = Field(gt=4, le=24)
    labels: dict[str, str] = Field(min_length=1)
    unknown: str
    categories: dict[str, str]
    tariffs: dict[str, str]
    industry_sections: dict[str, str]
    source_kinds: dict[str, str]
    source_roles: tuple[str, ...] = Field(min_length=1)
    dedicated_line: str
    verdicts: dict[str, str]
    conditions: dict[str, str]
    no_conditions: str
    metering: MeteringTable
    validity_months: dict[str, int]
    footer: str


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        merged[key] = (
            _merge(current, value) if isinstance(current, dict) and isinstance(value, Mapping) else value
        )
    return merged


def _read(path: Path) -> dict[str, Any]:
    try:
        document = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as error:
        raise ConfigError(f"cannot read the reply form template: {error}", file=str(path)) from error
    if not isinstance(document, dict):
        raise ConfigError("the reply form template must be a map", file=str(path))
    return document


def load_reply_template(config_dir: Path | None = None) -> ReplyTemplate:
    """The shipped template with the override of config_dir (documents/scheme_reply.yaml) merged over it."""
    document = _read(SHIPPED_TEMPLATE)
    override = (config_dir or Settings().config_dir) / OVERRIDE_TEMPLATE
    source = SHIPPED_TEMPLATE
    if override.is_file():
        document = _merge(document, _read(override))
        source = override
    try:
        return ReplyTemplate.model_validate(document)
    except ValidationError as error:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"reply form template is not valid: {where}", file=str(source)) from error


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("every month has 28 days")


def _voltage_text(kv: float) -> str:
    if kv < SINGLE_PHASE_BELOW_KV:
        return "220V（单相）"
    if kv < HIGH_VOLTAGE_KV:
        return "380V（三相）"
    return f"{kv:g}kV"


def _metering(template: MeteringTable, kv: float, kva: float) -> tuple[str, str, str]:
    """Metering point, meter accuracy and CT ratio for a supply of kva at kv."""
    if kv < HIGH_VOLTAGE_KV:
        point, metered_kv = template.points["low_voltage"], kv
    elif kva < template.hv_low_side_below_kva:
        point, metered_kv = template.points["hv_low_side"], 0.4
    else:
        point, metered_kv = template.points["hv_high_side"], kv
    single_phase = metered_kv < SINGLE_PHASE_BELOW_KV
    if single_phase:
        accuracy, current = template.single_phase_accuracy, kva / metered_kv
    else:
        accuracy = next(
            (row.text for row in template.accuracy if kva >= row.min_kva), template.accuracy[-1].text
        )
        current = kva / (math.sqrt(3) * metered_kv)
    if metered_kv < HIGH_VOLTAGE_KV and current < template.direct_connection_below_a:
        return point, accuracy, template.direct_connection
    wanted = current / template.ct_load_fraction
    ratings = sorted(template.ct_primary_ratings_a)
    primary = next((rating for rating in ratings if rating >= wanted), ratings[-1])
    return point, accuracy, f"{primary}/{template.ct_secondary_a}A"


def _sources(template: ReplyTemplate, assessment: Mapping[str, Any]) -> str:
    schemes = assessment.get("schemes") or []
    if not schemes:
        return template.unknown
    lines = []
    for index, source in enumerate(schemes[0]["sources"]):
        role = template.source_roles[min(index, len(template.source_roles) - 1)]
        kind = template.source_kinds.get(source["kind"], source["kind"])
        if source.get("connection") == "dedicated_line":
            kind = template.dedicated_line.format(circuits=source.get("circuits", 1))
        point = " ".join(part for part in (source.get("substation_id"), source.get("name")) if part)
        lines.append(f"{source['equipment_id']}／{role}／{kind} {point or source['equipment_id']}")
    return "\n".join(lines)


def _conditions(template: ReplyTemplate, assessment: Mapping[str, Any]) -> str:
    codes = list(dict.fromkeys(condition["code"] for condition in assessment.get("conditions") or []))
    if not codes:
        return template.no_conditions
    texts = [template.conditions.get(code, f"其他条件（{code}）") for code in codes]
    return "\n".join(f"{number}. {text}" for number, text in enumerate(texts, start=1))


def reply_fields(
    template: ReplyTemplate,
    *,
    application: Mapping[str, Any],
    customer: Mapping[str, Any] | None,
    assessment: Mapping[str, Any],
    replied_on: date,
    unmasked: bool,
) -> dict[str, str]:
    """Every field of the form as the text it shows, keyed by the field names of the template's labels."""
    unknown = template.unknown
    customer = customer or {}
    name = customer.get("name")
    category = customer.get("category")
    industry = customer.get("industry_code")
    kva = float(assessment["requested_capacity_kva"])
    kv = assessment.get("recommended_voltage_kv")
    high_voltage = kv is not None and kv >= HIGH_VOLTAGE_KV
    months = template.validity_months["high_voltage" if high_voltage else "low_voltage"]
    until = _add_months(replied_on, months)
    fields = {
        "customer_no": str(application.get("customer_no") or unknown),
        "application_no": str(application["application_no"]),
        "customer_name": (name if unmasked else mask_name(name)) if name else unknown,
        "address": application.get("site_address") or customer.get("address") or unknown,
        "category": template.categories.get(category, unknown) if category else unknown,
        "industry": (
            f"{industry} {template.industry_sections.get(industry[0], '')}".strip() if industry else unknown
        ),
        "supply_voltage": _voltage_text(kv) if kv is not None else unknown,
        "supply_capacity": f"{kva:g}kVA",
        "sources": _sources(template, assessment),
        "tariff": template.tariffs.get(category, unknown) if category else unknown,
        "verdict": template.verdicts.get(assessment["verdict"], assessment["verdict"]),
        "validity": f"自{replied_on:%Y年%m月%d日}起{months}个月，至{until:%Y年%m月%d日}",
        "conditions": _conditions(template, assessment),
    }
    point, accuracy, ct_ratio = _metering(template.metering, kv, kva) if kv is not None else (unknown,) * 3
    fields.update(metering_point=point, meter_accuracy=accuracy, ct_ratio=ct_ratio)
    return fields


def render_reply(
    template: ReplyTemplate, fields: Mapping[str, str], *, replied_on: date, created: datetime
) -> bytes:
    """The form as PDF bytes: title, a two-column table of the template's rows, the issuer and the date."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(created)
    pdf.set_title(template.title)
    pdf.add_font(FONT_FAMILY, fname=str(pylopdf_fonts_zh_cn.sans_path()))
    pdf.add_page()
    pdf.set_font(FONT_FAMILY, size=template.font_size + 7)
    pdf.cell(w=0, h=14, text=template.title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=template.font_size)
    with pdf.table(col_widths=(3, 7), text_align="LEFT", first_row_as_headings=False) as table:
        for field, label in template.labels.items():
            row = table.row()
            row.cell(label)
            row.cell(fields.get(field, template.unknown))
    pdf.ln(4)
    pdf.multi_cell(w=0, text=template.footer, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.cell(w=0, h=8, text=template.issuer, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(w=0, h=8, text=f"{replied_on:%Y年%m月%d日}", align="R")
    return bytes(pdf.output())


router = APIRouter()


@functools.cache
def _configured_template() -> ReplyTemplate:
    return load_reply_template()


def reply_template(context: Context) -> ReplyTemplate:
    """The reply form of the app (a dependency): its context's, else the configured one, read once."""
    return context.reply_template or _configured_template()


@router.get(
    "/v1/applications/{application_no}/scheme.pdf",
    tags=["applications"],
    summary="The supply-scheme reply form (供电方案答复单) as a PDF; the name masked without pii:read",
    response_class=Response,
    responses={
        200: {
            "content": {PDF_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
            "description": "the reply form",
        },
        **problem_responses("application-not-found", "feasibility-not-found"),
    },
)
def read_scheme_reply(
    application_no: str,
    principal: CurrentPrincipal,
    engine: Database,
    now: Now,
    form: Annotated[ReplyTemplate, Depends(reply_template)],
) -> Response:
    unmasked = principal.can(PII_READ)
    # The unmasked read and its audit entry commit together, or neither happens.
    with engine.begin() as conn:
        case = get_case(conn, application_no, now=now)
        if case is None:
            raise problem("application-not-found", f"application {application_no} is not tracked")
        assessment = latest_feasibility(conn, application_no)
        if assessment is None:
            raise problem(
                "feasibility-not-found",
                f"application {application_no} has no feasibility assessment yet: no scheme to reply",
            )
        customer_no = str(case["customer_no"])
        customer = get_customer(conn, customer_no)
        if unmasked and customer is not None:
            record_pii_read(conn, principal.sub, f"customer/{customer_no}", ["name"])
    replied_on = local_date(now)
    fields = reply_fields(
        form,
        application=case["application"],
        customer=customer,
        assessment=assessment,
        replied_on=replied_on,
        unmasked=unmasked,
    )
    content = render_reply(form, fields, replied_on=replied_on, created=now)
    # Header values are Latin-1: the file name keeps only the safe characters of the number.
    disposition = f'inline; filename="scheme-{re.sub(r"[^A-Za-z0-9_.-]", "_", application_no)}.pdf"'
    return Response(content, media_type=PDF_MEDIA_TYPE, headers={"Content-Disposition": disposition})
