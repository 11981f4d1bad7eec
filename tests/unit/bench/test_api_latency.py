"""Cloning stored cases for the API benchmark: which value each column of a clone gets."""

from __future__ import annotations

import sqlalchemy as sa

from bench.api_latency import clone_expression, clone_numbers
from store.schema import metadata


def _table() -> sa.Table:
    return sa.Table(
        "case_things",
        sa.MetaData(),
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("application_no", sa.String(20), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False, unique=True),
        sa.Column("token", sa.String(40), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.UniqueConstraint("token", name="uq_token"),
    )


def test_each_column_of_a_clone() -> None:
    table = _table()
    expressions = {column.name: clone_expression(table, column) for column in table.c}
    assert expressions["id"] is None
    assert expressions["application_no"] == "c.dst"
    assert expressions["event_id"] == expressions["token"] == "gen_random_uuid()::text"
    assert expressions["document"] is not None
    assert "replace" in expressions["document"] and "c.src" in expressions["document"]
    assert expressions["stage"] == 't."stage"'


def test_every_hub_table_about_a_case_can_be_cloned() -> None:
    tables = [table for table in metadata.sorted_tables if "application_no" in table.c]
    assert {"cases", "timeline"} <= {table.name for table in tables}
    for table in tables:
        kept = [column for column in table.c if clone_expression(table, column) is not None]
        assert any(column.name == "application_no" for column in kept), table.name


def test_clone_numbers_have_the_legacy_length_and_never_repeat() -> None:
    numbers = clone_numbers(1000)
    assert len(set(numbers)) == 1000
    assert all(len(number) == 13 and number.isdigit() and number.startswith("27") for number in numbers)
