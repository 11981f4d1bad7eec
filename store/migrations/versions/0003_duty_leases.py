"""Expand: the duty leases of a cluster of hub instances, and the fencing token on checkpoint and outbox rows.

fence is the lease token of the instance that last changed the row; null on rows written before this
revision, and by older code, which ignores the column and the new table, so it keeps running beside the new.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
PHASE = "expand"


def upgrade() -> None:
    op.create_table(
        "duty_leases",
        sa.Column("duty", sa.String(length=191), nullable=False, comment="e.g. relay, poll:marketing"),
        sa.Column(
            "owner",
            sa.String(length=191),
            nullable=True,
            comment="the holding instance's name; null: released or never held",
        ),
        sa.Column(
            "token", sa.BigInteger(), nullable=False, comment="fencing token, one more on every take-over"
        ),
        sa.Column(
            "expires_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="free for another instance after this",
        ),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("duty"),
    )
    for table in ("checkpoints", "outbox"):
        op.add_column(
            table,
            sa.Column(
                "fence",
                sa.BigInteger(),
                nullable=True,
                comment="lease token of the instance that last changed the row",
            ),
        )
