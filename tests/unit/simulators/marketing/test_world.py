"""Tests of the marketing world: watermark paging, staged changes, copies, thread safety and writes."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta

import pytest

from ground.errors import ConfigError, SourceRejectedError
from simulators.marketing.seed import generate_world
from simulators.marketing.world import (
    FOUR_STEP_STATUSES,
    LEGACY_TIME_FORMAT,
    TWO_STEP_STATUSES,
    ApplicationRow,
    MarketingWorld,
    status_flow,
)

START = datetime(2026, 11, 2, 8, 30)


@pytest.fixture
def world() -> MarketingWorld:
    return generate_world(seed=3, customers=60, applications=400, start=START)


def _page_through(world: MarketingWorld, page_size: int) -> list[ApplicationRow]:
    seen: list[ApplicationRow] = []
    since_time: str | None = None
    since_key: str | None = None
    while True:
        rows, has_more = world.changed_applications(since_time, since_key, page_size)
        assert len(rows) <= page_size
        seen.extend(rows)
        if rows:
            since_time, since_key = rows[-1]["UPDATE_TIME"], rows[-1]["APP_NO"]
        if not has_more:
            return seen


def test_paging_smaller_than_a_burst_returns_every_application_once(world: MarketingWorld) -> None:
    bursts = Counter(row["UPDATE_TIME"] for row in world.all_applications())
    assert max(bursts.values()) > 2
    seen = _page_through(world, page_size=2)
    numbers = [row["APP_NO"] for row in seen]
    assert sorted(numbers) == sorted(row["APP_NO"] for row in world.all_applications())
    assert len(numbers) == len(set(numbers))
    keys = [(row["UPDATE_TIME"], row["APP_NO"]) for row in seen]
    assert keys == sorted(keys)


def test_a_time_only_watermark_would_lose_part_of_a_burst(world: MarketingWorld) -> None:
    rows = world.all_applications()
    burst_time, size = Counter(row["UPDATE_TIME"] for row in rows).most_common(1)[0]
    first_of_burst = next(row for row in rows if row["UPDATE_TIME"] == burst_time)
    after_key, _ = world.changed_applications(burst_time, first_of_burst["APP_NO"], 1000)
    same_second = [row for row in after_key if row["UPDATE_TIME"] == burst_time]
    assert len(same_second) == size - 1


def test_time_without_key_includes_the_whole_second(world: MarketingWorld) -> None:
    rows = world.all_applications()
    burst_time, size = Counter(row["UPDATE_TIME"] for row in rows).most_common(1)[0]
    listed, _ = world.changed_applications(burst_time, None, 1000)
    assert sum(1 for row in listed if row["UPDATE_TIME"] == burst_time) == size
    assert all(row["UPDATE_TIME"] >= burst_time for row in listed)


def test_has_more_is_false_on_an_exactly_full_last_page(world: MarketingWorld) -> None:
    rows, has_more = world.changed_applications(None, None, world.application_count)
    assert len(rows) == world.application_count
    assert has_more is False
    rows, has_more = world.changed_applications(None, None, world.application_count - 1)
    assert has_more is True


def test_apply_change_bumps_update_time_past_every_watermark(world: MarketingWorld) -> None:
    last = world.all_applications()[-1]
    target = world.all_applications()[0]
    changed = world.apply_change(target["APP_NO"], {"STATUS_CODE": "09", "APPLY_CAP": 12.0})
    one_second_later = datetime.strptime(last["UPDATE_TIME"], LEGACY_TIME_FORMAT) + timedelta(seconds=1)
    assert changed["UPDATE_TIME"] == one_second_later.strftime(LEGACY_TIME_FORMAT)
    rows, has_more = world.changed_applications(last["UPDATE_TIME"], last["APP_NO"], 10)
    assert [row["APP_NO"] for row in rows] == [target["APP_NO"]]
    assert rows[0]["STATUS_CODE"] == "09"
    assert rows[0]["APPLY_CAP"] == 12.0
    assert has_more is False
    assert world.application_count == 400


def test_apply_change_at_a_given_time(world: MarketingWorld) -> None:
    target = world.all_applications()[5]["APP_NO"]
    changed = world.apply_change(target, {"STATUS_CODE": "03"}, at=datetime(2027, 1, 4, 9, 0, 1))
    assert changed["UPDATE_TIME"] == "2027-01-04 09:00:01"
    assert world.all_applications()[-1]["APP_NO"] == target


@pytest.mark.parametrize("field", ["APP_NO", "UPDATE_TIME", "NO_SUCH_FIELD"])
def test_apply_change_refuses_fields_it_does_not_own(world: MarketingWorld, field: str) -> None:
    target = world.all_applications()[0]["APP_NO"]
    with pytest.raises(ConfigError, match=field):
        world.apply_change(target, {field: "x"})


def test_apply_change_refuses_an_unknown_application(world: MarketingWorld) -> None:
    with pytest.raises(ConfigError, match="'0000000000000' does not exist"):
        world.apply_change("0000000000000", {"STATUS_CODE": "02"})


def test_reads_are_copies(world: MarketingWorld) -> None:
    row = world.all_applications()[0]
    row["DOCUMENTS"].clear()
    row["STATUS_CODE"] = "99"
    again = world.application(row["APP_NO"])
    assert again is not None
    assert again["DOCUMENTS"]
    assert again["STATUS_CODE"] != "99"


def test_customers_keeps_the_order_asked_and_skips_unknown_numbers(world: MarketingWorld) -> None:
    numbers = sorted({row["CONS_NO"] for row in world.all_applications()})[:3]
    asked = [numbers[2], "4130000000", numbers[0], numbers[2]]
    assert [row["CONS_NO"] for row in world.customers(asked)] == [numbers[2], numbers[0]]
    assert world.customer("4130000000") is None


def test_duplicate_keys_are_refused(world: MarketingWorld) -> None:
    row = world.all_applications()[0]
    with pytest.raises(ConfigError, match=f"duplicate application APP_NO '{row['APP_NO']}'"):
        MarketingWorld([], [row, row])


def test_concurrent_changes_keep_the_listing_consistent(world: MarketingWorld) -> None:
    targets = [row["APP_NO"] for row in world.all_applications()[:80]]

    def change(numbers: list[str]) -> None:
        for number in numbers:
            world.apply_change(number, {"STATUS_CODE": "08"})

    threads = [threading.Thread(target=change, args=(targets[index::4],)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    listed = _page_through(world, page_size=7)
    assert len(listed) == 400
    assert len({row["APP_NO"] for row in listed}) == 400
    assert {row["APP_NO"] for row in listed[-80:]} == set(targets)
    assert len({row["UPDATE_TIME"] for row in listed[-80:]}) == 80


# Writes from other systems: online creation, stage updates, feasibility results.

NEW_APPLICATION = {
    "BUSI_TYPE_CODE": "101",
    "APPLY_CAP": "12",
    "CUST_CLASS_CODE": "01",
    "ELEC_ADDR": "南阳市卧龙区人民路8号",
    "LONGITUDE": "112.53",
    "LATITUDE": "33.0",
    "CHANNEL_CODE": "02",
    "ORG_NO": "41401",
    "DOCUMENTS": [{"DOC_TYPE_CODE": "01", "DOC_NAME": "身份证明"}],
}
NEW_CUSTOMER = {
    "CONS_NAME": "张伟",
    "ELEC_TYPE_CODE": "100",
    "CERT_TYPE_CODE": "01",
    "CERT_NO": "411303199001011234",
    "CONTACTS": [{"CONTACT_NAME": "张伟", "MOBILE": "13803770001", "CONTACT_TYPE": "01"}],
}


def test_create_registers_the_application_and_a_new_customer_after_every_change(
    world: MarketingWorld,
) -> None:
    newest = world.latest_update_time()
    row, created = world.create_application("req-1", NEW_APPLICATION, NEW_CUSTOMER)
    assert created is True
    assert (row["STATUS_CODE"], row["VOLT_CODE"], row["APPLY_CAP"], row["IMPORTANCE_CODE"]) == (
        "01",
        "AC02202",
        12.0,
        "00",
    )
    assert row["UPDATE_TIME"] == row["HANDLE_TIME"] and newest is not None and row["UPDATE_TIME"] > newest
    assert row["DOCUMENTS"] == [{"DOC_TYPE_CODE": "01", "DOC_NAME": "身份证明", "RECEIVED_FLAG": "1"}]
    customer = world.customer(row["CONS_NO"])
    assert customer is not None
    assert (customer["CONS_NAME"], customer["STATUS_CODE"], customer["CERT_NO"]) == (
        "张伟",
        "2",
        NEW_CUSTOMER["CERT_NO"],
    )
    assert world.application(row["APP_NO"]) == row
    assert world.all_applications()[-1] == row
    assert world.created_by("req-1") == row["APP_NO"]
    assert world.created_applications() == [row["APP_NO"]]


def test_a_repeated_create_returns_the_first_application_and_creates_nothing(world: MarketingWorld) -> None:
    first, _ = world.create_application("req-1", NEW_APPLICATION, NEW_CUSTOMER)
    count = world.application_count
    again, created = world.create_application("req-1", {**NEW_APPLICATION, "APPLY_CAP": "99"}, NEW_CUSTOMER)
    assert (again, created) == (first, False)
    assert world.application_count == count


def test_create_for_an_existing_customer(world: MarketingWorld) -> None:
    cons_no = world.all_applications()[0]["CONS_NO"]
    row, _ = world.create_application("req-2", {**NEW_APPLICATION, "CONS_NO": cons_no})
    assert row["CONS_NO"] == cons_no


@pytest.mark.parametrize(
    ("application", "customer", "message"),
    [
        (
            {**NEW_APPLICATION, "VOLT_CODE": "AC99999"},
            NEW_CUSTOMER,
            "VOLT_CODE 'AC99999' is not a valid code",
        ),
        (
            {k: v for k, v in NEW_APPLICATION.items() if k != "ORG_NO"},
            NEW_CUSTOMER,
            "required fields missing: ORG_NO",
        ),
        ({**NEW_APPLICATION, "APPLY_CAP": "0"}, NEW_CUSTOMER, "APPLY_CAP must be positive"),
        ({**NEW_APPLICATION, "APPLY_CAP": "lots"}, NEW_CUSTOMER, "APPLY_CAP 'lots' is not a number"),
        (NEW_APPLICATION, None, "CONS_NO or a new customer is required"),
        ({**NEW_APPLICATION, "CONS_NO": "4130000000"}, None, "customer not found: 4130000000"),
        ({**NEW_APPLICATION, "CONS_NO": "4130000000"}, NEW_CUSTOMER, "not both"),
        (
            NEW_APPLICATION,
            {**NEW_CUSTOMER, "CERT_TYPE_CODE": "77"},
            "CERT_TYPE_CODE '77' is not a valid code",
        ),
        (NEW_APPLICATION, {**NEW_CUSTOMER, "CERT_NO": " "}, "required fields missing: CERT_NO"),
        ({**NEW_APPLICATION, "LOAD_TYPE": "07"}, NEW_CUSTOMER, "LOAD_TYPE '07' is not a valid code"),
    ],
)
def test_create_refuses_what_the_marketing_system_would(
    world: MarketingWorld,
    application: dict[str, object],
    customer: dict[str, object] | None,
    message: str,
) -> None:
    count = world.application_count
    with pytest.raises(SourceRejectedError, match=message):
        world.create_application("req-x", application, customer)
    assert world.application_count == count
    assert world.created_by("req-x") is None


def test_update_stage_moves_the_application_once_per_request(world: MarketingWorld) -> None:
    row = next(
        r
        for r in world.all_applications()
        if status_flow(r) == TWO_STEP_STATUSES and r["STATUS_CODE"] == "01"
    )
    changes: list[ApplicationRow] = []
    world.subscribe(changes.append)
    moved, applied = world.update_stage(
        "w-1", row["APP_NO"], "09", "2026-12-01 10:00:00", remark="PMS", operator="41401"
    )
    assert applied is True and moved["STATUS_CODE"] == "09" and moved["UPDATE_TIME"] > row["UPDATE_TIME"]
    again, applied_again = world.update_stage("w-1", row["APP_NO"], "09", "2026-12-01 10:00:00")
    assert applied_again is False and again == moved
    same, applied_same = world.update_stage("w-2", row["APP_NO"], "09", "2026-12-01 10:05:00")
    assert applied_same is False and same == moved
    assert [change["STATUS_CODE"] for change in changes] == ["09"]
    assert [
        (w.request_id, w.status_code, w.applied, w.remark) for w in world.stage_writes(row["APP_NO"])
    ] == [
        ("w-1", "09", True, "PMS"),
        ("w-2", "09", False, None),
    ]


@pytest.mark.parametrize(
    ("app_no", "status", "message"),
    [("4130000000", "09", "application not found: 4130000000"), (None, "05", "STATUS_CODE 05 is not a step")],
)
def test_update_stage_refuses_unknown_applications_and_foreign_steps(
    world: MarketingWorld, app_no: str | None, status: str, message: str
) -> None:
    row = next(r for r in world.all_applications() if status_flow(r) == TWO_STEP_STATUSES)
    with pytest.raises(SourceRejectedError, match=message):
        world.update_stage("w-9", app_no or row["APP_NO"], status, "2026-12-01 10:00:00")
    assert world.stage_writes() == []


def test_a_request_id_serves_one_operation(world: MarketingWorld) -> None:
    row = world.all_applications()[0]
    world.create_application("shared", NEW_APPLICATION, NEW_CUSTOMER)
    with pytest.raises(SourceRejectedError, match="request id shared was already used for CreateApplication"):
        world.update_stage("shared", row["APP_NO"], row["STATUS_CODE"], "2026-12-01 10:00:00")


def test_feasibility_results_are_kept_once_per_request(world: MarketingWorld) -> None:
    app_no = world.all_applications()[0]["APP_NO"]
    assert (
        world.record_feasibility("f-1", app_no, "02", "2026-12-01 10:00:00", supply_volt_code="AC00101")
        is True
    )
    assert world.record_feasibility("f-1", app_no, "02", "2026-12-01 10:00:00") is False
    [result] = world.feasibility_results(app_no)
    assert (result.verdict_code, result.supply_volt_code) == ("02", "AC00101")
    with pytest.raises(SourceRejectedError, match="verdict '09' is not a valid code"):
        world.record_feasibility("f-2", app_no, "09", "2026-12-01 10:00:00")
    with pytest.raises(SourceRejectedError, match="VOLT_CODE 'AC0' is not a valid code"):
        world.record_feasibility("f-3", app_no, "01", "2026-12-01 10:00:00", supply_volt_code="AC0")
    with pytest.raises(SourceRejectedError, match="application not found: 1"):
        world.record_feasibility("f-4", "1", "01", "2026-12-01 10:00:00")


def test_listeners_hear_every_change_as_a_copy(world: MarketingWorld) -> None:
    heard: list[ApplicationRow] = []
    world.subscribe(heard.append)
    first = world.all_applications()[0]["APP_NO"]
    world.apply_change(first, {"ELEC_ADDR": "新地址"})
    world.advance(first)
    created, _ = world.create_application("req-3", NEW_APPLICATION, NEW_CUSTOMER)
    assert [row["APP_NO"] for row in heard] == [first, first, created["APP_NO"]]
    heard[0]["ELEC_ADDR"] = "changed by a listener"
    stored = world.application(first)
    assert stored is not None and stored["ELEC_ADDR"] == "新地址"


def test_an_added_application_is_listed_after_everything_read_so_far(world: MarketingWorld) -> None:
    newest = world.all_applications()[-1]
    read_to = (newest["UPDATE_TIME"], newest["APP_NO"])
    later = (datetime.strptime(newest["UPDATE_TIME"], LEGACY_TIME_FORMAT) + timedelta(seconds=5)).strftime(
        LEGACY_TIME_FORMAT
    )
    added = ApplicationRow(**{**newest, "APP_NO": "2611269999999", "UPDATE_TIME": later})
    seen: list[str] = []
    world.subscribe(lambda row: seen.append(row["APP_NO"]))
    world.add_application(added)
    rows, has_more = world.changed_applications(*read_to, page_size=10)
    assert [row["APP_NO"] for row in rows] == ["2611269999999"] and not has_more
    assert seen == ["2611269999999"]
    assert world.application_count == 401


def test_an_application_that_would_be_listed_before_read_changes_is_refused(world: MarketingWorld) -> None:
    newest = world.all_applications()[-1]
    earlier = ApplicationRow(**{**newest, "APP_NO": "0000000000001"})
    with pytest.raises(ConfigError, match="would be listed before changes already listed"):
        world.add_application(earlier)
    later = (datetime.strptime(newest["UPDATE_TIME"], LEGACY_TIME_FORMAT) + timedelta(seconds=1)).strftime(
        LEGACY_TIME_FORMAT
    )
    orphan = ApplicationRow(
        **{**newest, "APP_NO": "2611260000002", "UPDATE_TIME": later, "CONS_NO": "4130000000"}
    )
    with pytest.raises(ConfigError, match="no customer '4130000000'"):
        world.add_application(orphan)
    assert world.application_count == 400


def _open_in(world: MarketingWorld, length: int) -> ApplicationRow:
    """An open application whose process has at least `length` steps, moved to its third step."""
    row = next(
        r for r in world.all_applications() if len(status_flow(r)) >= length and r["STATUS_CODE"] == "01"
    )
    world.advance(row["APP_NO"])
    return world.advance(row["APP_NO"])


def test_send_back_returns_to_an_earlier_step_with_its_reason_and_advance_clears_it(
    world: MarketingWorld,
) -> None:
    moved = _open_in(world, 5)
    flow = status_flow(moved)
    assert moved["STATUS_CODE"] == flow[2]
    back = world.send_back(moved["APP_NO"], flow[0], "02")
    assert (back["STATUS_CODE"], back["RETURN_REASON_CODE"]) == (flow[0], "02")
    assert back["UPDATE_TIME"] > moved["UPDATE_TIME"]
    again = world.advance(moved["APP_NO"])
    assert (again["STATUS_CODE"], again["RETURN_REASON_CODE"]) == (flow[1], None)
    without = world.send_back(moved["APP_NO"], flow[0], None)
    assert without["RETURN_REASON_CODE"] is None


@pytest.mark.parametrize(
    ("to_status", "cause", "message"),
    [
        ("99", "01", r"STATUS_CODE '99' is not a step of its process"),
        ("CURRENT", "01", r"a send-back goes to an earlier step than"),
        ("LATER", "01", r"a send-back goes to an earlier step than"),
        ("FIRST", "05", r"RETURN_REASON_CODE '05' is not one of 01, 02, 03, 04"),
    ],
)
def test_send_back_refuses_a_bad_target_or_reason(
    world: MarketingWorld, to_status: str, cause: str, message: str
) -> None:
    moved = _open_in(world, 5)
    flow = status_flow(moved)
    target = {"CURRENT": flow[2], "LATER": flow[3], "FIRST": flow[0]}.get(to_status, to_status)
    with pytest.raises(ConfigError, match=message):
        world.send_back(moved["APP_NO"], target, cause)
    assert world.application(moved["APP_NO"]) == moved


def test_send_back_refuses_an_unknown_application_and_a_time_before_the_last_change(
    world: MarketingWorld,
) -> None:
    with pytest.raises(ConfigError, match="'0000000000000' does not exist"):
        world.send_back("0000000000000", "01", "01")
    moved = _open_in(world, 5)
    before = datetime.strptime(moved["UPDATE_TIME"], LEGACY_TIME_FORMAT) - timedelta(seconds=1)
    with pytest.raises(ConfigError, match="before its last change"):
        world.send_back(moved["APP_NO"], "01", "01", at=before)


@pytest.mark.parametrize(("close", "status"), [("withdraw", "11"), ("cancel", "12")])
def test_withdraw_and_cancel_close_an_open_application(
    world: MarketingWorld, close: str, status: str
) -> None:
    moved = _open_in(world, 4)
    at = datetime.strptime(moved["UPDATE_TIME"], LEGACY_TIME_FORMAT) + timedelta(days=3)
    closed = getattr(world, close)(moved["APP_NO"], at=at)
    assert (closed["STATUS_CODE"], closed["UPDATE_TIME"]) == (status, at.strftime(LEGACY_TIME_FORMAT))
    for again in (world.withdraw, world.cancel):
        with pytest.raises(ConfigError, match=f"is closed \\(STATUS_CODE {status}\\) and cannot be"):
            again(moved["APP_NO"])
    with pytest.raises(ConfigError, match="is closed"):
        world.send_back(moved["APP_NO"], "01", "01")
    with pytest.raises(ConfigError, match="no advance"):
        world.advance(moved["APP_NO"])


def test_an_archived_application_cannot_be_withdrawn(world: MarketingWorld) -> None:
    row = next(r for r in world.all_applications() if status_flow(r) == TWO_STEP_STATUSES)
    while world.application(row["APP_NO"])["STATUS_CODE"] != "10":  # type: ignore[index]
        world.advance(row["APP_NO"])
    with pytest.raises(ConfigError, match=r"is closed \(STATUS_CODE 10\) and cannot be withdrawn"):
        world.withdraw(row["APP_NO"])


def test_a_stage_another_system_writes_clears_the_return_reason(world: MarketingWorld) -> None:
    moved = _open_in(world, 5)
    flow = status_flow(moved)
    world.send_back(moved["APP_NO"], flow[0], "04")
    written, applied = world.update_stage("w-reason", moved["APP_NO"], flow[1], "2026-12-01 10:00:00")
    assert applied and (written["STATUS_CODE"], written["RETURN_REASON_CODE"]) == (flow[1], None)


def test_an_application_created_online_keeps_its_declared_trade_code(world: MarketingWorld) -> None:
    declared, _ = world.create_application("req-t", {**NEW_APPLICATION, "TRADE_CODE": "H6210"}, NEW_CUSTOMER)
    undeclared, _ = world.create_application("req-u", NEW_APPLICATION, NEW_CUSTOMER)
    assert declared["TRADE_CODE"] == "H6210"
    assert undeclared["TRADE_CODE"] is None
    assert list(declared).index("TRADE_CODE") == list(declared).index("URBAN_RURAL_FLAG") + 1


def test_an_application_created_online_keeps_its_load_type_after_its_end_date(world: MarketingWorld) -> None:
    pile, _ = world.create_application("req-ev", {**NEW_APPLICATION, "LOAD_TYPE": "01"}, NEW_CUSTOMER)
    unstated, _ = world.create_application("req-none", NEW_APPLICATION, NEW_CUSTOMER)
    assert (pile["LOAD_TYPE"], unstated["LOAD_TYPE"]) == ("01", None)
    assert list(pile).index("LOAD_TYPE") == list(pile).index("TEMP_END_DATE") + 1


@pytest.mark.parametrize(
    ("capacity", "flag", "flow"),
    [
        (160.0, "1", TWO_STEP_STATUSES),  # 160 kVA x 0.9 = 144 kW <= 160 kW in a city: 三零
        (100.0, "2", TWO_STEP_STATUSES),  # 90 kW <= 100 kW rural
        (125.0, "2", FOUR_STEP_STATUSES),  # 112.5 kW > 100 kW rural: 10 kV, as the hub's engine says
    ],
)
def test_low_voltage_non_residential_flows_follow_the_kw_ceiling(
    world: MarketingWorld, capacity: float, flag: str, flow: tuple[str, ...]
) -> None:
    row = next(
        r for r in world.all_applications() if r["CUST_CLASS_CODE"] == "02" and r["IMPORTANCE_CODE"] == "00"
    )
    assert status_flow(ApplicationRow(**{**row, "APPLY_CAP": capacity, "URBAN_RURAL_FLAG": flag})) == flow
