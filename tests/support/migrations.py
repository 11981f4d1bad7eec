"""Hub databases as older releases left them, their differences from the models, and cold starts."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from store.database import MIGRATIONS, create_engine, create_schema
from store.schema import metadata


def alembic_config(**attributes: Any) -> Config:
    """The hub's migrations, with attributes for env.py (a connection)."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes.update(attributes)
    return config


def scripts() -> ScriptDirectory:
    """The hub's migration scripts."""
    return ScriptDirectory.from_config(alembic_config())


def migrate_to(engine: Engine, revision: str) -> None:
    """Apply the migrations up to revision and no further."""
    with engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), revision)


def made_before_migrations(engine: Engine, revision: str) -> None:
    """The schema of revision as create_all of its release made it: the tables, no alembic_version."""
    migrate_to(engine, revision)
    sa.Table("alembic_version", sa.MetaData()).drop(engine)


def revision_of(engine: Engine) -> str | None:
    """The revision alembic_version holds."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def differences(engine: Engine) -> list[Any]:
    """What Alembic's autogenerate finds between the database's hub tables and the models.

    Tables the models do not have (alembic_version, other tests' tables in a shared database) are left out.
    """

    def hub_only(name: str | None, type_: str, parent_names: Any) -> bool:
        return type_ != "table" or name in metadata.tables

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": hub_only})
        return list(compare_metadata(context, metadata))


def starting_rows(engine: Engine) -> dict[str, list[Any]]:
    """The rows of every hub table that has any, by table: what a new schema starts with."""
    with engine.connect() as conn:
        rows = {table.name: list(conn.execute(sa.select(table)).all()) for table in metadata.sorted_tables}
    return {name: found for name, found in rows.items() if found}


def create_schema_after(url: str, barrier: Any) -> None:
    """Run in a process of its own: create the schema once every process has reached the barrier."""
    engine = create_engine(url)
    try:
        barrier.wait(timeout=60)
        create_schema(engine)
    finally:
        engine.dispose()
