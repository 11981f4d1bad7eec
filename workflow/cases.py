"""Case tracking: every application becomes a case with a stage and a timeline."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from canonical_model.application import ConnectionApplication
from canonical_model.customer import Customer
from canonical_model.envelope import CloudEvent
from store.database import utcnow
from store.schema import cases, customers, timeline

APPLICATION_CHANGED = "cn.yekuo.application.changed.v1"
CUSTOMER_CHANGED = "cn.yekuo.customer.changed.v1"

# The stage every case starts in: 业务受理 (acceptance) opens every flow, reformed or full.
FIRST_STAGE = "acceptance"


def apply_application_changed(conn: Connection, event: CloudEvent) -> None:
    """Open a case for a new application, or update the case's application from a newer event."""
    application = ConnectionApplication.model_validate(event.data)
    document = application.model_dump(mode="json", exclude_none=True)
    row = conn.execute(
        sa.select(cases.c.last_sequence).where(cases.c.application_no == application.application_no)
    ).first()
    now = utcnow()
    if row is None:
        conn.execute(
            cases.insert().values(
                application_no=application.application_no,
                customer_no=application.customer_no,
                customer_class=application.customer_class.value,
                business_type=application.business_type.value,
                stage=FIRST_STAGE,
                stage_entered_at=application.submitted_at,
                opened_at=application.submitted_at,
                updated_at=now,
                responsible=application.org_no,
                last_sequence=event.sequence,
                application=document,
            )
        )
        conn.execute(
            timeline.insert().values(
                application_no=application.application_no,
                at=application.submitted_at,
                stage_from=None,
                stage_to=FIRST_STAGE,
                source_system=_system_of(event),
                source_event_id=event.id,
                responsible=application.org_no,
                note=f"application accepted via {application.channel.value}",
            )
        )
        return
    if event.sequence <= row.last_sequence:
        return  # an older update overtaken by a newer one already applied
    conn.execute(
        cases.update()
        .where(cases.c.application_no == application.application_no)
        .values(
            customer_no=application.customer_no,
            customer_class=application.customer_class.value,
            business_type=application.business_type.value,
            application=document,
            last_sequence=event.sequence,
            updated_at=now,
        )
    )


def apply_customer_changed(conn: Connection, event: CloudEvent) -> None:
    """Keep the latest customer document for the API, ignoring updates older than the one stored."""
    customer = Customer.model_validate(event.data)
    document = customer.model_dump(mode="json", exclude_none=True)
    row = conn.execute(
        sa.select(customers.c.last_sequence).where(customers.c.customer_no == customer.customer_no)
    ).first()
    if row is None:
        conn.execute(
            customers.insert().values(
                customer_no=customer.customer_no,
                document=document,
                last_sequence=event.sequence,
                updated_at=utcnow(),
            )
        )
    elif event.sequence > row.last_sequence:
        conn.execute(
            customers.update()
            .where(customers.c.customer_no == customer.customer_no)
            .values(document=document, last_sequence=event.sequence, updated_at=utcnow())
        )


HANDLERS: dict[str, Callable[[Connection, CloudEvent], None]] = {
    APPLICATION_CHANGED: apply_application_changed,
    CUSTOMER_CHANGED: apply_customer_changed,
}


def handle_event(conn: Connection, event: CloudEvent) -> None:
    """Apply one canonical event to the workflow state; unknown types are an error, not a silent drop."""
    handler = HANDLERS.get(event.type)
    if handler is None:
        raise ValueError(f"workflow has no handler for event type {event.type}")
    handler(conn, event)


def _system_of(event: CloudEvent) -> str:
    """The legacy system named by the event source, e.g. /marketing/application -> marketing."""
    return event.source.strip("/").split("/", 1)[0] or "hub"
