"""The router: raw records to routed events, and parkable errors for records it cannot route."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from ground.errors import ConfigError, InvalidRecordError, MappingError, SchemaViolationError
from ground.settings import PROJECT_ROOT
from mappings.engine import Mapping
from pipeline.records import EventDraft, RawRecord
from pipeline.routing import NoRouteError, Router
from routes.table import load_routes
from tests.unit.mappings.samples import application_record, customer_record


@pytest.fixture(scope="module")
def router(shipped_mappings: dict[str, Mapping]) -> Router:
    return Router(load_routes(PROJECT_ROOT / "routes", shipped_mappings, root=PROJECT_ROOT), shipped_mappings)


def record(record_type: str, payload: dict[str, Any], key: str = "k") -> RawRecord:
    return RawRecord(
        system="marketing", record_type=record_type, key=key, payload=payload, position={"page": 1}
    )


def test_an_application_becomes_one_routed_event(
    router: Router, shipped_mappings: dict[str, Mapping]
) -> None:
    raw = record("application", application_record(), key="2611200001234")
    [event] = router.route(raw)
    assert event == EventDraft(
        route="marketing-application",
        event_type="cn.yekuo.application.changed.v1",
        exchange="yekuo.events",
        routing_key="application.changed.hv_single_source",
        subject="2611200001234",
        dataschema="urn:yekuo:schema:application.v1",
        source="/marketing/application",
        data=shipped_mappings["marketing/application"].apply(application_record()),
    )


def test_a_customer_becomes_one_routed_event(router: Router) -> None:
    [event] = router.route(record("customer", customer_record()))
    assert (event.route, event.routing_key, event.subject, event.dataschema, event.source) == (
        "marketing-customer",
        "customer.changed.general_commercial",
        "4130012345",
        "urn:yekuo:schema:customer.v1",
        "/marketing/customer",
    )
    assert event.data["category"] == "general_commercial"


def test_a_record_without_a_route_is_parkable(router: Router) -> None:
    raw = RawRecord(system="pms", record_type="pole", key="P1", payload={})
    with pytest.raises(NoRouteError) as caught:
        router.route(raw)
    assert isinstance(caught.value, InvalidRecordError)
    assert str(caught.value) == "no route for pms/pole"
    assert (caught.value.reason_code, caught.value.system, caught.value.record_type) == (
        "no_route",
        "pms",
        "pole",
    )


def test_mapping_failures_propagate(router: Router) -> None:
    with pytest.raises(MappingError, match="marketing/busi_type_code"):
        router.route(record("application", application_record(BUSI_TYPE_CODE="999")))
    with pytest.raises(SchemaViolationError, match="requested_capacity_kva"):
        router.route(record("application", application_record(APPLY_CAP=0)))


def test_several_routes_of_one_source_each_get_their_own_data(shipped_mappings: dict[str, Mapping]) -> None:
    [route] = [
        r for r in load_routes(PROJECT_ROOT / "routes", shipped_mappings) if r.record_type == "customer"
    ]
    audit = dataclasses.replace(route, name="audit", event_type="cn.yekuo.customer.audited.v1")
    router = Router([route, audit], shipped_mappings)
    first, second = router.route(record("customer", customer_record()))
    assert (first.route, second.route) == ("marketing-customer", "audit")
    assert first.data == second.data and first.data is not second.data
    assert router.routes_for("marketing", "customer") == (route, audit)
    assert router.routes_for("marketing", "application") == ()
    assert router.routes == (route, audit)


def test_a_router_refuses_routes_whose_mapping_it_lacks(shipped_mappings: dict[str, Mapping]) -> None:
    routes = load_routes(PROJECT_ROOT / "routes", shipped_mappings, root=PROJECT_ROOT)
    # The first route of the table, whichever file it comes from, names its own file and line.
    first = routes[0]
    where = re.escape(f"{first.file}:{first.line}")
    with pytest.raises(ConfigError, match=rf"{where}: route '{first.name}' uses unknown mapping"):
        Router(routes, {})
