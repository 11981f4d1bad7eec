"""Sealed columns: personal data is stored encrypted and read back in clear, and key rotation re-seals it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store.crypto import Keyring, PiiDecryptError, PiiKeyError
from store.database import create_engine, create_schema
from store.encrypted import PLAINTEXT, key_usage, reseal
from store.parking import list_parked, park
from store.schema import customers, metadata, outbox, parked

K1 = Keyring({"k1": b"\x01" * 32}, "k1")
K1_K2 = Keyring({"k1": b"\x01" * 32, "k2": b"\x02" * 32}, "k2")
K2 = Keyring({"k2": b"\x02" * 32}, "k2")
NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def customer(number: str, phone: str, account: str) -> dict[str, Any]:
    return {
        "customer_no": number,
        "name": "张伟",
        "category": "residential",
        "contacts": [{"name": "张伟", "phone": phone, "role": "01"}],
        "identity_document": {"type": "resident_id", "number": f"4113021985031700{number[-2:]}"},
        "bank_account": {"bank": "中国银行南阳分行", "account_no": account},
    }


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/hub.db"


@pytest.fixture
def engine(db_path: str) -> Iterator[Engine]:
    engine = create_engine(db_path, keyring=K1)
    create_schema(engine)
    yield engine
    engine.dispose()


def stored(engine: Engine, table: sa.Table, column: str) -> list[Any]:
    """What the database holds, below the column type."""
    with engine.connect() as conn:
        return [row[0] for row in conn.exec_driver_sql(f"SELECT {column} FROM {table.name} ORDER BY 1")]


def add_customer(engine: Engine, document: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(
            customers.insert().values(
                customer_no=document["customer_no"], document=document, last_sequence=1, updated_at=NOW
            )
        )


def documents(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(customers.c.document).order_by(customers.c.customer_no)).scalars())


def test_customer_documents_keep_only_their_personal_fields_sealed(engine: Engine) -> None:
    document = customer("0000000101", "13912345678", "6212345678901234567")
    add_customer(engine, document)

    (raw,) = stored(engine, customers, "document")
    assert "13912345678" not in raw and "411302198503170001" not in raw and "6212345678901234567" not in raw
    kept = json.loads(raw)
    # The rest stays readable.
    assert kept["name"] == "张伟" and kept["bank_account"]["bank"] == "中国银行南阳分行"
    assert kept["identity_document"]["type"] == "resident_id"
    assert raw.count("enc:v1:k1:") == 3
    assert documents(engine) == [document]


def test_whole_values_are_sealed_and_read_back(engine: Engine) -> None:
    record = {
        "CONS_NO": "0000000101",
        "CERT_NO": "41130219850317002X",
        "CONTACTS": [{"MOBILE": "13912345678"}],
    }
    with engine.begin() as conn:
        park(
            conn,
            kind="invalid",
            reason_code="schema",
            reason="field 'contacts.0.phone': bad value: '13912345678'",
            payload=record,
            source_system="marketing",
            record_type="customer",
            record_key="0000000101",
        )
        conn.execute(
            outbox.insert(),
            {
                "event_id": "e1",
                "event_type": "t",
                "subject": "s",
                "exchange": "x",
                "routing_key": "r",
                "correlation_id": "c",
                "body": b'{"data":{"number":"41130219850317002X"}}',
                "created_at": NOW,
                "attempts": 0,
            },
        )

    for table, column in ((parked, "payload"), (parked, "reason"), (outbox, "body")):
        (raw,) = stored(engine, table, column)
        text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
        assert "enc:v1:k1:" in text and "41130219850317002X" not in text and "13912345678" not in text
    with engine.connect() as conn:
        (message,) = list_parked(conn)
        body = conn.execute(sa.select(outbox.c.body)).scalar_one()
    assert message.payload == record and "13912345678" in message.reason
    assert body == b'{"data":{"number":"41130219850317002X"}}'


def test_a_sealed_field_copied_into_another_field_does_not_open(engine: Engine) -> None:
    add_customer(engine, customer("0000000101", "13912345678", "6212345678901234567"))
    with engine.begin() as conn:
        raw = conn.execute(sa.select(sa.type_coerce(customers.c.document, sa.JSON))).scalar_one()
        raw["contacts"][0]["phone"] = raw["identity_document"]["number"]
        conn.execute(customers.update().values(document=sa.type_coerce(raw, sa.JSON)))

    with pytest.raises(PiiDecryptError, match="contacts"):
        documents(engine)


def test_rotation_reseals_everything_under_the_new_key_and_the_old_key_can_go(
    db_path: str, engine: Engine
) -> None:
    first = customer("0000000101", "13912345678", "6212345678901234567")
    second = customer("0000000102", "13812345678", "6212345678901234500")
    add_customer(engine, first)
    add_customer(engine, second)
    with engine.begin() as conn:
        park(
            conn, kind="invalid", reason_code="schema", reason="r", payload={"CERT_NO": "41130219850317002X"}
        )

    rotating = create_engine(db_path, keyring=K1_K2)
    results = {result.column: result for result in reseal(rotating, metadata, batch_size=1)}
    again = {result.column: result.resealed for result in reseal(rotating, metadata)}
    rotating.dispose()

    assert results["customers.document"].examined == 2 and results["customers.document"].resealed == 2
    assert results["parked.payload"].resealed == 1 and results["parked.reason"].resealed == 1
    assert set(again.values()) == {0}  # idempotent: nothing left under the old key
    assert "enc:v1:k1:" not in "".join(stored(engine, customers, "document"))
    new_only = create_engine(db_path, keyring=K2)
    usage = key_usage(new_only, metadata)
    assert usage["customers.document"] == {"k2": 6}
    assert documents(new_only) == [first, second]
    new_only.dispose()


def test_rotation_seals_values_stored_before_encryption(engine: Engine) -> None:
    document = customer("0000000101", "13912345678", "6212345678901234567")
    with engine.begin() as conn:
        conn.execute(
            customers.insert().values(
                customer_no="0000000101",
                document=sa.type_coerce(document, sa.JSON),  # below the column type: plaintext
                last_sequence=1,
                updated_at=NOW,
            )
        )
    assert key_usage(engine, metadata)["customers.document"] == {PLAINTEXT: 3}
    assert documents(engine) == [document]  # plaintext stays readable until rotated

    reseal(engine, metadata)

    assert key_usage(engine, metadata)["customers.document"] == {"k1": 3}
    assert "13912345678" not in stored(engine, customers, "document")[0]


def test_a_removed_key_that_still_seals_values_is_named(db_path: str, engine: Engine) -> None:
    add_customer(engine, customer("0000000101", "13912345678", "6212345678901234567"))
    new_only = create_engine(db_path, keyring=K2)

    with pytest.raises(PiiKeyError, match=r"'k1'.*rotate-key"):
        documents(new_only)
    new_only.dispose()
