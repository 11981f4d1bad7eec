"""The hub schema is managed by migrations: from nothing, from a database made before them, and side by
side with a later release, on SQLite (tests/integration/test_migrations.py: on PostgreSQL and MariaDB)."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store.database import SchemaError, create_engine, create_schema, drop_schema, schema_status
from store.grid import cell_of
from store.schema import cases, metadata, stage_visits
from tests.support.migrations import (
    create_schema_after,
    differences,
    made_before_migrations,
    migrate_to,
    revision_of,
    scripts,
    starting_rows,
)

ENTERED = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
# One case with the columns every revision since the baseline has.
CASE_ROW = {
    "application_no": "A1",
    "customer_no": "C1",
    "customer_class": "lv_residential",
    "business_type": "new_connection",
    "importance_grade": "none",
    "flow": "low_voltage",
    "status": "open",
    "stage": "survey",
    "stage_visit": "A1/survey/1",
    "stage_entered_at": ENTERED,
    "deadline_provisional": False,
    "provisional": False,
    "calendar": "2026",
    "end_to_end_commitment_days": 15,
    "end_to_end_provisional": False,
    "opened_at": ENTERED,
    "updated_at": ENTERED,
    "survey_pending": True,
    "rework_count": 0,
    "anomaly_count": 0,
    "event_count": 1,
    "application": {},
    "anomalies": [],
}


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return create_engine(f"sqlite:///{tmp_path}/hub.db")


def insert_visit(engine: Engine) -> None:
    """One stage visit with the columns of the baseline."""
    with engine.begin() as conn:
        conn.execute(
            sa.insert(stage_visits).values(
                id=7,
                application_no="A1",
                ordinal=1,
                visit="A1/survey/1",
                stage="survey",
                flow="low_voltage",
                customer_class="residential",
                entered_at=ENTERED,
                observed=True,
                limit_days=3,
            )
        )


def test_migrations_from_nothing_build_exactly_the_models(engine: Engine) -> None:
    create_schema(engine)

    assert revision_of(engine) == scripts().get_current_head()
    assert differences(engine) == []
    assert schema_status(engine).describe() == f"{revision_of(engine)} (head)"


def test_migrations_from_nothing_start_with_the_rows_the_models_create(
    engine: Engine, tmp_path: Path
) -> None:
    created = create_engine(f"sqlite:///{tmp_path}/created.db")
    metadata.create_all(created)

    create_schema(engine)

    assert starting_rows(engine) == starting_rows(created) == {"feed_counters": [("event_feed", 0)]}
    created.dispose()


ADDED_BY_ANALYTICS = {
    ("add_table", "case_figures"),
    ("add_index", "ix_case_figures_energised"),
    ("add_index", "ix_case_figures_opened"),
    ("add_table", "assistant_gaps"),
    ("add_index", "ix_assistant_gaps_last_asked"),
    ("add_column", None, "stage_visits", "excess_days"),
    ("add_index", "ix_stage_visits_exit"),
}
ADDED_BY_DUTY_LEASES = {
    ("add_table", "duty_leases"),
    ("add_column", None, "checkpoints", "fence"),
    ("add_column", None, "outbox", "fence"),
}
ADDED_BY_CASE_FOLD_STATE = {("add_column", None, "cases", "fold_state")}
ADDED_BY_LIST_INDEXES = {
    ("add_index", "ix_cases_class_opened"),
    ("add_index", "ix_cases_responsible_opened"),
    ("add_index", "ix_cases_stage_opened"),
    ("remove_index", "ix_cases_stage"),
}
ADDED_BY_FEASIBILITY_RECHECKS = {
    ("add_table", "feasibility_rechecks"),
    ("add_index", "ix_feasibility_rechecks_due"),
    ("add_column", None, "feasibility_assessments", "inputs_fingerprint"),
}
ADDED_BY_CASE_SITE_COORDINATES = {
    ("add_column", None, "cases", "site_lat"),
    ("add_column", None, "cases", "site_lon"),
    ("add_index", "ix_cases_customer_status"),
    ("add_index", "ix_cases_site"),
    ("add_index", "ix_cases_address_status"),
    ("remove_index", "ix_cases_customer"),
    ("remove_index", "ix_cases_site_cell"),
    ("remove_index", "ix_cases_address_key"),
}
# What each revision after the baseline adds, in order.
ADDED_AFTER = [
    ("0002", ADDED_BY_ANALYTICS),
    ("0003", ADDED_BY_DUTY_LEASES),
    ("0004", ADDED_BY_CASE_FOLD_STATE),
    ("0005", ADDED_BY_LIST_INDEXES),
    ("0006", ADDED_BY_FEASIBILITY_RECHECKS),
    ("0007", ADDED_BY_CASE_SITE_COORDINATES),
]


def _found(engine: Engine) -> set[tuple[object, ...]]:
    return {(diff[0], *(getattr(item, "name", item) for item in diff[1:])) for diff in differences(engine)}


@pytest.mark.parametrize("revision", ["0001", *(revision for revision, _ in ADDED_AFTER[:-1])])
def test_a_revision_lacks_exactly_what_the_later_revisions_add(engine: Engine, revision: str) -> None:
    migrate_to(engine, revision)

    later = [added for number, added in ADDED_AFTER if number > revision]
    assert _found(engine) == set().union(*later)


def test_the_list_indexes_are_added_to_a_database_keeping_its_cases(engine: Engine) -> None:
    migrate_to(engine, "0004")
    with engine.begin() as conn:
        conn.execute(sa.insert(cases).values(CASE_ROW))

    create_schema(engine)

    assert differences(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(cases.c.application_no, cases.c.stage)).all() == [("A1", "survey")]


def test_the_cases_kept_get_their_site_coordinates_from_their_application(engine: Engine) -> None:
    migrate_to(engine, "0006")
    site = {"lon": 113.6253, "lat": 34.7466}
    with engine.begin() as conn:
        conn.execute(
            sa.insert(cases),
            [
                {**CASE_ROW, "application": {"site_location": site}, "site_cell": cell_of(**site)},
                {**CASE_ROW, "application_no": "A2", "stage_visit": "A2/survey/1", "site_cell": None},
            ],
        )

    create_schema(engine)

    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(cases.c.application_no, cases.c.site_lon, cases.c.site_lat).order_by(
                cases.c.application_no
            )
        ).all()
    assert [tuple(row) for row in rows] == [("A1", site["lon"], site["lat"]), ("A2", None, None)]


def test_a_database_made_before_migrations_is_stamped_at_its_release_and_upgraded_keeping_its_rows(
    engine: Engine,
) -> None:
    made_before_migrations(engine, "0001")
    insert_visit(engine)
    assert schema_status(engine).behind

    create_schema(engine)

    assert revision_of(engine) == scripts().get_current_head()
    assert differences(engine) == []
    with engine.connect() as conn:
        row = conn.execute(sa.select(stage_visits)).one()
    assert (row.id, row.visit, row.entered_at, row.limit_days, row.excess_days) == (
        7,
        "A1/survey/1",
        ENTERED,
        3,
        None,
    )


def test_a_database_made_by_create_all_of_the_analytics_release_is_stamped_and_upgraded_keeping_its_rows(
    engine: Engine,
) -> None:
    made_before_migrations(engine, "0002")
    insert_visit(engine)

    create_schema(engine)

    assert revision_of(engine) == scripts().get_current_head()
    assert differences(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(stage_visits)).scalar() == 1


def test_a_database_between_two_releases_is_refused_with_what_it_lacks(engine: Engine) -> None:
    made_before_migrations(engine, "0001")
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE stage_visits ADD COLUMN excess_days REAL")

    with pytest.raises(SchemaError) as refused:
        create_schema(engine)

    message = str(refused.value)
    assert "has column stage_visits.excess_days but not" in message
    assert "table case_figures" in message and "index ix_stage_visits_exit" in message
    assert revision_of(engine) is None


def test_a_schema_a_later_release_expanded_is_left_alone_and_accepted(engine: Engine) -> None:
    create_schema(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9001'")
        conn.exec_driver_sql("CREATE TABLE later_release_table (id INTEGER PRIMARY KEY)")

    create_schema(engine)

    status = schema_status(engine)
    assert (status.revision, status.ahead, status.behind) == ("9001", True, False)
    assert "newer than the code's" in status.describe()


def test_an_empty_database_is_neither_behind_nor_ahead(engine: Engine) -> None:
    status = schema_status(engine)

    assert (status.empty, status.behind, status.ahead, status.revision) == (True, False, False, None)


def test_drop_schema_forgets_the_migrations_so_the_next_create_starts_afresh(engine: Engine) -> None:
    create_schema(engine)
    drop_schema(engine)

    assert sa.inspect(engine).get_table_names() == []
    create_schema(engine)
    assert differences(engine) == []


def test_processes_starting_together_on_an_empty_database_all_succeed(tmp_path: Path) -> None:
    # Four rather than two: switching the new file into WAL mode races too, and more starters meet it more.
    url = f"sqlite:///{tmp_path}/hub.db"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    processes = [context.Process(target=create_schema_after, args=(url, barrier)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)

    assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    engine = create_engine(url)
    assert revision_of(engine) == scripts().get_current_head()
    assert differences(engine) == []
    engine.dispose()


def test_every_migration_declares_whether_it_expands_or_contracts_the_schema() -> None:
    revisions = list(scripts().walk_revisions())

    assert [script.revision for script in reversed(revisions)][:2] == ["0001", "0002"]
    assert len(scripts().get_heads()) == 1
    for script in revisions:
        assert script.module.PHASE in ("expand", "contract"), script.path
