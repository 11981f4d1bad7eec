"""Tests of the marketing world: composite-watermark paging, staged changes, copies and thread safety."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta

import pytest

from simulators.marketing.seed import generate_world
from simulators.marketing.world import LEGACY_TIME_FORMAT, ApplicationRow, MarketingWorld
from yekuo.errors import ConfigError

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
