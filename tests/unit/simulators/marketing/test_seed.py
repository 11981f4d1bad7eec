"""Tests of the seeded marketing world generator: reproducible, realistic, with timestamp bursts."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime

import pytest

from ground.errors import ConfigError
from simulators.marketing.seed import (
    generate_rows,
    generate_world,
    load_type_code,
    resident_id,
    social_credit_code,
)
from simulators.marketing.world import APPLICATION_FIELDS, CUSTOMER_FIELDS, MarketingWorld

START = datetime(2026, 11, 2, 8, 30)
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@pytest.fixture(scope="module")
def world() -> MarketingWorld:
    return generate_world(seed=11, customers=400, applications=1500, start=START)


def _customers(world: MarketingWorld) -> dict[str, dict[str, object]]:
    applications = world.all_applications()
    numbers = sorted({application["CONS_NO"] for application in applications})
    return {row["CONS_NO"]: dict(row) for row in world.customers(numbers)}


def _valid_resident_id(number: str) -> bool:
    weights = [2 ** (17 - position) % 11 for position in range(17)]
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], weights, strict=True))
    return number[17] == "10X98765432"[total % 11]


def _valid_social_credit_code(code: str) -> bool:
    weights = [3**position % 31 for position in range(17)]
    total = sum(USCC_CHARS.index(char) * weight for char, weight in zip(code[:17], weights, strict=True))
    return code[17] == USCC_CHARS[(31 - total % 31) % 31]


def test_same_seed_gives_the_same_world() -> None:
    first = generate_world(seed=5, customers=50, applications=200, start=START)
    second = generate_world(seed=5, customers=50, applications=200, start=START)
    assert first.all_applications() == second.all_applications()
    numbers = [application["CONS_NO"] for application in first.all_applications()]
    assert first.customers(numbers) == second.customers(numbers)


def test_another_seed_gives_another_world() -> None:
    first = generate_world(seed=5, customers=50, applications=200, start=START)
    other = generate_world(seed=6, customers=50, applications=200, start=START)
    assert first.all_applications() != other.all_applications()


def test_world_has_the_requested_size(world: MarketingWorld) -> None:
    assert world.customer_count == 400
    assert world.application_count == 1500


def test_update_times_come_in_bursts_sharing_one_second(world: MarketingWorld) -> None:
    per_second = Counter(application["UPDATE_TIME"] for application in world.all_applications())
    bursts = [size for size in per_second.values() if size >= 3]
    assert len(bursts) >= 20
    assert max(bursts) >= 40


def test_records_carry_every_legacy_field(world: MarketingWorld) -> None:
    application = world.all_applications()[0]
    assert tuple(application) == APPLICATION_FIELDS
    customer = world.customer(application["CONS_NO"])
    assert customer is not None
    assert tuple(customer) == CUSTOMER_FIELDS


def test_identifiers_have_legacy_shapes(world: MarketingWorld) -> None:
    applications = world.all_applications()
    assert len({application["APP_NO"] for application in applications}) == len(applications)
    for application in applications:
        assert re.fullmatch(r"\d{13}", application["APP_NO"])
        assert re.fullmatch(r"413\d{7}", application["CONS_NO"])
        assert application["HANDLE_TIME"] <= application["UPDATE_TIME"]
        assert application["UPDATE_TIME"] >= "2026-11-02 08:30:00"


def test_customer_classes_are_mostly_residential(world: MarketingWorld) -> None:
    classes = Counter(application["CUST_CLASS_CODE"] for application in world.all_applications())
    assert classes["01"] > 0.6 * 1500
    assert classes["02"] > classes["03"] + classes["04"] > 0


def test_capacities_and_voltages_fit_the_customer_class(world: MarketingWorld) -> None:
    customers = _customers(world)
    expected = {
        "01": ((4, 16), {"AC02202", "AC03802"}),
        "02": ((20, 160), {"AC03802"}),
        "03": ((250, 8000), {"AC00101"}),
        "04": ((250, 8000), {"AC00101"}),
    }
    for application in world.all_applications():
        (low, high), voltages = expected[application["CUST_CLASS_CODE"]]
        assert low <= application["APPLY_CAP"] <= high, application
        assert application["VOLT_CODE"] in voltages, application
        customer = customers[application["CONS_NO"]]
        assert low <= float(str(customer["CONTRACT_CAP"])) <= high
        if application["CUST_CLASS_CODE"] in ("01", "02"):
            assert application["IMPORTANCE_CODE"] == "00"


def test_dual_source_customers_are_larger_and_mostly_important(world: MarketingWorld) -> None:
    applications = world.all_applications()
    dual = [application for application in applications if application["CUST_CLASS_CODE"] == "04"]
    single = [application for application in applications if application["CUST_CLASS_CODE"] == "03"]
    assert min(application["APPLY_CAP"] for application in dual) >= 1250
    assert min(application["APPLY_CAP"] for application in single) < 1250
    important = [application for application in dual if application["IMPORTANCE_CODE"] != "00"]
    assert len(important) > len(dual) / 2


def test_personal_data_looks_real(world: MarketingWorld) -> None:
    for customer in _customers(world).values():
        cert_no = str(customer["CERT_NO"])
        if customer["CERT_TYPE_CODE"] == "01":
            assert re.fullmatch(r"4113\d{13}[\dX]", cert_no)
            assert _valid_resident_id(cert_no)
        else:
            assert re.fullmatch(rf"91411\d{{3}}[{USCC_CHARS}]{{10}}", cert_no)
            assert _valid_social_credit_code(cert_no)
        contacts = customer["CONTACTS"]
        assert isinstance(contacts, list) and contacts
        for contact in contacts:
            assert re.fullmatch(r"1[3-9]\d{9}", contact["MOBILE"])
        assert (customer["BANK_ACCT"] is None) == (customer["BANK_NAME"] is None)


def test_sites_lie_around_nanyang(world: MarketingWorld) -> None:
    located = [a for a in world.all_applications() if a["LONGITUDE"] is not None]
    assert len(located) > 0.9 * 1500
    for application in located:
        assert 112.4 <= float(str(application["LONGITUDE"])) <= 112.7
        assert 32.9 <= float(str(application["LATITUDE"])) <= 33.1
        assert str(application["ELEC_ADDR"]).startswith("南阳市")


def test_check_characters_match_published_examples() -> None:
    # GB 11643 and GB 32100 use these numbers as their examples.
    assert resident_id("110105", datetime(1949, 12, 31), 2) == "11010519491231002X"
    assert _valid_social_credit_code("91350100M000100Y43")
    code = social_credit_code("411302", "12345678")
    assert code[:17] == "91411302123456788"
    assert _valid_social_credit_code(code)


def test_rejects_a_world_without_customers() -> None:
    with pytest.raises(ConfigError, match="customers must be at least 1, got 0"):
        generate_world(seed=1, customers=0, applications=10, start=START)


def test_applications_may_share_customers_unless_each_is_to_have_its_own() -> None:
    _, shared = generate_rows(3, 40, 120)
    assert len({row["CONS_NO"] for row in shared}) < 120  # 120 applications among 40 customers
    customers, own = generate_rows(3, 150, 120, distinct_customers=True)
    assert len({row["CONS_NO"] for row in own}) == 120
    assert {row["CONS_NO"] for row in own} <= {customer["CONS_NO"] for customer in customers}
    with pytest.raises(
        ConfigError, match="121 applications need as many customers of their own, but there are 120"
    ):
        generate_rows(3, 120, 121, distinct_customers=True)


def test_some_residential_applications_are_charging_piles_and_winter_ones_heat_pumps(
    world: MarketingWorld,
) -> None:
    applications = world.all_applications()
    by_type = Counter(application["LOAD_TYPE"] for application in applications)
    assert set(by_type) == {"00", "01", "02"}
    stated = [application for application in applications if application["LOAD_TYPE"] != "00"]
    assert all(
        application["CUST_CLASS_CODE"] == "01" and application["BUSI_TYPE_CODE"] in ("101", "111")
        for application in stated
    )
    residential = [
        application
        for application in applications
        if application["CUST_CLASS_CODE"] == "01" and application["BUSI_TYPE_CODE"] in ("101", "111")
    ]
    # About 15% of urban and 5% of rural residential ones are piles: between 5% and 15% of all of them.
    assert 0.05 < by_type["01"] / len(residential) < 0.15


def test_heat_pumps_are_applied_for_only_in_the_heating_months() -> None:
    # A rural household's own draw below 0.05 is a charging pile; from 0.05 to 0.25 it is a heat pump in the
    # heating months and general load otherwise: about 20% of 300 numbers, 60, are heat pumps in December.
    winter, summer = datetime(2026, 12, 10, 9, 0), datetime(2026, 6, 10, 9, 0)
    numbers = [f"26121000{n:05d}" for n in range(300)]
    pumps = [app_no for app_no in numbers if load_type_code(app_no, "01", "101", "2", winter) == "02"]
    assert 30 < len(pumps) < 90
    assert all(load_type_code(app_no, "01", "101", "2", summer) == "00" for app_no in pumps)
    assert load_type_code(pumps[0], "03", "101", "2", winter) == "00"  # high voltage: not stated
    assert load_type_code(pumps[0], "01", "113", "2", winter) == "00"  # a reduction adds no equipment
