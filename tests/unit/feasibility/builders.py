"""Grid, load and application builders for feasibility tests: equipment placed in metres around one site."""

from __future__ import annotations

import itertools
import math
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Connection

from canonical_model.application import (
    BusinessType,
    ConnectionApplication,
    CustomerClass,
    ImportanceGrade,
    SubmissionChannel,
)
from canonical_model.common import GeoPoint, UrbanRural
from canonical_model.grid import (
    DistributionTransformer,
    EquipmentStatus,
    Feeder,
    MainTransformer,
    Substation,
    SupplyAreaClass,
    TransformerOwnership,
)
from canonical_model.load import LoadPoint, LoadProfile, LoadSource
from canonical_model.planning import CapacityForecastAlert
from feasibility.config import Rules, load_feasibility_config
from feasibility.engine import Equipment, FeasibilityRequest
from feasibility.inputs import equipment_of
from feasibility.spatial import METRES_PER_DEGREE_LAT
from store.feasibility import capacity_reservations
from store.grid import bump_grid_revision, grid_equipment
from store.loads import FactorCurve, upsert_power_factors, upsert_profile

ROOT = Path(__file__).resolve().parents[3]
SITE = GeoPoint(lon=113.65, lat=34.75)
NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai
TODAY = date(2026, 11, 20)
_SEQUENCES = itertools.count(1)


def default_rules() -> Rules:
    """The rules of feasibility/rules.yaml, defaults section."""
    return load_feasibility_config(ROOT).default


def at(east_m: float, north_m: float) -> GeoPoint:
    """The point east_m east and north_m north of SITE."""
    lat = SITE.lat + north_m / METRES_PER_DEGREE_LAT
    lon = SITE.lon + east_m / (METRES_PER_DEGREE_LAT * math.cos(math.radians(SITE.lat)))
    return GeoPoint(lon=lon, lat=lat)


def substation(
    substation_id: str,
    east_m: float = 0,
    north_m: float = 0,
    *,
    area: SupplyAreaClass | None = None,
    spare_bays: int | None = None,
) -> Substation:
    return Substation(
        substation_id=substation_id,
        name=substation_id,
        status=EquipmentStatus.IN_SERVICE,
        voltage_kv=110,
        location=at(east_m, north_m),
        supply_area_class=area,
        spare_bays=spare_bays,
    )


def main_transformer(transformer_id: str, substation_id: str, rated_kva: float) -> MainTransformer:
    return MainTransformer(
        transformer_id=transformer_id,
        substation_id=substation_id,
        name=transformer_id,
        status=EquipmentStatus.IN_SERVICE,
        rated_capacity_kva=rated_kva,
        voltage_kv=110,
    )


def feeder(
    feeder_id: str,
    substation_id: str,
    east_m: float,
    north_m: float = 0,
    *,
    current_a: float | None = 485,
    ties: int | None = 1,
    area: SupplyAreaClass | None = None,
    bus_section: str | None = None,
) -> Feeder:
    return Feeder(
        feeder_id=feeder_id,
        substation_id=substation_id,
        name=feeder_id,
        status=EquipmentStatus.IN_SERVICE,
        voltage_kv=10,
        allowed_current_a=current_a,
        tie_switch_count=ties,
        location=at(east_m, north_m),
        supply_area_class=area,
        bus_section=bus_section,
    )


def transformer(
    transformer_id: str,
    feeder_id: str,
    substation_id: str,
    east_m: float,
    north_m: float = 0,
    *,
    rated_kva: float = 400,
    route_m: float | None = None,
) -> DistributionTransformer:
    return DistributionTransformer(
        transformer_id=transformer_id,
        feeder_id=feeder_id,
        substation_id=substation_id,
        name=transformer_id,
        status=EquipmentStatus.IN_SERVICE,
        voltage_kv=10,
        rated_capacity_kva=rated_kva,
        ownership=TransformerOwnership.PUBLIC,
        location=at(east_m, north_m),
        route_length_m=route_m,
    )


def lv_upstream() -> tuple[BaseModel, ...]:
    """What feeds transformers on F1: feeder F1 (8400.4 kVA, two ties) on S1 with two 50 MVA units."""
    return (
        substation("S1", 0, 600),
        main_transformer("S1-T1", "S1", 50_000),
        main_transformer("S1-T2", "S1", 50_000),
        feeder("F1", "S1", 300, ties=2),
    )


# Light loads above F1's transformers (F1 at 2222 kVA of 8400, S1 at 20 of 100 MVA): low-voltage
# verdicts then turn on the transformer alone.
LV_UPSTREAM_PEAKS_KW = {"F1": 2_000.0, "S1-T1": 9_000.0, "S1-T2": 9_000.0}


KINDS: dict[type[BaseModel], str] = {
    Substation: "substation",
    MainTransformer: "main_transformer",
    Feeder: "feeder",
    DistributionTransformer: "transformer",
}


def engine_view(*documents: Any) -> list[Equipment]:
    """The engine's equipment for canonical documents."""
    return [
        equipment_of(KINDS[type(doc)], doc.model_dump(mode="json", exclude_none=True)) for doc in documents
    ]


def store_grid(conn: Connection, *documents: Any) -> None:
    """Write canonical grid documents into the grid projection, as the grid consumer would."""
    for doc in documents:
        kind = KINDS[type(doc)]
        data = doc.model_dump(mode="json", exclude_none=True)
        equipment = equipment_of(kind, data)
        conn.execute(
            grid_equipment.insert().values(
                kind=kind,
                equipment_id=equipment.equipment_id,
                name=equipment.name,
                status=equipment.status,
                substation_id=data.get("substation_id"),
                feeder_id=data.get("feeder_id"),
                lon=equipment.lon,
                lat=equipment.lat,
                document=data,
                last_event_id=str(uuid.uuid4()),
                updated_at=NOW,
                revision=bump_grid_revision(conn),
            )
        )


def store_peak(
    conn: Connection,
    equipment_id: str,
    peak_kw: float,
    day: date = TODAY,
    good: int = 96,
    *,
    at: int | None = None,
) -> None:
    """A daily profile whose good points peak at peak_kw (the rest of the points flagged invalid).

    at: the one point of the peak, the others at a quarter of it; None: every good point is the peak.
    """
    points = [
        LoadPoint(load_kw=peak_kw if at in (None, n) else peak_kw / 4, quality=0) for n in range(good)
    ] + [LoadPoint(load_kw=peak_kw * 9, quality=0x80)] * (96 - good)
    profile = LoadProfile(
        equipment_id=equipment_id, data_date=day, source=LoadSource.DISPATCH, points=tuple(points)
    )
    store_profile(conn, profile)


def store_profile(conn: Connection, profile: LoadProfile) -> None:
    """Write a daily profile into the loads projection, as the loads consumer would."""
    upsert_profile(
        conn,
        profile.model_dump(mode="json", exclude_none=True),
        peak_kw=profile.peak_kw,
        peak_point=profile.peak_point,
        good_points=profile.good_points,
        event_source=f"/dispatch/{profile.source.value}",
        sequence=next(_SEQUENCES),
        event_id=str(uuid.uuid4()),
    )


def store_power_factors(
    conn: Connection, equipment_id: str, factors: dict[int, float | None], day: date = TODAY
) -> None:
    """A day's power-factor curve from the metering platform: 0.95, except the given points."""
    curve = FactorCurve(equipment_id, day, "total", "metering", [factors.get(n, 0.95) for n in range(96)])
    upsert_power_factors(
        conn,
        curve,
        event_source="/dispatch/factor_curve",
        sequence=next(_SEQUENCES),
        event_id=str(uuid.uuid4()),
    )


def application(
    application_no: str,
    kva: float,
    *,
    customer_class: CustomerClass = CustomerClass.LV_NON_RESIDENTIAL,
    grade: ImportanceGrade = ImportanceGrade.NONE,
    area: UrbanRural = UrbanRural.URBAN,
    stage: str = "acceptance",
    site: GeoPoint | None = SITE,
) -> ConnectionApplication:
    return ConnectionApplication(
        application_no=application_no,
        business_type=BusinessType.NEW_CONNECTION,
        customer_no=f"C{application_no}",
        requested_capacity_kva=kva,
        customer_class=customer_class,
        importance_grade=grade,
        site_location=site,
        channel=SubmissionChannel.ONLINE,
        submitted_at=NOW,
        updated_at=NOW,
        stage=stage,
        urban_rural=area,
    )


def request(
    kva: float,
    *,
    customer_class: CustomerClass = CustomerClass.LV_NON_RESIDENTIAL,
    grade: ImportanceGrade = ImportanceGrade.NONE,
    area: UrbanRural | None = UrbanRural.URBAN,
    industry: str | None = None,
) -> FeasibilityRequest:
    return FeasibilityRequest(
        requested_capacity_kva=kva,
        customer_class=customer_class,
        importance_grade=grade,
        site=SITE,
        urban_rural=area,
        industry_code=industry,
    )


def reservations(conn: Connection) -> list[tuple[str, str, float]]:
    """(application_no, equipment_id, kva) of every reservation, sorted."""
    table = capacity_reservations
    rows = conn.execute(sa.select(table.c.application_no, table.c.equipment_id, table.c.kva)).all()
    return sorted((row.application_no, row.equipment_id, row.kva) for row in rows)


def feeder_alert(
    equipment_id: str, month: str, *, rule: str = "feeder_load_rate", rate: float = 0.7
) -> CapacityForecastAlert:
    """A planning alert of a 485 A feeder (8400.4 kVA): 5100 kVA measured + 900 kVA of pipeline = 6000 kVA
    forecast for `month`, over its `rule` limit of `rate`."""
    return CapacityForecastAlert(
        equipment_id=equipment_id,
        equipment_kind="feeder",
        crossing_month=month,
        months_ahead=8,
        limit_rule=rule,
        limit_rate=rate,
        capacity_kva=8400.4,
        limit_kva=round(8400.4 * rate, 1),
        peak_kva=6000.0,
        measured_kva=5100.0,
        pipeline_kva=900.0,
        pipeline_share=0.15,
        intervals=[],
        model="MSTL(12)+ETS(A,N,N)",
        province="default",
        forecast_at=NOW,
    )


def store_one_transformer_grid(
    conn: Connection, *, transformer_kw: float, feeder_kw: float, area: SupplyAreaClass | None = None
) -> None:
    """S1 (two 50 MVA units at 9,000 kW each, class `area`) feeding F1 (485 A, one tie) feeding T1 (400 kVA),
    with the day's peaks of T1 and F1."""
    store_grid(
        conn,
        substation("S1", 0, 600, area=area),
        main_transformer("S1-T1", "S1", 50_000),
        main_transformer("S1-T2", "S1", 50_000),
        feeder("F1", "S1", 300, ties=1),
        transformer("T1", "F1", "S1", 50, rated_kva=400),
    )
    peaks = {"T1": transformer_kw, "F1": feeder_kw, "S1-T1": 9_000.0, "S1-T2": 9_000.0}
    for equipment_id, peak_kw in peaks.items():
        store_peak(conn, equipment_id, peak_kw)
