"""Duty leases on PostgreSQL and MariaDB: instances racing for a free duty, a take-over, and a fence check
that holds the lease row until its transaction ends, so no take-over slips in between check and commit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ground import clock
from ground.errors import FencedOutError
from store.checkpoints import load_checkpoint, save_checkpoint
from store.database import create_engine, create_schema, drop_schema
from store.leases import Fence, check_fence, list_leases, take_lease
from tests.conftest import MARIADB_URL, POSTGRES_URL, require_service

SERVERS = {"postgres": ("PostgreSQL", 5432, POSTGRES_URL), "mariadb": ("MariaDB", 3306, MARIADB_URL)}
TTL = timedelta(seconds=15)
RACERS = 8


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    name, port, url = SERVERS[request.param]
    require_service(name, port)
    engine = create_engine(url)
    drop_schema(engine)
    create_schema(engine)
    yield engine
    drop_schema(engine)
    engine.dispose()


@pytest.fixture
def fixed() -> Iterator[clock.FixedClock]:
    with clock.frozen_at(clock.system_now()) as fixed:
        yield fixed


def _take(engine: Engine, owner: str) -> Fence | None:
    with engine.begin() as conn:
        return take_lease(conn, "poll:pms", owner, TTL)


def test_instances_racing_for_a_free_duty_leave_one_owner_and_no_error(
    engine: Engine, fixed: clock.FixedClock
) -> None:
    start = threading.Barrier(RACERS)
    won: list[Fence | None] = [None] * RACERS
    failures: list[BaseException] = []

    def race(index: int) -> None:
        try:
            start.wait(timeout=30)
            won[index] = _take(engine, f"hub-{index}")
        except BaseException as exc:  # the assertions below report it
            failures.append(exc)

    threads = [threading.Thread(target=race, args=(index,)) for index in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert failures == []
    winners = [index for index, fence in enumerate(won) if fence is not None]
    assert len(winners) == 1 and won[winners[0]] == Fence("poll:pms", 1)
    with engine.connect() as conn:
        assert [(lease.owner, lease.token) for lease in list_leases(conn)] == [(f"hub-{winners[0]}", 1)]


def test_an_expired_lease_is_taken_over_and_the_old_holders_checkpoint_write_is_refused(
    engine: Engine, fixed: clock.FixedClock
) -> None:
    old = _take(engine, "hub-1")
    assert old is not None
    assert _take(engine, "hub-2") is None
    fixed.advance(TTL + timedelta(seconds=1))
    new = _take(engine, "hub-2")
    assert new == Fence("poll:pms", 2)
    with engine.begin() as conn:
        save_checkpoint(conn, "pms", {"after": 2}, fence=new)

    with pytest.raises(FencedOutError), engine.begin() as conn:
        save_checkpoint(conn, "pms", {"after": 1}, fence=old)

    with engine.connect() as conn:
        assert load_checkpoint(conn, "pms") == {"after": 2}


def _short_lock_wait(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL lock_timeout = '500ms'")
    else:
        conn.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 1")


def test_a_take_over_waits_for_a_transaction_that_checked_the_old_token(
    engine: Engine, fixed: clock.FixedClock
) -> None:
    old = _take(engine, "hub-1")
    assert old is not None
    fixed.advance(TTL + timedelta(seconds=1))

    with engine.begin() as holder:
        check_fence(holder, old)
        save_checkpoint(holder, "pms", {"after": 1})
        # The lease row is held for share: the successor's take-over cannot commit meanwhile.
        with pytest.raises(sa.exc.OperationalError), engine.begin() as successor:
            _short_lock_wait(successor)
            take_lease(successor, "poll:pms", "hub-2", TTL)

    assert _take(engine, "hub-2") == Fence("poll:pms", 2)
    with engine.connect() as conn:
        assert load_checkpoint(conn, "pms") == {"after": 1}
