"""Expand: the analytics tables of the process figures and the assistant's unanswered questions.

case_figures and stage_visits.excess_days start empty: `yekuo cases rebuild` fills them from the kept events.
Older code ignores all of it, so it keeps running on the expanded schema. SQLite adds a nullable column and
an index in place: no batch (table copy) is needed.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
PHASE = "expand"


def upgrade() -> None:
    op.create_table(
        "case_figures",
        sa.Column("application_no", sa.String(length=191), nullable=False),
        sa.Column("customer_class", sa.String(length=32), nullable=False),
        sa.Column("unit", sa.String(length=191), nullable=True, comment="the responsible supply unit"),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True, comment="null: open"),
        sa.Column("energised_at", sa.DateTime(timezone=True), nullable=True, comment="null: not energised"),
        sa.Column("energised_month", sa.String(length=7), nullable=True, comment="YYYY-MM in Asia/Shanghai"),
        sa.Column(
            "measured", sa.Boolean(), nullable=False, comment="energised, and seen from submission to power"
        ),
        sa.Column("working_days", sa.Float(), nullable=True),
        sa.Column("calendar_days", sa.Float(), nullable=True),
        sa.Column("within_commitment", sa.Boolean(), nullable=True),
        sa.Column(
            "power_working_day",
            sa.Integer(),
            nullable=True,
            comment="working day after submission power came on; within a target of n when at most n",
        ),
        sa.Column("survey_to_scheme_days", sa.Float(), nullable=True),
        sa.Column("scheme_drafting_days", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("application_no"),
    )
    op.create_index("ix_case_figures_energised", "case_figures", ["energised_at"], unique=False)
    op.create_index("ix_case_figures_opened", "case_figures", ["opened_at"], unique=False)
    op.add_column(
        "stage_visits",
        sa.Column(
            "excess_days",
            sa.Float(),
            nullable=True,
            comment="working days past the deadline when left (0 in time); null: not left, or not seen "
            "entered",
        ),
    )
    op.create_index("ix_stage_visits_exit", "stage_visits", ["exit_kind"], unique=False)
    op.create_table(
        "assistant_gaps",
        sa.Column(
            "question_key", sa.String(length=64), nullable=False, comment="sha256 of the scrubbed question"
        ),
        # Sealed by the model (SealedText): stored as text.
        sa.Column("question", sa.Text(), nullable=False, comment="personal data replaced"),
        sa.Column(
            "kind", sa.String(length=16), nullable=False, comment="unanswered | low_confidence, as last asked"
        ),
        sa.Column(
            "best_entry_id",
            sa.String(length=191),
            nullable=True,
            comment="closest knowledge entry, as last asked",
        ),
        sa.Column("best_score", sa.Float(), nullable=True),
        sa.Column("first_asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("times_asked", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("question_key"),
    )
    op.create_index("ix_assistant_gaps_last_asked", "assistant_gaps", ["last_asked_at"], unique=False)
