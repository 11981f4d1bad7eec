"""The hub schema's migrations on PostgreSQL and MariaDB: from nothing, from a database made before them, and
two instances starting together on an empty database (on PostgreSQL the second used to fail on pg_type's
unique index)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store.database import create_engine, create_schema, drop_schema, schema_status
from store.schema import stage_visits
from tests.conftest import MARIADB_URL, POSTGRES_URL, require_service
from tests.support.migrations import (
    create_schema_after,
    differences,
    made_before_migrations,
    revision_of,
    scripts,
    starting_rows,
)
from tests.unit.store.test_migrations import ENTERED, insert_visit

SERVERS = {"postgres": ("PostgreSQL", 5432, POSTGRES_URL), "mariadb": ("MariaDB", 3306, MARIADB_URL)}


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def url(request: pytest.FixtureRequest) -> str:
    name, port, url = SERVERS[request.param]
    require_service(name, port)
    return url


@pytest.fixture
def empty_engine(url: str) -> Iterator[Engine]:
    engine = create_engine(url)
    drop_schema(engine)
    yield engine
    drop_schema(engine)
    engine.dispose()


def test_migrations_from_nothing_build_exactly_the_models(empty_engine: Engine) -> None:
    create_schema(empty_engine)

    assert revision_of(empty_engine) == scripts().get_current_head()
    assert differences(empty_engine) == []
    assert starting_rows(empty_engine) == {"feed_counters": [("event_feed", 0)]}


def test_a_database_made_before_migrations_is_upgraded_keeping_its_rows(empty_engine: Engine) -> None:
    made_before_migrations(empty_engine, "0001")
    insert_visit(empty_engine)
    assert schema_status(empty_engine).behind

    create_schema(empty_engine)

    assert revision_of(empty_engine) == scripts().get_current_head()
    assert differences(empty_engine) == []
    with empty_engine.connect() as conn:
        row = conn.execute(sa.select(stage_visits)).one()
    assert (row.id, row.visit, row.entered_at, row.excess_days) == (7, "A1/survey/1", ENTERED, None)


def test_a_schema_a_later_release_expanded_is_left_alone_and_accepted(empty_engine: Engine) -> None:
    create_schema(empty_engine)
    with empty_engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9001'")

    create_schema(empty_engine)

    status = schema_status(empty_engine)
    assert (status.revision, status.ahead, status.behind) == ("9001", True, False)


def test_two_processes_starting_together_on_an_empty_database_both_succeed(
    url: str, empty_engine: Engine
) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    processes = [context.Process(target=create_schema_after, args=(url, barrier)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)

    assert [process.exitcode for process in processes] == [0, 0]
    assert revision_of(empty_engine) == scripts().get_current_head()
    assert differences(empty_engine) == []
