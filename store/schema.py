"""Table definitions of the hub database; the same DDL runs on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from canonical_model.customer import Customer
from store.encrypted import PiiFieldsJson, SealedBytes, SealedJson, SealedText

metadata = sa.MetaData()


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware datetimes stored as UTC; SQLite and MariaDB keep no zone, so it is fixed on both ways."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored: its zone is unknown")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def kept_time(dialect: sa.Dialect, moment: datetime) -> datetime:
    """A time as a UtcDateTime column keeps it: MySQL and MariaDB keep whole seconds.

    Bound already cut, a time is kept the same on both: MySQL would round its fraction, MariaDB cut it.
    """
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=0) if dialect.name in {"mysql", "mariadb"} else moment


# Short string columns carry explicit lengths because MariaDB cannot index unbounded text.
KEY = sa.String(191)

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("source", KEY, primary_key=True, comment="adapter instance, e.g. marketing"),
    sa.Column("value", sa.JSON, nullable=False, comment="watermark or file state"),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column(
        "fence", sa.BigInteger, nullable=True, comment="lease token of the instance that last changed the row"
    ),
)

subject_sequences = sa.Table(
    "subject_sequences",
    metadata,
    sa.Column("subject_key", KEY, primary_key=True, comment="event source + subject"),
    sa.Column("last_sequence", sa.BigInteger, nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("event_id", KEY, nullable=False, unique=True),
    sa.Column("event_type", KEY, nullable=False),
    sa.Column("subject", KEY, nullable=False),
    sa.Column("exchange", KEY, nullable=False),
    sa.Column("routing_key", KEY, nullable=False),
    sa.Column("correlation_id", KEY, nullable=False),
    sa.Column("body", SealedBytes("outbox.body"), nullable=False, comment="CloudEvent JSON, sealed"),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("sent_at", UtcDateTime(), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column(
        "fence", sa.BigInteger, nullable=True, comment="lease token of the instance that last changed the row"
    ),
    sa.Index("ix_outbox_unsent", "sent_at", "id"),
)

parked = sa.Table(
    "parked",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False, comment="invalid | dead"),
    sa.Column("reason_code", sa.String(32), nullable=False),
    sa.Column("reason", SealedText("parked.reason"), nullable=False, comment="may quote a rejected value"),
    sa.Column("source_system", KEY, nullable=True),
    sa.Column("record_type", KEY, nullable=True),
    sa.Column("record_key", KEY, nullable=True),
    sa.Column("position", sa.JSON, nullable=True),
    sa.Column("payload", SealedJson("parked.payload"), nullable=True, comment="raw record or message"),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column(
        "status", sa.String(16), nullable=False, default="parked", comment="parked | replayed | discarded"
    ),
    sa.Index("ix_parked_kind_status", "kind", "status"),
)

inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("event_id", KEY, primary_key=True),
    sa.Column("processed_at", UtcDateTime(), nullable=False),
)

# Workflow state. case_events holds every event a case was built from (legacy changes and the hub's own
# decisions); cases, timeline and stage_visits are derived from them and rebuilt whenever one arrives.
case_events = sa.Table(
    "case_events",
    metadata,
    sa.Column("event_id", KEY, primary_key=True),
    sa.Column("application_no", KEY, nullable=False),
    sa.Column("source", KEY, nullable=False, comment="CloudEvent source, e.g. /marketing/application"),
    sa.Column("sequence", sa.BigInteger, nullable=False, comment="per source and subject"),
    sa.Column("event_type", KEY, nullable=False),
    sa.Column("time", UtcDateTime(), nullable=False, comment="when the change happened at the source"),
    sa.Column("visit", KEY, nullable=True, comment="stage visit a hub decision belongs to"),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Index("ix_case_events_case", "application_no"),
    # One assignment and one alert of each kind per stage visit; legacy events carry no visit.
    sa.UniqueConstraint("application_no", "event_type", "visit", name="uq_case_events_decision"),
)

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("application_no", KEY, primary_key=True),
    sa.Column("customer_no", KEY, nullable=False),
    sa.Column("customer_class", sa.String(32), nullable=False),
    sa.Column("business_type", sa.String(32), nullable=False),
    sa.Column("importance_grade", sa.String(32), nullable=False),
    sa.Column("flow", sa.String(64), nullable=False),
    sa.Column("province", sa.String(64), nullable=True),
    sa.Column("status", sa.String(16), nullable=False, comment="open | closed"),
    sa.Column("stage", sa.String(64), nullable=False),
    sa.Column("stage_visit", KEY, nullable=False),
    sa.Column("stage_entered_at", UtcDateTime(), nullable=False),
    sa.Column("stage_limit_days", sa.Integer, nullable=True),
    sa.Column("deadline", sa.Date, nullable=True, comment="last working day of the current stage"),
    sa.Column("at_risk_from", sa.Date, nullable=True, comment="first day the stage is at risk"),
    sa.Column("deadline_provisional", sa.Boolean, nullable=False),
    sa.Column("provisional", sa.Boolean, nullable=False, comment="counted unpublished calendar days"),
    sa.Column("calendar", sa.String(32), nullable=False, comment="published calendar years used"),
    sa.Column("end_to_end_commitment_days", sa.Integer, nullable=False, comment="end-to-end commitment"),
    sa.Column(
        "end_to_end_deadline",
        sa.Date,
        nullable=True,
        comment="last working day of the commitment; null: paused",
    ),
    sa.Column("end_to_end_at_risk_from", sa.Date, nullable=True, comment="first day the case is at risk"),
    sa.Column("end_to_end_provisional", sa.Boolean, nullable=False),
    sa.Column("opened_at", UtcDateTime(), nullable=False),
    sa.Column("closed_at", UtcDateTime(), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=True, comment="energised, withdrawn, cancelled; null: open"),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("responsible", KEY, nullable=True),
    sa.Column("assignee", KEY, nullable=True, comment="staff id of the open survey task"),
    sa.Column("survey_pending", sa.Boolean, nullable=False, comment="in a survey stage with nobody assigned"),
    sa.Column("rework_count", sa.Integer, nullable=False),
    sa.Column("anomaly_count", sa.Integer, nullable=False),
    sa.Column("event_count", sa.Integer, nullable=False),
    sa.Column("application", sa.JSON, nullable=False, comment="latest canonical ConnectionApplication"),
    sa.Column("anomalies", sa.JSON, nullable=False),
    sa.Column(
        "fold_state",
        sa.JSON,
        nullable=True,
        comment="workflow.fold.FoldPoint: where the fold stands, to apply the next event in order",
    ),
    # Keys the duplicate check finds other applications of the same site or address by, through an index.
    sa.Column("site_cell", sa.BigInteger, nullable=True, comment="store.grid.cell_of the site location"),
    sa.Column("site_lat", sa.Double, nullable=True, comment="site latitude (WGS84 degrees)"),
    sa.Column("site_lon", sa.Double, nullable=True, comment="site longitude (WGS84 degrees)"),
    sa.Column("address_key", sa.String(64), nullable=True, comment="sha256 of the normalised site address"),
    # With the status after each key (the site's: cell, status, latitude band), the open cases of a customer,
    # a site or an address are an index search on every dialect: SQLite's planner, without statistics, would
    # read all open cases through the status index.
    sa.Index("ix_cases_customer_status", "customer_no", "status"),
    sa.Index("ix_cases_site", "site_cell", "status", "site_lat"),
    sa.Index("ix_cases_address_status", "address_key", "status"),
    # The listing pages in (opened_at, application_no) order: each filter's index ends in that key, so a
    # page is read in order from where the cursor points, without sorting all cases the filter matches.
    sa.Index("ix_cases_opened", "opened_at", "application_no"),
    sa.Index("ix_cases_class_opened", "customer_class", "opened_at", "application_no"),
    sa.Index("ix_cases_responsible_opened", "responsible", "opened_at", "application_no"),
    sa.Index("ix_cases_stage_opened", "stage", "opened_at", "application_no"),
    sa.Index("ix_cases_status_deadline", "status", "deadline"),
    sa.Index("ix_cases_assignee", "assignee"),
)

timeline = sa.Table(
    "timeline",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("application_no", KEY, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("stage_from", sa.String(64), nullable=True),
    sa.Column("stage_to", sa.String(64), nullable=True),
    sa.Column("visit", KEY, nullable=True),
    sa.Column("source_system", sa.String(64), nullable=False),
    sa.Column("source_event_id", KEY, nullable=False),
    sa.Column("responsible", KEY, nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("cause", sa.String(32), nullable=True, comment="rework cause given by the source"),
    sa.Index("ix_timeline_case", "application_no", "position"),
)

stage_visits = sa.Table(
    "stage_visits",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("application_no", KEY, nullable=False),
    sa.Column("ordinal", sa.Integer, nullable=False),
    sa.Column("visit", KEY, nullable=False),
    sa.Column("stage", sa.String(64), nullable=False),
    sa.Column("flow", sa.String(64), nullable=False),
    sa.Column("customer_class", sa.String(32), nullable=False),
    sa.Column("unit", KEY, nullable=True),
    sa.Column("entered_at", UtcDateTime(), nullable=False),
    sa.Column("left_at", UtcDateTime(), nullable=True),
    sa.Column("exit_kind", sa.String(32), nullable=True, comment="forward | rework | anomaly"),
    sa.Column("exit_cause", sa.String(32), nullable=True, comment="rework cause given by the source"),
    sa.Column("observed", sa.Boolean, nullable=False, comment="the hub saw the stage being entered"),
    sa.Column("limit_days", sa.Integer, nullable=True),
    sa.Column("deadline", sa.Date, nullable=True),
    sa.Column("duration_days", sa.Float, nullable=True, comment="working days spent, for left visits"),
    sa.Column("over_limit", sa.Boolean, nullable=True),
    sa.Column(
        "excess_days",
        sa.Float,
        nullable=True,
        comment="working days past the deadline when left (0 in time); null: not left, or not seen entered",
    ),
    sa.Index("ix_stage_visits_case", "application_no", "ordinal"),
    sa.Index("ix_stage_visits_stage", "stage"),
    # Reworks are few among the visits; the process figures read them for every group.
    sa.Index("ix_stage_visits_exit", "exit_kind"),
)

# The analytics table of the process figures: one row per case, written with the case (workflow/facts.py).
case_figures = sa.Table(
    "case_figures",
    metadata,
    sa.Column("application_no", KEY, primary_key=True),
    sa.Column("customer_class", sa.String(32), nullable=False),
    sa.Column("unit", KEY, nullable=True, comment="the responsible supply unit"),
    sa.Column("opened_at", UtcDateTime(), nullable=False),
    sa.Column("closed_at", UtcDateTime(), nullable=True, comment="null: open"),
    sa.Column("energised_at", UtcDateTime(), nullable=True, comment="null: not energised"),
    sa.Column("energised_month", sa.String(7), nullable=True, comment="YYYY-MM in Asia/Shanghai"),
    sa.Column("measured", sa.Boolean, nullable=False, comment="energised, and seen from submission to power"),
    sa.Column("working_days", sa.Float, nullable=True),
    sa.Column("calendar_days", sa.Float, nullable=True),
    sa.Column("within_commitment", sa.Boolean, nullable=True),
    sa.Column(
        "power_working_day",
        sa.Integer,
        nullable=True,
        comment="working day after submission power came on; within a target of n when at most n",
    ),
    sa.Column("survey_to_scheme_days", sa.Float, nullable=True),
    sa.Column("scheme_drafting_days", sa.Float, nullable=True),
    sa.Index("ix_case_figures_energised", "energised_at"),
    sa.Index("ix_case_figures_opened", "opened_at"),
)

consistency_findings = sa.Table(
    "consistency_findings",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("application_no", KEY, nullable=False),
    sa.Column("rule", KEY, nullable=False, comment="configured rule name"),
    sa.Column("category", sa.String(32), nullable=False, comment="rework cause the finding prevents"),
    sa.Column("found_at", UtcDateTime(), nullable=False),
    sa.Column("cleared_at", UtcDateTime(), nullable=True, comment="when a later record no longer disagreed"),
    sa.Column("systems", sa.JSON, nullable=False, comment="the systems whose records disagree"),
    sa.Column("details", sa.JSON, nullable=False, comment="the disagreeing values, personal data masked"),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column(
        "personal",
        SealedJson("consistency_findings.personal"),
        nullable=True,
        comment="the personal values of details unmasked, by position, for callers who may read them",
    ),
    sa.Column(
        "accepted", sa.Boolean, nullable=False, default=False, comment="accepted by the online submission"
    ),
    sa.UniqueConstraint("application_no", "rule", name="uq_consistency_findings_rule"),
    sa.Index("ix_consistency_findings_found", "found_at"),
)

case_feed = sa.Table(
    "case_feed",
    metadata,
    sa.Column("event_id", KEY, primary_key=True),
    sa.Column("event_type", KEY, nullable=False),
    sa.Column("application_no", KEY, nullable=False),
    sa.Column("stage", sa.String(64), nullable=True),
    sa.Column("time", UtcDateTime(), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Index("ix_case_feed_case", "application_no", "time"),
)

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_no", KEY, primary_key=True),
    sa.Column(
        "document",
        PiiFieldsJson("customers.document", Customer),
        nullable=False,
        comment="latest canonical Customer, its x-pii fields sealed",
    ),
    sa.Column("last_sequence", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

assistant_gaps = sa.Table(
    "assistant_gaps",
    metadata,
    # The question is kept with the personal data the scrubber knows replaced (assistant/gaps.py), and sealed
    # as well: a name or an address given in passing can still be in it.
    sa.Column("question_key", sa.String(64), primary_key=True, comment="sha256 of the scrubbed question"),
    sa.Column(
        "question", SealedText("assistant_gaps.question"), nullable=False, comment="personal data replaced"
    ),
    sa.Column("kind", sa.String(16), nullable=False, comment="unanswered | low_confidence, as last asked"),
    sa.Column("best_entry_id", KEY, nullable=True, comment="closest knowledge entry, as last asked"),
    sa.Column("best_score", sa.Float, nullable=True),
    sa.Column("first_asked_at", UtcDateTime(), nullable=False),
    sa.Column("last_asked_at", UtcDateTime(), nullable=False),
    sa.Column("times_asked", sa.Integer, nullable=False),
    sa.Index("ix_assistant_gaps_last_asked", "last_asked_at"),
)
