"""Duty leases on SQLite with a fixed clock: take, renew, expiry, take-over, release and the fence check."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from ground import clock
from ground.errors import FencedOutError
from store.checkpoints import load_checkpoint, save_checkpoint
from store.leases import Fence, Lease, check_fence, list_leases, release_lease, renew_lease, take_lease

TTL = timedelta(seconds=15)
START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.fixture
def fixed() -> Iterator[clock.FixedClock]:
    with clock.frozen_at(START) as fixed:
        yield fixed


def _take(engine: Engine, owner: str, duty: str = "relay") -> Fence | None:
    with engine.begin() as conn:
        return take_lease(conn, duty, owner, TTL)


def test_a_free_duty_is_taken_with_token_one_and_listed(
    sqlite_engine: Engine, fixed: clock.FixedClock
) -> None:
    assert _take(sqlite_engine, "a") == Fence("relay", 1)

    with sqlite_engine.connect() as conn:
        assert list_leases(conn) == [Lease("relay", "a", 1, START + TTL)]


def test_a_live_lease_cannot_be_taken_by_another_owner_nor_taken_again(
    sqlite_engine: Engine, fixed: clock.FixedClock
) -> None:
    _take(sqlite_engine, "a")
    fixed.advance(TTL - timedelta(seconds=1))

    assert _take(sqlite_engine, "b") is None
    assert _take(sqlite_engine, "a") is None
    with sqlite_engine.connect() as conn:
        assert [(lease.owner, lease.token) for lease in list_leases(conn)] == [("a", 1)]


def test_renewal_moves_the_expiry_so_the_lease_outlives_its_first_ttl(
    sqlite_engine: Engine, fixed: clock.FixedClock
) -> None:
    fence = _take(sqlite_engine, "a")
    assert fence is not None
    fixed.advance(timedelta(seconds=10))
    with sqlite_engine.begin() as conn:
        assert renew_lease(conn, fence, "a", TTL) is True
    fixed.advance(timedelta(seconds=10))

    assert _take(sqlite_engine, "b") is None
    with sqlite_engine.connect() as conn:
        assert list_leases(conn) == [Lease("relay", "a", 1, START + timedelta(seconds=10) + TTL)]


def test_an_expired_lease_is_taken_over_with_the_next_token_and_the_old_holder_can_no_longer_renew(
    sqlite_engine: Engine, fixed: clock.FixedClock
) -> None:
    old = _take(sqlite_engine, "a")
    assert old is not None
    fixed.advance(TTL + timedelta(seconds=1))

    assert _take(sqlite_engine, "b") == Fence("relay", 2)
    with sqlite_engine.begin() as conn:
        assert renew_lease(conn, old, "a", TTL) is False
        assert release_lease(conn, old, "a") is False
        assert [(lease.owner, lease.token) for lease in list_leases(conn)] == [("b", 2)]


def test_a_released_duty_keeps_its_token_and_is_taken_at_once_with_the_next(
    sqlite_engine: Engine, fixed: clock.FixedClock
) -> None:
    fence = _take(sqlite_engine, "a")
    assert fence is not None
    with sqlite_engine.begin() as conn:
        assert release_lease(conn, fence, "a") is True
        assert list_leases(conn) == [Lease("relay", None, 1, START)]

    assert _take(sqlite_engine, "b") == Fence("relay", 2)


def test_duties_are_leased_independently(sqlite_engine: Engine, fixed: clock.FixedClock) -> None:
    assert _take(sqlite_engine, "a", "relay") == Fence("relay", 1)
    assert _take(sqlite_engine, "b", "poll:pms") == Fence("poll:pms", 1)

    with sqlite_engine.connect() as conn:
        assert [(lease.duty, lease.owner) for lease in list_leases(conn)] == [
            ("poll:pms", "b"),
            ("relay", "a"),
        ]


def test_the_fence_check_refuses_a_superseded_token_and_its_transaction_rolls_back(
    sqlite_engine: Engine, fixed: clock.FixedClock
) -> None:
    old = _take(sqlite_engine, "a", "poll:marketing")
    assert old is not None
    fixed.advance(TTL + timedelta(seconds=1))
    new = _take(sqlite_engine, "b", "poll:marketing")
    assert new is not None
    with sqlite_engine.begin() as conn:
        save_checkpoint(conn, "marketing", {"key": "successor"}, fence=new)

    late = pytest.raises(FencedOutError, match=r"token 1 is superseded \(now 2, held by b\)")
    with late, sqlite_engine.begin() as conn:
        save_checkpoint(conn, "marketing", {"key": "late"}, fence=old)

    with sqlite_engine.connect() as conn:
        assert load_checkpoint(conn, "marketing") == {"key": "successor"}
        check_fence(conn, new)


def test_a_fence_for_a_duty_never_leased_is_refused(sqlite_engine: Engine) -> None:
    with pytest.raises(FencedOutError, match="now none, held by nobody"), sqlite_engine.begin() as conn:
        check_fence(conn, Fence("monitor", 1))
