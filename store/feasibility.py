"""Hub tables of supply feasibility: assessments kept per application, and the capacity promised to them.

feasibility_assessments holds the latest assessment of every application with the application it was
made for, so a grid or load change can re-run it. feasibility_inputs lists the equipment each assessment
depended on, to find the applications a change affects. feasibility_rechecks lists the applications a grid,
load or customer change made due for a re-check, one row each however many changes named them.
capacity_reservations holds the kVA an open application was promised on each connection point;
capacity_locks has one row per piece of equipment that an assessment locks (SELECT ... FOR UPDATE) before
reading reservations, so two assessments competing for the same headroom run one after the other.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection

from store.schema import KEY, UtcDateTime, metadata

feasibility_assessments = sa.Table(
    "feasibility_assessments",
    metadata,
    sa.Column("application_no", KEY, primary_key=True),
    sa.Column("province", sa.String(64), nullable=False, comment="rule set applied"),
    sa.Column("verdict", sa.String(32), nullable=False),
    sa.Column("recommended_voltage_kv", sa.Float, nullable=True),
    sa.Column("document", sa.JSON, nullable=False, comment="the FeasibilityAssessment"),
    sa.Column("application", sa.JSON, nullable=False, comment="the ConnectionApplication assessed"),
    sa.Column(
        "customer_no", KEY, nullable=True, comment="the applicant, to re-assess when its record changes"
    ),
    sa.Column("site_lon", sa.Float, nullable=True),
    sa.Column("site_lat", sa.Float, nullable=True),
    sa.Column("is_open", sa.Boolean, nullable=False, comment="false once withdrawn or energised"),
    sa.Column("assessed_at", UtcDateTime(), nullable=False),
    sa.Column("event_id", KEY, nullable=False, comment="feasibility_assessed event of this result"),
    sa.Column(
        "promised_at",
        UtcDateTime(),
        nullable=True,
        comment="first time capacity was reserved: the supply scheme's validity counts from it",
    ),
    sa.Column(
        "inputs_fingerprint",
        sa.String(64),
        nullable=True,
        comment="digest of what the assessment read: a re-check reading the same changes nothing",
    ),
    sa.Index("ix_feasibility_assessments_site", "is_open", "site_lon"),
    sa.Index("ix_feasibility_assessments_customer", "customer_no"),
)

# The feasibility consumer's own copy of what capacity changes are judged against, written when it reads a
# customer record: it never waits on another consumer having stored the customer.
feasibility_customers = sa.Table(
    "feasibility_customers",
    metadata,
    sa.Column("customer_no", KEY, primary_key=True),
    sa.Column("contract_capacity_kva", sa.Float, nullable=True),
    sa.Column("district_id", KEY, nullable=True, comment="transformer district (TG_ID)"),
    sa.Column("sequence", sa.BigInteger, nullable=False, comment="of the customer event applied"),
)

feasibility_inputs = sa.Table(
    "feasibility_inputs",
    metadata,
    sa.Column("application_no", KEY, primary_key=True),
    sa.Column("equipment_id", KEY, primary_key=True),
    sa.Index("ix_feasibility_inputs_equipment", "equipment_id", "application_no"),
)

feasibility_rechecks = sa.Table(
    "feasibility_rechecks",
    metadata,
    sa.Column("application_no", KEY, primary_key=True),
    sa.Column("due_since", UtcDateTime(), nullable=False, comment="first change not yet re-checked"),
    sa.Column("correlation_id", KEY, nullable=False, comment="of the latest change, carried by its result"),
    sa.Index("ix_feasibility_rechecks_due", "due_since"),
)

capacity_locks = sa.Table(
    "capacity_locks",
    metadata,
    sa.Column("equipment_id", KEY, primary_key=True),
    sa.Column("locked_at", UtcDateTime(), nullable=False, comment="last time an assessment took the lock"),
)

capacity_reservations = sa.Table(
    "capacity_reservations",
    metadata,
    sa.Column("application_no", KEY, primary_key=True),
    sa.Column("equipment_id", KEY, primary_key=True, comment="connection point"),
    sa.Column("feeder_id", KEY, nullable=True),
    sa.Column("substation_id", KEY, nullable=True),
    sa.Column("kva", sa.Float, nullable=False),
    sa.Column("reserved_at", UtcDateTime(), nullable=False),
    sa.Column(
        "expires_at",
        UtcDateTime(),
        nullable=True,
        comment="lapses then: the supply scheme's validity, a temporary supply's end, or the days kept after "
        "energisation",
    ),
    sa.Column("energised_at", UtcDateTime(), nullable=True, comment="when the application was energised"),
    sa.Column(
        "basis_kw_at_energisation",
        sa.Float,
        nullable=True,
        comment="the equipment's load basis when energised; released once it rose by the configured share",
    ),
    sa.Index("ix_capacity_reservations_equipment", "equipment_id"),
    sa.Index("ix_capacity_reservations_feeder", "feeder_id"),
    sa.Index("ix_capacity_reservations_substation", "substation_id"),
)


def assessment_document(conn: Connection, application_no: str) -> dict[str, Any] | None:
    """The kept assessment of an application as the JSON document it was stored as, or None."""
    value = conn.execute(
        sa.select(feasibility_assessments.c.document).where(
            feasibility_assessments.c.application_no == application_no
        )
    ).scalar()
    return dict(value) if value is not None else None


_CLEAR_DUE = feasibility_rechecks.delete().where(
    feasibility_rechecks.c.application_no == sa.bindparam("number")
)


def mark_due(conn: Connection, marks: Mapping[str, str], *, since: datetime) -> None:
    """Record applications as due for a re-check, each with the correlation id of the change that named it;
    one already due keeps its first time and takes the new id.

    Rows are written in one statement, in key order, so two transactions marking overlapping sets cannot
    deadlock; a row claimed by a re-check under way is waited for, and written anew once that re-check
    deleted it.
    """
    if not marks:
        return
    table = feasibility_rechecks
    rows = [
        {"application_no": number, "due_since": since, "correlation_id": marks[number]}
        for number in sorted(marks)
    ]
    # One statement of many rows: a change near many sites marks hundreds, and a statement per row costs
    # a round trip each.
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)).values(rows)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=[table.c.application_no],
                set_={"correlation_id": insert.excluded.correlation_id},
            )
        )
    else:
        upsert = mysql.insert(table).values(rows)
        conn.execute(upsert.on_duplicate_key_update(correlation_id=upsert.inserted.correlation_id))


def peek_due(conn: Connection, limit: int, *, now: datetime) -> list[str]:
    """The applications due longest by now that no other re-check has claimed (skipped while claimed)."""
    table = feasibility_rechecks
    return list(
        conn.execute(
            sa.select(table.c.application_no)
            .where(table.c.due_since <= now)
            .order_by(table.c.due_since, table.c.application_no)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


def claim_due(conn: Connection, application_nos: Collection[str]) -> dict[str, str]:
    """Lock those of the applications still due and not claimed by another re-check: number → correlation id.

    The rows stay locked until conn's transaction ends; clear_due deletes them in it.
    """
    if not application_nos:
        return {}
    table = feasibility_rechecks
    rows = conn.execute(
        sa.select(table.c.application_no, table.c.correlation_id)
        .where(table.c.application_no.in_(sorted(set(application_nos))))
        .order_by(table.c.application_no)
        .with_for_update(skip_locked=True)
    ).all()
    return {row.application_no: row.correlation_id for row in rows}


def clear_due(conn: Connection, application_nos: Collection[str]) -> None:
    """Delete the due rows of re-checked applications (claimed by conn's transaction).

    One key at a time: InnoDB scans an IN list as a range and would wait for rows another re-check claimed.
    """
    if application_nos:
        conn.execute(_CLEAR_DUE, [{"number": number} for number in sorted(set(application_nos))])


def postpone_due(conn: Connection, application_no: str, *, since: datetime) -> None:
    """Put a due application behind the others: due from since, as if first marked then.

    A since in the future keeps it out of peek_due until then: it stays due, but is not tried again at once.
    """
    table = feasibility_rechecks
    conn.execute(table.update().where(table.c.application_no == application_no).values(due_since=since))


def count_due(conn: Connection) -> int:
    """How many applications are due for a re-check."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(feasibility_rechecks)).scalar_one())
