"""Personal data in parked messages is found from the canonical markers and the mappings, and masked in
payloads and free text while every other value of the message stays readable."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ground.errors import InvalidRecordError
from ground.settings import PROJECT_ROOT
from pipeline.config import load_hub_config
from pipeline.masking import LegacyPii, mask_parked
from pipeline.records import RawRecord
from store.parking import ParkedMessage

from ..mappings.samples import customer_record
from .parked_samples import (
    BANK_ACCOUNT,
    IDENTITY_NO,
    MOBILES,
    NOT_PERSONAL,
    PERSONAL_VALUES,
    personal_customer_record,
    personal_dead_letter_payload,
    shipped_config,
)


def _shipped() -> LegacyPii:
    return LegacyPii.from_mappings(shipped_config().mappings.values())


def _parked(
    payload: Any, reason: str, *, kind: str = "invalid", system: str | None = "marketing"
) -> ParkedMessage:
    return ParkedMessage(
        id=7,
        kind=kind,
        reason_code="schema",
        reason=reason,
        source_system=system,
        record_type="customer" if system else None,
        record_key="4130012345" if system else "m-7",
        position={"key": "4130012345"} if system else None,
        payload=payload,
        created_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        status="parked",
    )


def _rejection(payload: dict[str, Any]) -> str:
    """The reason the shipped routes park this marketing customer record with."""
    with pytest.raises(InvalidRecordError) as rejected:
        shipped_config().router.route(RawRecord("marketing", "customer", "4130012345", payload, {}))
    return str(rejected.value)


def test_legacy_personal_fields_are_those_the_mappings_feed_into_personal_canonical_fields() -> None:
    legacy = _shipped()

    assert legacy.fields_of("marketing") == {"CERT_NO", "BANK_ACCT", "MOBILE"}
    assert legacy.fields_of("pms") == frozenset() and legacy.fields_of("dispatch") == frozenset()
    # A system no mapping reads is checked against every name a mapping knows as personal.
    assert legacy.fields_of("billing") == {"CERT_NO", "BANK_ACCT", "MOBILE"}


def test_a_mapping_that_feeds_a_personal_field_from_another_column_makes_that_column_personal(
    tmp_path: Path,
) -> None:
    for folder in ("mappings", "routes"):
        shutil.copytree(PROJECT_ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("*.py"))
    customer = tmp_path / "mappings" / "marketing" / "customer.yaml"
    text = customer.read_text(encoding="utf-8")
    assert "{from: BANK_ACCT}" in text
    customer.write_text(text.replace("{from: BANK_ACCT}", "{from: DEBIT_ACCT_NO}"), encoding="utf-8")

    legacy = LegacyPii.from_mappings(load_hub_config(tmp_path).mappings.values())

    assert legacy.fields_of("marketing") == {"CERT_NO", "DEBIT_ACCT_NO", "MOBILE"}


def test_an_invalid_legacy_record_shows_its_other_fields_and_masks_its_personal_ones_and_the_reason() -> None:
    record = personal_customer_record()
    reason = _rejection(record.payload)
    assert IDENTITY_NO in reason  # the rejection quotes the identity number it could not take

    view = mask_parked(_parked(record.payload, reason), _shipped())

    shown = json.dumps([view.message.payload, view.message.reason], ensure_ascii=False)
    for value in PERSONAL_VALUES:
        assert value not in shown
    for value in NOT_PERSONAL:
        assert value in shown
    payload = view.message.payload
    assert payload["CERT_NO"] == "**************1234" and payload["BANK_ACCT"] == "***************3456"
    assert [contact["MOBILE"] for contact in payload["CONTACTS"]] == ["*******0001", "*******0002"]
    assert [contact["CONTACT_NAME"] for contact in payload["CONTACTS"]] == ["李明", "王芳"]
    assert view.message.reason == reason.replace(IDENTITY_NO, "**************1234")
    assert "identity_document.number" in view.message.reason and "customer.yaml:26" in view.message.reason
    assert view.hidden == (
        "payload.BANK_ACCT",
        "payload.CERT_NO",
        "payload.CONTACTS[].MOBILE",
        "reason",
    )
    # The stored message is left as it was.
    assert record.payload["BANK_ACCT"] == BANK_ACCOUNT


def test_personal_fields_are_found_by_name_in_a_record_whose_shape_is_wrong() -> None:
    payload = customer_record(CONTACTS={"CONTACT_NAME": "李明", "MOBILE": MOBILES[0]})
    reason = _rejection(payload)
    assert "expected a list" in reason and MOBILES[0] in reason

    view = mask_parked(_parked(payload, reason), _shipped())

    assert view.message.payload["CONTACTS"] == {"CONTACT_NAME": "李明", "MOBILE": "*******0001"}
    assert MOBILES[0] not in view.message.reason and "'CONTACT_NAME': '李明'" in view.message.reason


def test_a_personal_value_is_masked_wherever_quoted_even_when_it_looks_like_nothing_known() -> None:
    # A passport number has none of the shapes free text is scanned for; it is masked as this record's value.
    payload = customer_record(CERT_TYPE_CODE="03", CERT_NO=["E12345678"])
    reason = _rejection(payload)
    assert "E12345678" in reason

    view = mask_parked(_parked(payload, reason), _shipped())

    assert view.message.payload["CERT_NO"] == ["*****5678"]
    assert "E12345678" not in view.message.reason and "*****5678" in view.message.reason
    # Only where it stands alone: a longer code that merely contains it is another value.
    assert view.mask_text("E12345678 vs XE123456789") == "*****5678 vs XE123456789"


def test_free_text_is_scanned_for_identity_mobile_and_account_numbers_of_any_record() -> None:
    reason = (
        "rejected: 身份证110101199003071234, credit code 91411302MA3X123456, mobile 13912345678, "
        "account 6212345678901234567; application 2611200001234 of customer 4130012345"
    )

    shown = mask_parked(_parked({"CONS_NO": "4130012345"}, reason), _shipped()).message.reason

    for value in ("110101199003071234", "91411302MA3X123456", "13912345678", "6212345678901234567"):
        assert value not in shown
    assert "application 2611200001234 of customer 4130012345" in shown


def test_a_dead_letter_shows_its_event_with_the_personal_fields_masked_and_the_rest_as_sent() -> None:
    payload = personal_dead_letter_payload()

    view = mask_parked(
        _parked(payload, payload["failures"][-1]["error"], kind="dead", system=None), _shipped()
    )

    shown = view.message.payload
    for value in PERSONAL_VALUES:
        assert value not in json.dumps(shown, ensure_ascii=False) and value not in view.message.reason
    sent, masked = json.loads(payload["body"]), json.loads(shown["body"])
    assert masked["data"]["identity_document"] == {"type": "resident_id", "number": "**************1234"}
    assert masked["data"]["bank_account"] == {
        "bank": "中国工商银行南阳分行",
        "account_no": "***************3456",
    }
    assert [contact["phone"] for contact in masked["data"]["contacts"]] == ["*******0001", "*******0002"]
    for key in ("id", "type", "subject", "time", "correlationid"):
        assert masked[key] == sent[key]
    assert masked["data"]["name"] == sent["data"]["name"] and masked["data"]["customer_no"] == "4130012345"
    assert shown["failures"][-1]["error"] == "duplicate key (contact_phone)=(*******0001) in contacts"
    assert shown["headers"] == payload["headers"] and shown["queue"] == payload["queue"]
    assert "payload.body.data.identity_document.number" in view.hidden and "reason" in view.hidden


def test_a_message_without_personal_data_is_shown_exactly_as_parked() -> None:
    payload = customer_record(CERT_NO=None, BANK_ACCT=None, CONTACTS=None, ELEC_TYPE_CODE="999")
    reason = _rejection(payload)
    message = _parked(payload, reason)

    view = mask_parked(message, _shipped())

    assert view.message == message and view.hidden == ()


def test_when_the_mappings_cannot_be_read_every_legacy_value_is_masked() -> None:
    record = personal_customer_record()

    view = mask_parked(_parked(record.payload, "unreadable"), LegacyPii.unknown())

    payload = view.message.payload
    assert payload["CONS_NAME"] == "******李记餐馆" and payload["CERT_NO"] == "**************1234"
    assert payload["CONTACTS"][0] == {"CONTACT_NAME": "**", "MOBILE": "*******0001", "CONTACT_TYPE": "**"}
    assert set(payload) == set(record.payload)  # the names stay readable, to see what the record held
    assert view.message.reason == "unreadable"
