"""Page 4, the grid (电网资源) for planners: substations, feeders and transformers with load rate and open
capacity, as a table and as a scatter plot of the equipment's coordinates, under the planning alerts of the
load forecast (the earliest crossings; a row of the table with one is marked).

The figures are those of GET /v1/grid/open-capacity, read by the same OpenCapacityReader with the same
filters and cursor. The plot places each piece of equipment by its longitude and latitude on plain axes:
utility intranets reach no online map tiles, and the positions alone show where capacity is left.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from api.context import Database
from api.grid import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Capacity,
    open_capacity_after,
    open_capacity_cursor,
    parse_bbox,
)
from api.listing import CursorParam
from api.ui.context import Ui
from api.ui.labels import EQUIPMENT_KINDS
from api.ui.render import render
from feasibility.open_capacity import KIND_ORDER, EquipmentKind, OpenCapacity
from store.forecast import stored_alerts

# The planning alerts shown above the table: the earliest crossings, the rest counted.
SHOWN_ALERTS = 20


def plot_points(items: list[OpenCapacity]) -> list[dict[str, Any]]:
    """The equipment with a position, as the plot draws it; equipment without one is only in the table."""
    return [
        {
            "id": item.equipment_id,
            "name": item.name or item.equipment_id,
            "kind": item.kind.value,
            "kind_name": EQUIPMENT_KINDS[item.kind.value],
            "lon": item.location.lon,
            "lat": item.location.lat,
            "load_rate": item.load.load_rate,
            "open_kva": item.load.open_kva,
        }
        for item in items
        if item.location is not None
    ]


router = APIRouter(include_in_schema=False)


@router.get("/ui/grid")
def grid_page(
    request: Request,
    engine: Database,
    capacity: Capacity,
    ui: Ui,
    kind: Annotated[EquipmentKind | None, Query()] = None,
    voltage_kv: Annotated[float | None, Query(gt=0, le=1000)] = None,
    bbox: Annotated[str | None, Query(max_length=200)] = None,
    province: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> HTMLResponse:
    with engine.connect() as conn:
        items, last = capacity.read(
            conn,
            (kind,) if kind is not None else KIND_ORDER,
            bbox=parse_bbox(bbox) if bbox else None,
            voltage_kv=voltage_kv,
            province=province,
            after=open_capacity_after(cursor) if cursor else None,
            limit=limit,
        )
        alerts = stored_alerts(conn)
    kept = {
        "kind": kind.value if kind else None,
        "voltage_kv": f"{voltage_kv:g}" if voltage_kv is not None else None,
        "bbox": bbox,
        "province": province,
        "limit": str(limit) if limit != DEFAULT_LIMIT else None,
    }
    query = {name: value for name, value in kept.items() if value}
    following = open_capacity_cursor(last)
    return render(
        ui.env,
        request,
        "grid.html",
        {
            "items": items,
            "alerts": alerts[:SHOWN_ALERTS],
            "alert_count": len(alerts),
            "alerted": {alert.equipment_id: alert for alert in alerts},
            "points": plot_points(items),
            "kinds": EQUIPMENT_KINDS,
            "query": query,
            "next_query": {**query, "cursor": following} if following else None,
        },
    )
