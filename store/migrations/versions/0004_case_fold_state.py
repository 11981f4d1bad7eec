"""Expand: the fold point on the case row, from which the workflow applies the next event in order.

Null on rows written before this revision, and by older code: the next event of such a case rebuilds it
from its kept events, which writes the point. Older code ignores the column, so it keeps running on the
expanded schema; a case it rebuilds keeps a point whose event count no longer matches the row's, and the
newer code rebuilds that case too rather than continue from it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
PHASE = "expand"


def upgrade() -> None:
    op.add_column(
        "cases",
        sa.Column(
            "fold_state",
            sa.JSON(),
            nullable=True,
            comment="workflow.fold.FoldPoint: where the fold stands, to apply the next event in order",
        ),
    )
