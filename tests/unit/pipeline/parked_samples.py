"""Parked messages for operator tests: dead letters as the parking drainer writes them, invalid input."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from bus import open_bus
from bus.port import Binding, ExchangeSpec, QueueSpec, Topology
from ground.settings import PROJECT_ROOT
from pipeline.config import HubConfig, load_hub_config
from pipeline.ingest import Ingestor
from pipeline.records import RawRecord
from store.parking import park

from ..mappings.samples import application_record, customer_record
from ..workflow.events import application_event, customer_event

EXCHANGE = "yekuo.events"
WORKFLOW_QUEUE = "yekuo.workflow"
AUDIT_QUEUE = "yekuo.audit"
CONSUMER_QUEUES = (WORKFLOW_QUEUE, AUDIT_QUEUE)
# Headers a message carries besides the retry bookkeeping; a replay must keep them.
BUSINESS_HEADERS = {
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "org-no": "41401",
}


def declare_consumers(bus_url: str) -> None:
    """Two consumers bound to the same topics, each with its parking queue, like the hub declares them."""
    bus = open_bus(bus_url)
    try:
        bus.declare(
            Topology(
                exchanges=(ExchangeSpec(EXCHANGE),),
                queues=tuple(
                    spec
                    for queue in CONSUMER_QUEUES
                    for spec in (
                        QueueSpec(queue, bindings=(Binding(EXCHANGE, "application.#"),)),
                        QueueSpec(f"{queue}.parking"),
                    )
                ),
            )
        )
    finally:
        bus.close()


def dead_letter_payload(queue: str = WORKFLOW_QUEUE, *, application_no: str = "A1") -> dict[str, Any]:
    """What the drainer records of a message its consumer gave up on after three attempts."""
    event = application_event(application_no)
    return {
        "queue": queue,
        "exchange": EXCHANGE,
        "routing_key": "application.changed.marketing",
        "message_id": event.id,
        "correlation_id": event.correlationid,
        "type": event.type,
        "content_type": "application/cloudevents+json; charset=utf-8",
        "body": event.model_dump_json(),
        "headers": {
            **BUSINESS_HEADERS,
            "x-yekuo-attempt": 3,
            "x-yekuo-attempts-max": 3,
            "x-death": [{"count": 3, "reason": "expired", "queue": f"{queue}.retry.1"}],
            "x-first-death-queue": queue,
            "x-first-death-reason": "rejected",
            "x-first-death-exchange": EXCHANGE,
        },
        "failures": [
            {"at": f"2026-11-20T09:1{n}:00+00:00", "attempt": n, "error": f"database is locked (try {n})"}
            for n in (1, 2, 3)
        ],
    }


def park_dead_letter(engine: Engine, payload: dict[str, Any]) -> int:
    with engine.begin() as conn:
        return park(
            conn,
            kind="dead",
            reason_code="retries_exhausted",
            reason=payload["failures"][-1]["error"],
            payload=payload,
            record_key=payload["message_id"],
        )


def park_invalid_envelope(engine: Engine) -> int:
    with engine.begin() as conn:
        return park(
            conn,
            kind="invalid",
            reason_code="envelope",
            reason="message m-1 on yekuo.workflow is not a CloudEvent: id: Field required",
            payload='{"not": "an event"}',
            record_key="m-1",
        )


def unknown_voltage_record(application_no: str = "A2") -> RawRecord:
    """An application whose VOLT_CODE the shipped code table does not know."""
    return RawRecord(
        "marketing",
        "application",
        application_no,
        application_record(APP_NO=application_no, VOLT_CODE="AC99999"),
        {"key": application_no},
    )


# Personal data of the samples below: a resident ID, the bank account and both contacts' mobiles of
# mappings.samples.customer_record, and, beside them, data of the same record that is not personal.
IDENTITY_NO = "110101199003071234"
BANK_ACCOUNT = "6222021712000123456"
MOBILES = ("13803770001", "13903770002")
PERSONAL_VALUES = (IDENTITY_NO, BANK_ACCOUNT, *MOBILES)
NOT_PERSONAL = (
    "南阳市宛城区李记餐馆",
    "南阳市宛城区仲景路66号",
    "中国工商银行南阳分行",
    "李明",
    "4130012345",
)


def personal_customer_record(customer_no: str = "4130012345") -> RawRecord:
    """A customer whose identity number the marketing system sent as a number: parked as a schema
    violation whose reason quotes that number."""
    record = customer_record(CONS_NO=customer_no, CERT_TYPE_CODE="01", CERT_NO=int(IDENTITY_NO))
    assert record["BANK_ACCT"] == BANK_ACCOUNT
    assert tuple(contact["MOBILE"] for contact in record["CONTACTS"]) == MOBILES
    return RawRecord("marketing", "customer", customer_no, record, {"key": customer_no})


def personal_dead_letter_payload(queue: str = WORKFLOW_QUEUE) -> dict[str, Any]:
    """A customer event its consumer gave up on, the last failure quoting a contact's mobile."""
    event = customer_event(
        "4130012345",
        identity_document={"type": "resident_id", "number": IDENTITY_NO},
        bank_account={"bank": "中国工商银行南阳分行", "account_no": BANK_ACCOUNT},
        contacts=[{"name": "李明", "phone": MOBILES[0]}, {"name": "王芳", "phone": MOBILES[1]}],
    )
    payload = dead_letter_payload(queue)
    payload.update(message_id=event.id, correlation_id=event.correlationid, type=event.type)
    payload.update(body=event.model_dump_json(), routing_key="customer.changed.marketing")
    payload["failures"][-1]["error"] = f"duplicate key (contact_phone)=({MOBILES[0]}) in contacts"
    return payload


@functools.cache
def shipped_config() -> HubConfig:
    return load_hub_config(PROJECT_ROOT)


def shipped_ingestor(engine: Engine) -> Ingestor:
    return Ingestor(engine, shipped_config().router)


def park_invalid_record(engine: Engine, record: RawRecord | None = None) -> int:
    outcome = shipped_ingestor(engine).ingest([record or unknown_voltage_record()])
    assert len(outcome.parked_ids) == 1
    return outcome.parked_ids[0]


def config_knowing_voltage(tmp_path: Path, code: str = "AC99999", kv: float = 20) -> Path:
    """A copy of the shipped mappings and routes whose VOLT_CODE table also knows the code."""
    for folder in ("mappings", "routes"):
        shutil.copytree(
            PROJECT_ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("*.py", "__pycache__")
        )
    table = tmp_path / "mappings" / "codes" / "marketing" / "volt_code.yaml"
    table.write_text(table.read_text(encoding="utf-8").rstrip("\n") + f"\n  {code}: {kv}\n", encoding="utf-8")
    return tmp_path
