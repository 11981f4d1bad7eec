"""Page 1, the process overview (流程总览) for managers.

Open cases by stage with their at-risk and overdue counts; the end-to-end figures of GET
/v1/analytics/process (working days to power, share within the commitment and within the target, rework by
cause, information errors the checks caught); the monthly trend and the bottleneck ranking by stage and
unit of GET /v1/analytics/stages, as charts. The same functions compute them here as there, with the same
filters: unit, customer class and a period of Asia/Shanghai dates (energised in it, or submitted in it with
basis=opened); the stage counts are of open cases now, filtered by unit and class.

GET /ui/overview/figures answers the figures panel as HTML with the charts' data, for the page to refresh
itself when the event feed reports a case event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from api.analytics import local_period
from api.context import ApiContext, Context
from api.ui.context import Ui
from api.ui.labels import CUSTOMER_CLASSES
from api.ui.render import PageFrame, render
from canonical_model.application import CustomerClass
from canonical_model.events import CASE_EVENTS
from store.database import Engine
from workflow.analytics import VisitFilter, bottlenecks
from workflow.config import WorkflowConfig
from workflow.process import Basis, ProcessFilter, process_figures
from workflow.queries import open_cases_by_stage

INFORMATION_ERROR = "information_error"


@dataclass(frozen=True)
class OverviewFilter:
    """The overview's filters, as the query string gives them."""

    unit: str | None
    customer_class: str | None
    period_from: date | None
    period_to: date | None
    basis: Basis

    def query(self) -> dict[str, str]:
        """The filters as the query parameters of /v1/analytics/process (and of this page)."""
        values = {
            "unit": self.unit,
            "customer_class": self.customer_class,
            "from": self.period_from.isoformat() if self.period_from else None,
            "to": self.period_to.isoformat() if self.period_to else None,
            "basis": self.basis,
        }
        return {name: value for name, value in values.items() if value}


async def overview_filter(
    unit: Annotated[str | None, Query(max_length=32, description="only this supply unit")] = None,
    customer_class: Annotated[CustomerClass | None, Query(description="only this customer class")] = None,
    period_from: Annotated[date | None, Query(alias="from", description="period start, inclusive")] = None,
    period_to: Annotated[date | None, Query(alias="to", description="period end, inclusive")] = None,
    basis: Annotated[Basis, Query(description="energised or opened in the period")] = "energised",
) -> OverviewFilter:
    """The filters of a request (a dependency); an empty unit field means any unit."""
    return OverviewFilter(
        unit or None, customer_class.value if customer_class else None, period_from, period_to, basis
    )


Filters = Annotated[OverviewFilter, Depends(overview_filter)]


def overview_data(
    engine: Engine,
    chosen: OverviewFilter,
    *,
    config: WorkflowConfig,
    target_days: int,
    now: datetime,
) -> dict[str, Any]:
    """Everything the overview shows, from the analytics functions of the API."""
    start, end = local_period(chosen.period_from, chosen.period_to)
    where = ProcessFilter(
        basis=chosen.basis,
        period_from=start,
        period_to=end,
        customer_class=chosen.customer_class,
        unit=chosen.unit,
    )
    visits = VisitFilter(
        customer_class=chosen.customer_class, unit=chosen.unit, entered_from=start, entered_to=end
    )
    with engine.connect() as conn:
        # The page shows the overall figures and the monthly trend: the other groupings are not read.
        process = process_figures(conn, where=where, target_days=target_days, groupings=("month",))
        stages, units = bottlenecks(conn, visits)
        counts = {
            count.stage: count
            for count in open_cases_by_stage(
                conn, customer_class=chosen.customer_class, unit=chosen.unit, now=now
            )
        }
    figures = process.as_dict()
    by_stage = [
        {
            "stage": stage,
            "name": name,
            "cases": count.cases,
            "at_risk": count.at_risk,
            "overdue": count.overdue,
        }
        for stage, name in config.stages.items()
        if (count := counts.get(stage)) is not None
    ]
    return {
        "process": figures,
        "by_stage": by_stage,
        "open_cases": sum(item["cases"] for item in by_stage),
        "at_risk": sum(item["at_risk"] for item in by_stage),
        "overdue": sum(item["overdue"] for item in by_stage),
        "information_errors": figures["findings"]["by_category"].get(INFORMATION_ERROR, 0),
        "bottlenecks": {
            "stages": [item.as_dict() for item in stages],
            "units": [item.as_dict() for item in units],
        },
    }


def chart_data(data: dict[str, Any], frame: PageFrame) -> dict[str, Any]:
    """The series the page's charts draw, labelled in Chinese."""
    months = data["process"]["by_month"]
    stages = data["bottlenecks"]["stages"]
    units = data["bottlenecks"]["units"]
    return {
        "by_stage": {
            "names": [item["name"] for item in data["by_stage"]],
            "cases": [item["cases"] for item in data["by_stage"]],
            "at_risk": [item["at_risk"] for item in data["by_stage"]],
            "overdue": [item["overdue"] for item in data["by_stage"]],
        },
        "trend": {
            "months": [item["month"] for item in months],
            "energised": [item["energised"] for item in months],
            "working_days_mean": [item["days_to_power"]["working_days"]["mean"] for item in months],
            "within_commitment": [
                None
                if item["within_commitment_share"] is None
                else round(item["within_commitment_share"] * 100, 1)
                for item in months
            ],
        },
        "bottleneck_stages": {
            "names": [frame.stage_name(item["stage"]) for item in stages],
            "excess_days": [item["excess_days"] for item in stages],
        },
        "bottleneck_units": {
            "names": [item["unit"] or "—" for item in units],
            "excess_days": [item["excess_days"] for item in units],
        },
    }


router = APIRouter(include_in_schema=False)


def panel(api: ApiContext, frame: PageFrame, chosen: OverviewFilter) -> tuple[dict[str, Any], dict[str, Any]]:
    """The figures panel's template context and its charts' data."""
    data = overview_data(
        api.engine, chosen, config=api.workflow(), target_days=api.target_days, now=api.clock()
    )
    context = {"data": data, "filter": chosen, "query": chosen.query()}
    return context, chart_data(data, frame)


@router.get("/ui/overview")
def overview(request: Request, chosen: Filters, api: Context, ui: Ui) -> HTMLResponse:
    context, charts = panel(api, ui.frame, chosen)
    extra = {"charts_data": charts, "classes": CUSTOMER_CLASSES, "live_events": list(CASE_EVENTS)}
    return render(ui.env, request, "overview.html", {**context, **extra})


@router.get("/ui/overview/figures")
def overview_figures(chosen: Filters, api: Context, ui: Ui) -> JSONResponse:
    context, charts = panel(api, ui.frame, chosen)
    html = ui.env.get_template("overview_figures.html").render(context)
    return JSONResponse({"html": html, "charts": charts}, headers={"Cache-Control": "no-store"})
