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
from pipeline.leases import LeaseKeeper
from store.checkpoints import load_checkpoint, save_checkpoint
from store.database import create_engine, create_schema, drop_schema
from store.leases import Fence, check_fence, duty_leases, list_leases, take_lease
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


@pytest.fixture
def postgres() -> Iterator[Engine]:
    name, port, url = SERVERS["postgres"]
    require_service(name, port)
    engine = create_engine(url)
    drop_schema(engine)
    create_schema(engine)
    yield engine
    drop_schema(engine)
    engine.dispose()


def _impatient(engine: Engine) -> Engine:
    """The same database with every lock wait cut short, so that a wait the code should not make fails the
    test instead of hanging it."""
    return sa.create_engine(engine.url, connect_args={"options": "-c lock_timeout=3000"})


def _renewed_at(engine: Engine, duty: str) -> object:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(duty_leases.c.renewed_at).where(duty_leases.c.duty == duty)
        ).scalar_one()


@pytest.mark.postgres
def test_on_postgresql_the_holders_renewal_does_not_wait_for_its_own_fenced_transaction(
    postgres: Engine, fixed: clock.FixedClock
) -> None:
    keepers = _impatient(postgres)
    keeper = LeaseKeeper(keepers, "hub-1", TTL.total_seconds(), ["relay"])
    keeper.keep()
    fence = keeper.fence("relay")
    assert fence is not None
    fixed.advance(timedelta(seconds=5))

    with postgres.begin() as holder:
        check_fence(holder, fence)
        keeper.keep()
        assert _renewed_at(postgres, "relay") == fixed.now

    keepers.dispose()


def test_another_instances_take_of_a_live_lease_does_not_wait_for_the_holders_fenced_transaction(
    engine: Engine, fixed: clock.FixedClock
) -> None:
    old = _take(engine, "hub-1")
    assert old is not None

    with engine.begin() as holder:
        check_fence(holder, old)
        with engine.begin() as other:
            _short_lock_wait(other)
            assert take_lease(other, "poll:pms", "hub-2", TTL) is None


@pytest.mark.postgres
def test_on_postgresql_a_paused_holders_transaction_ends_and_blocks_no_other_duty_meanwhile(
    postgres: Engine, fixed: clock.FixedClock
) -> None:
    ttl_s = 2.0
    keepers = _impatient(postgres)
    first = LeaseKeeper(keepers, "hub-1", ttl_s, ["poll:pms"])
    second = LeaseKeeper(keepers, "hub-2", ttl_s, ["poll:pms", "relay"])
    first.keep()
    second.keep()
    old = first.fence("poll:pms")
    assert old is not None and second.fence("relay") is not None
    fixed.advance(timedelta(seconds=ttl_s + 1))

    paused = postgres.connect()
    transaction = paused.begin()
    check_fence(paused, old)
    # The holder stops here (SIGSTOP, a long GC pause): its fenced transaction stays open and idle.
    second.keep()
    assert second.fence("poll:pms") is None
    assert _renewed_at(postgres, "relay") == fixed.now

    deadline = clock.system_now() + timedelta(seconds=30)
    while second.fence("poll:pms") is None and clock.system_now() < deadline:
        threading.Event().wait(0.2)
        second.keep()
    assert second.fence("poll:pms") == Fence("poll:pms", 2)

    with pytest.raises(sa.exc.DBAPIError):
        save_checkpoint(paused, "pms", {"after": 1})
        transaction.commit()
    paused.invalidate()
    paused.close()
    keepers.dispose()
