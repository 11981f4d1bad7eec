"""Expand: re-checks due per application, and the fingerprint of what each assessment read.

Older code neither writes nor reads the new table and column, so it keeps running beside the new: it
re-assesses inline, and its assessments carry no fingerprint, which the next re-check treats as changed.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
PHASE = "expand"


def upgrade() -> None:
    op.create_table(
        "feasibility_rechecks",
        sa.Column("application_no", sa.String(length=191), nullable=False),
        sa.Column(
            "due_since", sa.DateTime(timezone=True), nullable=False, comment="first change not yet re-checked"
        ),
        sa.Column(
            "correlation_id",
            sa.String(length=191),
            nullable=False,
            comment="of the latest change, carried by its result",
        ),
        sa.PrimaryKeyConstraint("application_no"),
    )
    op.create_index("ix_feasibility_rechecks_due", "feasibility_rechecks", ["due_since"], unique=False)
    op.add_column(
        "feasibility_assessments",
        sa.Column(
            "inputs_fingerprint",
            sa.String(length=64),
            nullable=True,
            comment="digest of what the assessment read: a re-check reading the same changes nothing",
        ),
    )
