"""Expand: indexes that serve each filter of the applications listing in its paging order.

Each ends in (opened_at, application_no), the key the listing pages by, so a filtered page is read in order
from the cursor on instead of sorting every case the filter matches. ix_cases_stage_opened takes over what
ix_cases_stage served (its leading column is the same), so that one goes; no code needs an index to be
correct, so older code keeps running beside this revision.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
PHASE = "expand"

_INDEXES = {
    "ix_cases_class_opened": ["customer_class", "opened_at", "application_no"],
    "ix_cases_responsible_opened": ["responsible", "opened_at", "application_no"],
    "ix_cases_stage_opened": ["stage", "opened_at", "application_no"],
}


def upgrade() -> None:
    for name, columns in _INDEXES.items():
        op.create_index(name, "cases", columns, unique=False)
    op.drop_index("ix_cases_stage", table_name="cases")
