"""Personal data at rest and in logs: after the marketing path ran (polled records, bad records parked, an
online submission created in the marketing system), a dump of the hub database holds no identity
number, phone number or bank account of any customer, the store still answers them in clear, and no log
record of the run carries one either."""

from __future__ import annotations

import json
import logging
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.marketing.outbound import default_codes, submission_arguments
from ground.logs import QUIET_LIBRARIES
from ground.settings import Settings
from simulators.marketing.seed import generate_rows
from simulators.marketing.server import SimulatorServer
from simulators.marketing.world import CustomerRow, MarketingWorld
from store.audit import list_entries, verify_chain
from store.crypto import Keyring, new_key
from store.database import create_engine
from store.schema import customers, metadata, parked
from store.submissions import add_submission, get_submission
from tests.integration.marketing_pipeline import fast_client, marketing_pipeline
from workflow.queries import get_customer
from yekuo.cli import main
from yekuo.serve import serve_hub

NEW_CUSTOMER_ID = "411303199001011234"
NEW_CUSTOMER_PHONE = "13803770001"
NEW_CUSTOMER_ACCOUNT = "6217001234567890123"
SUBMISSION: dict[str, Any] = {
    "business_type": "new_connection",
    "requested_capacity_kva": 12,
    "customer_class": "lv_residential",
    "importance_grade": "none",
    "channel": "online",
    "site_address": "南阳市卧龙区人民路8号",
    "org_no": "41401",
    "documents": [],
    "customer": {
        "name": "张伟",
        "category": "residential",
        "identity_document": {"type": "resident_id", "number": NEW_CUSTOMER_ID},
        "bank_account": {"bank": "中国银行南阳分行", "account_no": NEW_CUSTOMER_ACCOUNT},
        "contacts": [{"name": "张伟", "phone": NEW_CUSTOMER_PHONE, "role": "01"}],
    },
}


@dataclass
class Seeded:
    """The simulated marketing system and what the run should have done with its customers."""

    world: MarketingWorld
    good: list[CustomerRow]
    bad: list[CustomerRow]

    def personal_values(self) -> set[str]:
        values = {NEW_CUSTOMER_ID, NEW_CUSTOMER_PHONE, NEW_CUSTOMER_ACCOUNT}
        for row in [*self.good, *self.bad]:
            values.add(row["CERT_NO"])
            values.update(contact["MOBILE"] for contact in row["CONTACTS"])
            if row["BANK_ACCT"]:
                values.add(row["BANK_ACCT"])
        return values


def seeded() -> Seeded:
    """24 customers behind 36 applications; two of the customers cannot be mapped and will be parked."""
    rows, applications = generate_rows(seed=20261126, customers=24, applications=36)
    used = {row["CONS_NO"] for row in applications}
    customers_used = sorted((row for row in rows if row["CONS_NO"] in used), key=lambda row: row["CONS_NO"])
    customers_used[0]["ELEC_TYPE_CODE"] = "999"  # unknown code
    customers_used[1]["CONS_NAME"] = ""  # required
    return Seeded(MarketingWorld(rows, applications), good=customers_used[2:], bad=customers_used[:2])


def run_marketing_path(engine: Engine, seeded: Seeded) -> str:
    """Submit one application online, then poll, deliver and write until settled; the tracking id."""
    request = dict(SUBMISSION)
    with engine.begin() as conn:
        add_submission(
            conn,
            tracking_id="trk-pii-1",
            idempotency_key=None,
            request_hash="0" * 64,
            request=request,
            arguments=submission_arguments(request, default_codes()),
        )
    with (
        SimulatorServer(seeded.world) as simulator,
        marketing_pipeline(engine, fast_client(simulator.wsdl_url)) as pipeline,
    ):
        pipeline.sync()
        pipeline.write_until_idle()
        pipeline.sync()
        pipeline.write_until_idle()
    return "trk-pii-1"


def assert_processed(engine: Engine, seeded: Seeded, tracking_id: str) -> None:
    """The run really handled these customers: stored in clear for readers, or parked."""
    with engine.connect() as conn:
        stored = set(conn.execute(sa.select(customers.c.customer_no)).scalars())
        parked_keys = set(
            conn.execute(sa.select(parked.c.record_key).where(parked.c.record_type == "customer")).scalars()
        )
        submission = get_submission(conn, tracking_id)
        assert submission is not None and submission.status == "submitted", submission
        new_customer = next(
            document
            for number in stored
            if (document := get_customer(conn, number))
            and document.get("identity_document", {}).get("number") == NEW_CUSTOMER_ID
        )
        for row in seeded.good:
            document = get_customer(conn, row["CONS_NO"])
            assert document is not None
            assert document["identity_document"]["number"] == row["CERT_NO"]
            assert [contact["phone"] for contact in document["contacts"]] == [
                contact["MOBILE"] for contact in row["CONTACTS"]
            ]
    assert {row["CONS_NO"] for row in seeded.good} <= stored
    assert parked_keys == {row["CONS_NO"] for row in seeded.bad}
    assert new_customer["contacts"][0]["phone"] == NEW_CUSTOMER_PHONE
    assert new_customer["bank_account"]["account_no"] == NEW_CUSTOMER_ACCOUNT


def database_text(engine: Engine) -> str:
    """Every row of the hub database as text: pg_dump, or each row cast to text where pg_dump is missing."""
    url = engine.url
    try:
        dump = subprocess.run(
            ["pg_dump", "-h", url.host or "127.0.0.1", "-U", url.username or "postgres", url.database or ""],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    except (FileNotFoundError, subprocess.CalledProcessError):
        with engine.connect() as conn:
            return "\n".join(
                text
                for table in metadata.sorted_tables
                for text in conn.execute(
                    sa.text(f'SELECT CAST(t AS text) FROM "{table.name}" AS t')
                ).scalars()
            )
    return dump.stdout


@pytest.mark.postgres
def test_a_database_dump_holds_no_personal_data_in_clear(postgres_engine: Engine) -> None:
    world = seeded()
    tracking_id = run_marketing_path(postgres_engine, world)
    assert_processed(postgres_engine, world, tracking_id)

    dump = database_text(postgres_engine)

    # The dump has the customers' rows (their numbers are not personal data), with the values sealed.
    assert "enc:v1:" in dump and all(row["CONS_NO"] in dump for row in world.good)
    lowered = dump.lower()
    leaked = sorted(
        value
        for value in world.personal_values()
        if value in dump or value.encode().hex() in lowered  # bytea columns dump as hex
    )
    assert leaked == []


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every hub log record down to DEBUG, with the libraries held at WARNING as the hub's set-up does."""
    caplog.set_level(logging.DEBUG)
    for library in QUIET_LIBRARIES:
        caplog.set_level(logging.WARNING, logger=library)
    yield caplog


def test_no_log_record_of_a_run_carries_personal_data(
    sqlite_engine: Engine, debug_logs: pytest.LogCaptureFixture
) -> None:
    world = seeded()
    tracking_id = run_marketing_path(sqlite_engine, world)
    assert_processed(sqlite_engine, world, tracking_id)

    records = debug_logs.records
    texts = [
        " ".join(
            [
                record.getMessage(),
                repr(record.args),
                record.exc_text or "",
                logging.Formatter().format(record),
            ]
        )
        for record in records
    ]
    leaked = sorted({value for value in world.personal_values() for text in texts if value in text})
    assert leaked == []
    # The run logged about these very customers (their parking), so the check above had something to see.
    parked_lines = [text for text in texts if text.startswith("parked marketing/customer")]
    assert sorted(line.split()[2].rstrip(":") for line in parked_lines) == sorted(
        row["CONS_NO"] for row in world.bad
    )


@pytest.mark.postgres
def test_rotate_key_reseals_everything_and_the_old_key_can_then_be_removed(
    postgres_engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = new_key(), new_key()
    url = postgres_engine.url.render_as_string(hide_password=False)
    under_old_key = create_engine(url, keyring=Keyring.from_encoded({"k2026": old}, None))
    world = seeded()
    tracking_id = run_marketing_path(under_old_key, world)
    under_old_key.dispose()
    monkeypatch.setenv("YEKUO_PII__KEYS", json.dumps({"k2026": old, "k2027": new}))
    monkeypatch.setenv("YEKUO_PII__ACTIVE_KEY_ID", "k2027")

    assert main(["pii", "rotate-key", "--db-url", url, "--batch", "7", "--operator", "sec-admin"]) == 0
    printed = capsys.readouterr().out
    assert "older keys can be removed" in printed
    assert main(["pii", "rotate-key", "--db-url", url]) == 0  # a second run finds nothing left to do
    assert set(re.findall(r"(\d+) re-encrypted", capsys.readouterr().out)) == {"0"}

    monkeypatch.setenv("YEKUO_PII__KEYS", json.dumps({"k2027": new}))  # the old key is gone
    monkeypatch.delenv("YEKUO_PII__ACTIVE_KEY_ID")
    under_new_key = create_engine(url)
    assert_processed(under_new_key, world, tracking_id)
    dump = database_text(under_new_key)
    assert "enc:v1:k2026:" not in dump and b"enc:v1:k2026:".hex() not in dump.lower()
    assert "enc:v1:k2027:" in dump
    with under_new_key.connect() as conn:
        rotation, repeated = list_entries(conn, action="pii.key_rotated")
        assert verify_chain(conn).ok
    under_new_key.dispose()
    assert (rotation.actor, rotation.subject) == ("sec-admin", "key/k2027")
    assert rotation.detail["resealed"]["customers.document"] >= len(world.good)
    assert set(rotation.detail["values_per_key"]) == {"k2027"}
    assert repeated.detail["resealed"] == {}


def test_yekuo_run_refuses_to_start_without_a_pii_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("YEKUO_PII__KEYS", raising=False)
    monkeypatch.setenv("YEKUO_AUTH__JWT_SECRET", "a-token-secret-that-is-long-enough-for-hs256")

    assert serve_hub(Settings()) == 1
    assert "YEKUO_PII__KEYS" in capsys.readouterr().err
