"""Table definitions of the hub database; the same DDL runs on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

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


# Short string columns carry explicit lengths because MariaDB cannot index unbounded text.
KEY = sa.String(191)

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("source", KEY, primary_key=True, comment="adapter instance, e.g. marketing"),
    sa.Column("value", sa.JSON, nullable=False, comment="watermark or file state"),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
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
    sa.Column("body", sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql"), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("sent_at", UtcDateTime(), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_outbox_unsent", "sent_at", "id"),
)

parked = sa.Table(
    "parked",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False, comment="invalid | dead"),
    sa.Column("reason_code", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("source_system", KEY, nullable=True),
    sa.Column("record_type", KEY, nullable=True),
    sa.Column("record_key", KEY, nullable=True),
    sa.Column("position", sa.JSON, nullable=True),
    sa.Column("payload", sa.JSON, nullable=True),
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

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("application_no", KEY, primary_key=True),
    sa.Column("customer_no", KEY, nullable=False),
    sa.Column("customer_class", sa.String(32), nullable=False),
    sa.Column("business_type", sa.String(32), nullable=False),
    sa.Column("stage", sa.String(64), nullable=False),
    sa.Column("stage_entered_at", UtcDateTime(), nullable=False),
    sa.Column("opened_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("responsible", KEY, nullable=True),
    sa.Column("last_sequence", sa.BigInteger, nullable=False),
    sa.Column("application", sa.JSON, nullable=False, comment="latest canonical ConnectionApplication"),
    sa.Index("ix_cases_customer", "customer_no"),
)

timeline = sa.Table(
    "timeline",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("application_no", KEY, nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("stage_from", sa.String(64), nullable=True),
    sa.Column("stage_to", sa.String(64), nullable=False),
    sa.Column("source_system", sa.String(64), nullable=False),
    sa.Column("source_event_id", KEY, nullable=False),
    sa.Column("responsible", KEY, nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Index("ix_timeline_case", "application_no", "id"),
)

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_no", KEY, primary_key=True),
    sa.Column("document", sa.JSON, nullable=False, comment="latest canonical Customer"),
    sa.Column("last_sequence", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
