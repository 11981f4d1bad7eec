"""Baseline: the hub schema of the last release made with create_all, before the analytics tables.

Written out table by table, so that it never changes when the models do. The one row a table starts with,
the event feed's counter, is inserted here as the models' after_create hook inserts it. A database that
release made has no alembic_version; store.database recognises it and stamps it here.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
PHASE = "expand"


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column(
            "id", sa.BigInteger(), autoincrement=False, nullable=False, comment="position in the chain"
        ),
        sa.Column(
            "at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="whole seconds: every backend keeps them exactly",
        ),
        sa.Column(
            "actor",
            sa.String(length=191),
            nullable=False,
            comment="who: operator, API caller, or process@host",
        ),
        sa.Column(
            "action",
            sa.String(length=64),
            nullable=False,
            comment="e.g. pii.read, parked.replay, config.loaded",
        ),
        sa.Column(
            "subject",
            sa.String(length=191),
            nullable=False,
            comment="what it was done to, e.g. customer/1234567",
        ),
        sa.Column("detail", sa.JSON(), nullable=False, comment="never personal data itself"),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "hash", sa.String(length=64), nullable=False, comment="HMAC-SHA256 under the chain key (hex)"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "capacity_locks",
        sa.Column("equipment_id", sa.String(length=191), nullable=False),
        sa.Column(
            "locked_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="last time an assessment took the lock",
        ),
        sa.PrimaryKeyConstraint("equipment_id"),
    )
    op.create_table(
        "capacity_reservations",
        sa.Column("application_no", sa.String(length=191), nullable=False),
        sa.Column("equipment_id", sa.String(length=191), nullable=False, comment="connection point"),
        sa.Column("feeder_id", sa.String(length=191), nullable=True),
        sa.Column("substation_id", sa.String(length=191), nullable=True),
        sa.Column("kva", sa.Float(), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "expires_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="lapses then: the supply scheme's validity, a temporary supply's end, or the days kept "
            "after energisation",
        ),
        sa.Column(
            "energised_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="when the application was energised",
        ),
        sa.Column(
            "basis_kw_at_energisation",
            sa.Float(),
            nullable=True,
            comment="the equipment's load basis when energised; released once it rose by the configured "
            "share",
        ),
        sa.PrimaryKeyConstraint("application_no", "equipment_id"),
    )
    op.create_index(
        "ix_capacity_reservations_equipment", "capacity_reservations", ["equipment_id"], unique=False
    )
    op.create_index("ix_capacity_reservations_feeder", "capacity_reservations", ["feeder_id"], unique=False)
    op.create_index(
        "ix_capacity_reservations_substation", "capacity_reservations", ["substation_id"], unique=False
    )
    op.create_table(
        "case_events",
        sa.Column("event_id", sa.String(length=191), nullable=False),
        sa.Column("application_no", sa.String(length=191), nullable=False),
        sa.Column(
            "source",
            sa.String(length=191),
            nullable=False,
            comment="CloudEvent source, e.g. /marketing/application",
        ),
        sa.Column("sequence", sa.BigInteger(), nullable=False, comment="per source and subject"),
        sa.Column("event_type", sa.String(length=191), nullable=False),
        sa.Column(
            "time",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="when the change happened at the source",
        ),
        sa.Column(
            "visit", sa.String(length=191), nullable=True, comment="stage visit a hub decision belongs to"
        ),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
        sa.UniqueConstraint("application_no", "event_type", "visit", name="uq_case_events_decision"),
    )
    op.create_index("ix_case_events_case", "case_events", ["application_no"], unique=False)
    op.create_table(
        "case_feed",
        sa.Column("event_id", sa.String(length=191), nullable=False),
        sa.Column("event_type", sa.String(length=191), nullable=False),
        sa.Column("application_no", sa.String(length=191), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_case_feed_case", "case_feed", ["application_no", "time"], unique=False)
    op.create_table(
        "cases",
        sa.Column("application_no", sa.String(length=191), nullable=False),
        sa.Column("customer_no", sa.String(length=191), nullable=False),
        sa.Column("customer_class", sa.String(length=32), nullable=False),
        sa.Column("business_type", sa.String(length=32), nullable=False),
        sa.Column("importance_grade", sa.String(length=32), nullable=False),
        sa.Column("flow", sa.String(length=64), nullable=False),
        sa.Column("province", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False, comment="open | closed"),
        sa.Column("stage", sa.String(length=64), nullable=False),
        sa.Column("stage_visit", sa.String(length=191), nullable=False),
        sa.Column("stage_entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stage_limit_days", sa.Integer(), nullable=True),
        sa.Column("deadline", sa.Date(), nullable=True, comment="last working day of the current stage"),
        sa.Column("at_risk_from", sa.Date(), nullable=True, comment="first day the stage is at risk"),
        sa.Column("deadline_provisional", sa.Boolean(), nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False, comment="counted unpublished calendar days"),
        sa.Column("calendar", sa.String(length=32), nullable=False, comment="published calendar years used"),
        sa.Column(
            "end_to_end_commitment_days", sa.Integer(), nullable=False, comment="end-to-end commitment"
        ),
        sa.Column(
            "end_to_end_deadline",
            sa.Date(),
            nullable=True,
            comment="last working day of the commitment; null: paused",
        ),
        sa.Column(
            "end_to_end_at_risk_from", sa.Date(), nullable=True, comment="first day the case is at risk"
        ),
        sa.Column("end_to_end_provisional", sa.Boolean(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "outcome",
            sa.String(length=16),
            nullable=True,
            comment="energised, withdrawn, cancelled; null: open",
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("responsible", sa.String(length=191), nullable=True),
        sa.Column(
            "assignee", sa.String(length=191), nullable=True, comment="staff id of the open survey task"
        ),
        sa.Column(
            "survey_pending", sa.Boolean(), nullable=False, comment="in a survey stage with nobody assigned"
        ),
        sa.Column("rework_count", sa.Integer(), nullable=False),
        sa.Column("anomaly_count", sa.Integer(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("application", sa.JSON(), nullable=False, comment="latest canonical ConnectionApplication"),
        sa.Column("anomalies", sa.JSON(), nullable=False),
        sa.Column(
            "site_cell", sa.BigInteger(), nullable=True, comment="store.grid.cell_of the site location"
        ),
        sa.Column(
            "address_key",
            sa.String(length=64),
            nullable=True,
            comment="sha256 of the normalised site address",
        ),
        sa.PrimaryKeyConstraint("application_no"),
    )
    op.create_index("ix_cases_address_key", "cases", ["address_key"], unique=False)
    op.create_index("ix_cases_assignee", "cases", ["assignee"], unique=False)
    op.create_index("ix_cases_customer", "cases", ["customer_no"], unique=False)
    op.create_index("ix_cases_opened", "cases", ["opened_at", "application_no"], unique=False)
    op.create_index("ix_cases_site_cell", "cases", ["site_cell"], unique=False)
    op.create_index("ix_cases_stage", "cases", ["stage"], unique=False)
    op.create_index("ix_cases_status_deadline", "cases", ["status", "deadline"], unique=False)
    op.create_table(
        "checkpoints",
        sa.Column(
            "source", sa.String(length=191), nullable=False, comment="adapter instance, e.g. marketing"
        ),
        sa.Column("value", sa.JSON(), nullable=False, comment="watermark or file state"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )
    op.create_table(
        "consistency_findings",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("application_no", sa.String(length=191), nullable=False),
        sa.Column("rule", sa.String(length=191), nullable=False, comment="configured rule name"),
        sa.Column(
            "category", sa.String(length=32), nullable=False, comment="rework cause the finding prevents"
        ),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "cleared_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="when a later record no longer disagreed",
        ),
        sa.Column("systems", sa.JSON(), nullable=False, comment="the systems whose records disagree"),
        sa.Column(
            "details", sa.JSON(), nullable=False, comment="the disagreeing values, personal data masked"
        ),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "personal",
            sa.JSON(),
            nullable=True,
            comment="the personal values of details unmasked, by position, for callers who may read them",
        ),
        sa.Column("accepted", sa.Boolean(), nullable=False, comment="accepted by the online submission"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("application_no", "rule", name="uq_consistency_findings_rule"),
    )
    op.create_index("ix_consistency_findings_found", "consistency_findings", ["found_at"], unique=False)
    op.create_table(
        "customers",
        sa.Column("customer_no", sa.String(length=191), nullable=False),
        sa.Column(
            "document",
            sa.JSON(),
            nullable=False,
            comment="latest canonical Customer, its x-pii fields sealed",
        ),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_no"),
    )
    op.create_table(
        "dispatch_file_log",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column(
            "sha256",
            sa.String(length=64),
            nullable=True,
            comment="None when the file was refused before hashing",
        ),
        sa.Column("file_name", sa.String(length=191), nullable=False),
        sa.Column("stored_name", sa.String(length=191), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False, comment="published | duplicate | error"),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False, comment="data rows read, broken ones included"),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("invalid", sa.BigInteger(), nullable=False, comment="rows parked on the invalid channel"),
        sa.Column("skipped", sa.BigInteger(), nullable=False, comment="rows of record types without a route"),
        sa.Column(
            "encoding",
            sa.String(length=16),
            nullable=True,
            comment="UTF-8 | GBK | GB18030 | ASCII; None: unread",
        ),
        sa.Column(
            "encoding_source", sa.String(length=16), nullable=True, comment="declared | bom | detected"
        ),
        sa.Column(
            "encoding_declared", sa.String(length=32), nullable=True, comment="the Code= the file declared"
        ),
        sa.Column("worker", sa.String(length=191), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dispatch_file_log_sha256", "dispatch_file_log", ["sha256", "id"], unique=False)
    op.create_table(
        "dispatch_files",
        sa.Column("sha256", sa.String(length=64), nullable=False, comment="content hash, the duplicate key"),
        sa.Column("file_name", sa.String(length=191), nullable=False, comment="name the file arrived under"),
        sa.Column(
            "stored_name", sa.String(length=191), nullable=False, comment="name in the drop folder's done/"
        ),
        sa.Column("format", sa.String(length=8), nullable=False, comment="cime | csv"),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column(
            "worker",
            sa.String(length=191),
            nullable=False,
            comment="host:pid of the hub process that published it",
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_table(
        "equipment_forecasts",
        sa.Column("equipment_id", sa.String(length=191), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False, comment="transformer, feeder or substation"),
        sa.Column("status", sa.String(length=32), nullable=False, comment="forecast | insufficient_history"),
        sa.Column("reason", sa.Text(), nullable=True, comment="why the history cannot carry a forecast"),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("document", sa.JSON(), nullable=True, comment="the EquipmentForecast"),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("equipment_id"),
    )
    op.create_table(
        "event_feed",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
            comment="position in the feed",
        ),
        sa.Column("event_id", sa.String(length=191), nullable=False),
        sa.Column("event_type", sa.String(length=191), nullable=False),
        sa.Column("subject", sa.String(length=191), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False, comment="when the change happened"),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="when the feed took it; retention",
        ),
        sa.Column("event", sa.JSON(), nullable=False, comment="the CloudEvent, unmasked"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_event_feed_received", "event_feed", ["received_at"], unique=False)
    op.create_index("ix_event_feed_type", "event_feed", ["event_type", "id"], unique=False)
    op.create_table(
        "feasibility_assessments",
        sa.Column("application_no", sa.String(length=191), nullable=False),
        sa.Column("province", sa.String(length=64), nullable=False, comment="rule set applied"),
        sa.Column("verdict", sa.String(length=32), nullable=False),
        sa.Column("recommended_voltage_kv", sa.Float(), nullable=True),
        sa.Column("document", sa.JSON(), nullable=False, comment="the FeasibilityAssessment"),
        sa.Column("application", sa.JSON(), nullable=False, comment="the ConnectionApplication assessed"),
        sa.Column(
            "customer_no",
            sa.String(length=191),
            nullable=True,
            comment="the applicant, to re-assess when its record changes",
        ),
        sa.Column("site_lon", sa.Float(), nullable=True),
        sa.Column("site_lat", sa.Float(), nullable=True),
        sa.Column("is_open", sa.Boolean(), nullable=False, comment="false once withdrawn or energised"),
        sa.Column("assessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "event_id",
            sa.String(length=191),
            nullable=False,
            comment="feasibility_assessed event of this result",
        ),
        sa.Column(
            "promised_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="first time capacity was reserved: the supply scheme's validity counts from it",
        ),
        sa.PrimaryKeyConstraint("application_no"),
    )
    op.create_index(
        "ix_feasibility_assessments_customer", "feasibility_assessments", ["customer_no"], unique=False
    )
    op.create_index(
        "ix_feasibility_assessments_site", "feasibility_assessments", ["is_open", "site_lon"], unique=False
    )
    op.create_table(
        "feasibility_customers",
        sa.Column("customer_no", sa.String(length=191), nullable=False),
        sa.Column("contract_capacity_kva", sa.Float(), nullable=True),
        sa.Column(
            "district_id", sa.String(length=191), nullable=True, comment="transformer district (TG_ID)"
        ),
        sa.Column("sequence", sa.BigInteger(), nullable=False, comment="of the customer event applied"),
        sa.PrimaryKeyConstraint("customer_no"),
    )
    op.create_table(
        "feasibility_inputs",
        sa.Column("application_no", sa.String(length=191), nullable=False),
        sa.Column("equipment_id", sa.String(length=191), nullable=False),
        sa.PrimaryKeyConstraint("application_no", "equipment_id"),
    )
    op.create_index(
        "ix_feasibility_inputs_equipment",
        "feasibility_inputs",
        ["equipment_id", "application_no"],
        unique=False,
    )
    feed_counters = op.create_table(
        "feed_counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    # The event feed's counter starts with its table: writers only ever update it, never race to insert it.
    op.bulk_insert(feed_counters, [{"name": "event_feed", "last_id": 0}])
    op.create_table(
        "forecast_alerts",
        sa.Column("equipment_id", sa.String(length=191), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("crossing_month", sa.String(length=7), nullable=False, comment="YYYY-MM"),
        sa.Column("limit_rate", sa.Float(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False, comment="the CapacityForecastAlert published"),
        sa.Column(
            "event_id", sa.String(length=191), nullable=False, comment="the capacity_forecast_exceeded event"
        ),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("equipment_id"),
    )
    op.create_index(
        "ix_forecast_alerts_month", "forecast_alerts", ["crossing_month", "equipment_id"], unique=False
    )
    op.create_table(
        "grid_equipment",
        sa.Column(
            "kind", sa.String(length=32), nullable=False, comment="substation, feeder, transformer, ..."
        ),
        sa.Column(
            "equipment_id",
            sa.String(length=191),
            nullable=False,
            comment="PMS equipment id (the event subject)",
        ),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("substation_id", sa.String(length=191), nullable=True),
        sa.Column("feeder_id", sa.String(length=191), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("cell", sa.BigInteger(), nullable=True, comment="cell_of(lon, lat)"),
        sa.Column("document", sa.JSON(), nullable=False, comment="latest canonical document"),
        sa.Column(
            "source_updated_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="the document's updated_at",
        ),
        sa.Column(
            "change_sequence", sa.BigInteger(), nullable=True, comment="sequence of the change applied"
        ),
        sa.Column(
            "change_source",
            sa.String(length=128),
            nullable=True,
            comment="source of that change (/pms/feeder)",
        ),
        sa.Column(
            "deleted_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="when the source deletion was found",
        ),
        sa.Column(
            "deleted_version_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="last_changed_at of the deletion",
        ),
        sa.Column("last_event_id", sa.String(length=191), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "revision", sa.BigInteger(), nullable=True, comment="grid_revision.revision of the last write"
        ),
        sa.PrimaryKeyConstraint("kind", "equipment_id"),
    )
    op.create_index("ix_grid_equipment_cell", "grid_equipment", ["kind", "cell"], unique=False)
    op.create_index(
        "ix_grid_equipment_feeder", "grid_equipment", ["kind", "feeder_id", "equipment_id"], unique=False
    )
    op.create_index("ix_grid_equipment_revision", "grid_equipment", ["revision"], unique=False)
    op.create_index(
        "ix_grid_equipment_substation",
        "grid_equipment",
        ["kind", "substation_id", "equipment_id"],
        unique=False,
    )
    op.create_table(
        "grid_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column(
            "generation",
            sa.String(length=36),
            nullable=False,
            comment="new when the projection starts afresh",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column(
            "principal",
            sa.String(length=191),
            nullable=False,
            comment="who sent the request (token sub or key name)",
        ),
        sa.Column("idempotency_key", sa.String(length=191), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False, comment="pending | complete"),
        sa.Column(
            "fingerprint", sa.String(length=64), nullable=True, comment="SHA-256 of method, path, query, body"
        ),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=True, comment="response headers worth replaying"),
        sa.Column("body", sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql"), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("principal", "idempotency_key"),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=191), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "load_measurements",
        sa.Column("measurement_id", sa.String(length=191), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("equipment_id", sa.String(length=191), nullable=False),
        sa.Column("load_kw", sa.Float(), nullable=True),
        sa.Column("quality", sa.Integer(), nullable=True),
        sa.Column("good", sa.Boolean(), nullable=False),
        sa.Column("event_id", sa.String(length=191), nullable=False),
        sa.PrimaryKeyConstraint("measurement_id", "measured_at"),
    )
    op.create_index(
        "ix_load_measurements_equipment", "load_measurements", ["equipment_id", "measured_at"], unique=False
    )
    op.create_table(
        "load_profiles",
        sa.Column("equipment_id", sa.String(length=191), nullable=False),
        sa.Column("data_date", sa.Date(), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False, comment="dispatch | metering"),
        sa.Column("equipment_name", sa.String(length=255), nullable=True),
        sa.Column("peak_kw", sa.Float(), nullable=True, comment="highest good point; NULL when none is good"),
        sa.Column(
            "peak_point",
            sa.Integer(),
            nullable=True,
            comment="index 0-95 of that point; NULL when none is good",
        ),
        sa.Column("good_points", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False, comment="latest canonical LoadProfile"),
        sa.Column(
            "event_source",
            sa.String(length=191),
            nullable=False,
            comment="CloudEvent source of the applied event",
        ),
        sa.Column("sequence", sa.BigInteger(), nullable=False, comment="its per-subject sequence"),
        sa.Column("event_id", sa.String(length=191), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("equipment_id", "data_date", "phase", "source"),
    )
    op.create_index(
        "ix_load_profiles_basis",
        "load_profiles",
        ["equipment_id", "phase", "data_date", "good_points", "peak_kw"],
        unique=False,
    )
    op.create_index("ix_load_profiles_date", "load_profiles", ["data_date", "equipment_id"], unique=False)
    op.create_table(
        "marketing_push",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False, comment="staging order"),
        sa.Column("app_no", sa.String(length=191), nullable=False),
        sa.Column(
            "update_time", sa.String(length=19), nullable=False, comment="UPDATE_TIME of the record version"
        ),
        sa.Column("notification_id", sa.String(length=191), nullable=True),
        sa.Column("via", sa.String(length=16), nullable=False, comment="push | create"),
        sa.Column("application", sa.JSON(), nullable=False, comment="the application record, legacy layout"),
        sa.Column("customer", sa.JSON(), nullable=True, comment="its customer"),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("app_no", "update_time", name="uq_marketing_push_version"),
    )
    op.create_index("ix_marketing_push_app", "marketing_push", ["app_no", "seq"], unique=False)
    op.create_table(
        "marketing_writebacks",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("event_id", sa.String(length=191), nullable=False, comment="the hub event written back"),
        sa.Column("event_type", sa.String(length=191), nullable=False),
        sa.Column(
            "operation",
            sa.String(length=64),
            nullable=False,
            comment="SOAP operation of the marketing system",
        ),
        sa.Column("application_no", sa.String(length=191), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False, comment="its arguments, requestId included"),
        sa.Column("status", sa.String(length=16), nullable=False, comment="pending | done | failed"),
        sa.Column("reason", sa.Text(), nullable=True, comment="why it failed"),
        sa.Column("result", sa.JSON(), nullable=True, comment="the marketing system's answer"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_marketing_writebacks_due", "marketing_writebacks", ["status", "id"], unique=False)
    op.create_table(
        "operator_actions",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "operator",
            sa.String(length=191),
            nullable=False,
            comment="who acted: API X-Operator header or CLI --operator",
        ),
        sa.Column("action", sa.String(length=16), nullable=False, comment="replay | discard"),
        sa.Column("parked_id", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False, comment="what the action did"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_operator_actions_parked", "operator_actions", ["parked_id", "id"], unique=False)
    op.create_table(
        "outbox",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("event_id", sa.String(length=191), nullable=False),
        sa.Column("event_type", sa.String(length=191), nullable=False),
        sa.Column("subject", sa.String(length=191), nullable=False),
        sa.Column("exchange", sa.String(length=191), nullable=False),
        sa.Column("routing_key", sa.String(length=191), nullable=False),
        sa.Column("correlation_id", sa.String(length=191), nullable=False),
        sa.Column(
            "body",
            sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb"),
            nullable=False,
            comment="CloudEvent JSON, sealed",
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_outbox_unsent", "outbox", ["sent_at", "id"], unique=False)
    op.create_table(
        "parked",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="invalid | dead"),
        sa.Column("reason_code", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, comment="may quote a rejected value"),
        sa.Column("source_system", sa.String(length=191), nullable=True),
        sa.Column("record_type", sa.String(length=191), nullable=True),
        sa.Column("record_key", sa.String(length=191), nullable=True),
        sa.Column("position", sa.JSON(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True, comment="raw record or message"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False, comment="parked | replayed | discarded"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_parked_kind_status", "parked", ["kind", "status"], unique=False)
    op.create_table(
        "power_factor_curves",
        sa.Column("equipment_id", sa.String(length=191), nullable=False),
        sa.Column("data_date", sa.Date(), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False, comment="dispatch | metering"),
        sa.Column("equipment_name", sa.String(length=255), nullable=True),
        sa.Column("factors", sa.JSON(), nullable=False, comment="96 factors, null where missing or flagged"),
        sa.Column("good_points", sa.Integer(), nullable=False),
        sa.Column(
            "event_source",
            sa.String(length=191),
            nullable=False,
            comment="CloudEvent source of the applied event",
        ),
        sa.Column("sequence", sa.BigInteger(), nullable=False, comment="its per-subject sequence"),
        sa.Column("event_id", sa.String(length=191), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("equipment_id", "data_date", "phase", "source"),
    )
    op.create_table(
        "source_rows",
        sa.Column("source", sa.String(length=64), nullable=False, comment="adapter instance, e.g. pms"),
        sa.Column("record_type", sa.String(length=64), nullable=False),
        sa.Column("row_key", sa.String(length=191), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False, comment="hash of the row as published"),
        sa.Column(
            "changed_at", sa.String(length=32), nullable=True, comment="its last-changed value, as read"
        ),
        sa.PrimaryKeyConstraint("source", "record_type", "row_key"),
    )
    op.create_table(
        "stage_visits",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("application_no", sa.String(length=191), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("visit", sa.String(length=191), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=False),
        sa.Column("flow", sa.String(length=64), nullable=False),
        sa.Column("customer_class", sa.String(length=32), nullable=False),
        sa.Column("unit", sa.String(length=191), nullable=True),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("exit_kind", sa.String(length=32), nullable=True, comment="forward | rework | anomaly"),
        sa.Column(
            "exit_cause", sa.String(length=32), nullable=True, comment="rework cause given by the source"
        ),
        sa.Column("observed", sa.Boolean(), nullable=False, comment="the hub saw the stage being entered"),
        sa.Column("limit_days", sa.Integer(), nullable=True),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("duration_days", sa.Float(), nullable=True, comment="working days spent, for left visits"),
        sa.Column("over_limit", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_stage_visits_case", "stage_visits", ["application_no", "ordinal"], unique=False)
    op.create_index("ix_stage_visits_stage", "stage_visits", ["stage"], unique=False)
    op.create_table(
        "subject_sequences",
        sa.Column("subject_key", sa.String(length=191), nullable=False, comment="event source + subject"),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("subject_key"),
    )
    op.create_table(
        "submissions",
        sa.Column("tracking_id", sa.String(length=191), nullable=False),
        sa.Column("idempotency_key", sa.String(length=191), nullable=True),
        sa.Column(
            "request_hash", sa.String(length=64), nullable=False, comment="SHA-256 of the validated request"
        ),
        sa.Column("request", sa.JSON(), nullable=False, comment="as submitted"),
        sa.Column("arguments", sa.JSON(), nullable=False, comment="legacy names"),
        sa.Column("status", sa.String(length=16), nullable=False, comment="pending | submitted | failed"),
        sa.Column("application_no", sa.String(length=191), nullable=True),
        sa.Column("customer_no", sa.String(length=191), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True, comment="why it failed"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "lease_until",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="a writer is working on it until then",
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tracking_id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index("ix_submissions_application", "submissions", ["application_no"], unique=False)
    op.create_index("ix_submissions_due", "submissions", ["status", "next_attempt_at"], unique=False)
    op.create_table(
        "timeline",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("application_no", sa.String(length=191), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("stage_from", sa.String(length=64), nullable=True),
        sa.Column("stage_to", sa.String(length=64), nullable=True),
        sa.Column("visit", sa.String(length=191), nullable=True),
        sa.Column("source_system", sa.String(length=64), nullable=False),
        sa.Column("source_event_id", sa.String(length=191), nullable=False),
        sa.Column("responsible", sa.String(length=191), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("cause", sa.String(length=32), nullable=True, comment="rework cause given by the source"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_timeline_case", "timeline", ["application_no", "position"], unique=False)
    op.create_table(
        "webhook_attempts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True, comment="None: no HTTP answer"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), nullable=True, comment="None: delivered or parked"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_attempts_delivery", "webhook_attempts", ["delivery_id", "id"], unique=False)
    op.create_table(
        "webhook_deliveries",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("subscription_id", sa.String(length=36), nullable=False),
        sa.Column("feed_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.String(length=191), nullable=False),
        sa.Column("event_type", sa.String(length=191), nullable=False),
        sa.Column("body", sa.Text(), nullable=False, comment="exactly what is sent"),
        sa.Column("status", sa.String(length=16), nullable=False, comment="pending | delivered | parked"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="when a pending delivery is due; None: at once",
        ),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_webhook_deliveries_event"),
    )
    op.create_index(
        "ix_webhook_deliveries_queue", "webhook_deliveries", ["subscription_id", "status", "id"], unique=False
    )
    op.create_table(
        "webhook_owners",
        sa.Column(
            "owner",
            sa.String(length=191),
            nullable=False,
            comment="a caller that has subscribed; its row is the lock",
        ),
        sa.PrimaryKeyConstraint("owner"),
    )
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column(
            "owner",
            sa.String(length=191),
            nullable=False,
            comment="the caller that created it; only it and admins see it",
        ),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column(
            "event_types", sa.JSON(), nullable=False, comment="type filters: exact or dotted prefix; [] = all"
        ),
        sa.Column("secret", sa.Text(), nullable=False, comment="HMAC key"),
        sa.Column("include_pii", sa.Boolean(), nullable=False, comment="send personal data unmasked"),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "cursor",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            comment="last feed id copied into deliveries",
        ),
        sa.Column("lease_owner", sa.String(length=191), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_webhook_subscriptions_owner", "webhook_subscriptions", ["owner", "created_at", "id"], unique=False
    )
