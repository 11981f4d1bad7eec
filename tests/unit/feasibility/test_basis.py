"""The one low/high-voltage basis: the engine's voltage and the workflow's flow agree on every application."""

from __future__ import annotations

import random

import pytest

from canonical_model.application import ConnectionApplication, CustomerClass, ImportanceGrade
from canonical_model.common import UrbanRural
from feasibility.basis import supply_class, supply_level
from feasibility.config import FeasibilityConfig, load_feasibility_config
from feasibility.engine import reach
from feasibility.service import request_of
from ground.settings import PROJECT_ROOT
from tests.integration.test_workflow_acceptance import simulate
from workflow.config import WorkflowConfig, load_workflow_config

LV_CLASSES = {CustomerClass.LV_RESIDENTIAL.value, CustomerClass.LV_NON_RESIDENTIAL.value}


@pytest.fixture(scope="module")
def rules() -> FeasibilityConfig:
    return load_feasibility_config(PROJECT_ROOT)


@pytest.fixture(scope="module")
def workflow() -> WorkflowConfig:
    return load_workflow_config(PROJECT_ROOT)


@pytest.mark.parametrize(
    ("kva", "area", "low"),
    [
        # 177 kVA x 0.9 = 159.3 kW <= 160 kW urban; 178 x 0.9 = 160.2 kW > 160.
        (177, UrbanRural.URBAN, True),
        (178, UrbanRural.URBAN, False),
        # 111 kVA x 0.9 = 99.9 kW <= 100 kW rural; 112 x 0.9 = 100.8 kW > 100.
        (111, UrbanRural.RURAL, True),
        (112, UrbanRural.RURAL, False),
        # An unknown area counts as rural.
        (112, None, False),
        # 160 kVA is 144 kW: low voltage in a city, not in the country (the old kVA reading said both).
        (160, UrbanRural.URBAN, True),
        (160, UrbanRural.RURAL, False),
    ],
)
def test_low_voltage_is_kw_with_the_power_factor_against_the_ceiling(
    rules: FeasibilityConfig, kva: float, area: UrbanRural | None, low: bool
) -> None:
    level = supply_level(rules.default, CustomerClass.LV_NON_RESIDENTIAL, ImportanceGrade.NONE, kva, area)
    assert level.low_voltage is low
    assert level.kw == pytest.approx(kva * 0.9)


def test_a_requested_voltage_is_honoured_only_when_valid(rules: FeasibilityConfig) -> None:
    default = rules.default
    lv = CustomerClass.LV_NON_RESIDENTIAL
    # 50 kVA may ask for 10 kV (up to 10,000 kVA): honoured, high voltage.
    asked = supply_level(default, lv, ImportanceGrade.NONE, 50, UrbanRural.URBAN, 10)
    assert (asked.low_voltage, asked.requested_valid) == (False, True)
    assert supply_class(default, lv, ImportanceGrade.NONE, 50, UrbanRural.URBAN, 10) is (
        CustomerClass.HV_SINGLE_SOURCE
    )
    # 500 kVA = 450 kW cannot have 0.38 kV: not valid, stays high voltage.
    large = supply_level(default, lv, ImportanceGrade.NONE, 500, UrbanRural.URBAN, 0.38)
    assert (large.low_voltage, large.requested_valid) == (False, False)
    # 12,000 kVA is beyond the 10 kV band (10,000): 10 kV not valid.
    assert not supply_level(
        default, CustomerClass.HV_SINGLE_SOURCE, ImportanceGrade.NONE, 12000, None, 10
    ).requested_valid
    # A first-grade important customer needs two sources from two substations: high voltage, dual source.
    assert (
        supply_class(default, lv, ImportanceGrade.FIRST, 50, UrbanRural.URBAN) is CustomerClass.HV_DUAL_SOURCE
    )


def _applications() -> list[ConnectionApplication]:
    """The 1,000 applications of the workflow acceptance scenario, and the same again with capacities
    drawn around the low-voltage ceilings, in both areas and with some requested voltages."""
    found: dict[str, ConnectionApplication] = {}
    for sim in simulate(1000, seed=20261126):
        first = next(event for event in sim.events if event.type.endswith(".changed.v1"))
        found[sim.number] = ConnectionApplication.model_validate(first.data)
    rng = random.Random(7)
    varied = []
    for application in found.values():
        varied.append(
            application.model_copy(
                update={
                    "application_no": f"V{application.application_no}",
                    "requested_capacity_kva": float(rng.choice([8, 50, 100, 111, 112, 160, 177, 178, 630])),
                    "urban_rural": rng.choice([UrbanRural.URBAN, UrbanRural.RURAL, None]),
                    "requested_voltage_kv": rng.choice([None, None, 0.38, 10.0]),
                }
            )
        )
    return [*found.values(), *varied]


def test_workflow_and_feasibility_agree_on_low_voltage_for_every_scenario_application(
    rules: FeasibilityConfig, workflow: WorkflowConfig
) -> None:
    applications = _applications()
    assert len(applications) == 2000
    seen = {(True, True): 0, (False, False): 0}
    for application in applications:
        flow = workflow.flow_for(application)
        workflow_low = flow.classes <= LV_CLASSES
        level, _ = reach(request_of(application), rules.rules_for(application.org_no))
        engine_low = level == "lv"
        assert workflow_low == engine_low, (
            f"{application.application_no}: flow {flow.name}, engine level {level}"
        )
        seen[(workflow_low, engine_low)] += 1
    # Both sides occur, so the agreement is not vacuous.
    assert seen[(True, True)] > 100 and seen[(False, False)] > 100
