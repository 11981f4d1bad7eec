"""Hub tables of supply feasibility: assessments kept per application, and the capacity promised to them.

feasibility_assessments holds the latest assessment of every application with the application it was
made for, so a grid or load change can re-run it. feasibility_inputs lists the equipment each assessment
depended on, to find the applications a change affects. capacity_reservations holds the kVA an open
application was promised on each connection point; capacity_locks has one row per piece of equipment
that an assessment locks (SELECT ... FOR UPDATE) before reading reservations, so two assessments
competing for the same headroom run one after the other.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
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
