"""PII fields are found from the schema markers and masked wherever they sit."""

from __future__ import annotations

from canonical_model import Customer
from canonical_model.pii import mask_document, mask_value, pii_paths


def test_pii_paths_come_from_the_schema_markers() -> None:
    assert set(pii_paths(Customer)) == {
        ("identity_document", "number"),
        ("bank_account", "account_no"),
        ("contacts", "[]", "phone"),
    }


def test_mask_value_keeps_only_the_last_four_of_long_values() -> None:
    assert mask_value("411302199001011234") == "**************1234"
    assert mask_value("13800001111") == "*******1111"
    assert mask_value("12345678") == "********"


def test_mask_document_masks_every_pii_field_and_nothing_else() -> None:
    document = {
        "customer_no": "4130012345",
        "name": "李记餐馆",
        "category": "general_commercial",
        "identity_document": {"type": "resident_id", "number": "411302199001011234"},
        "bank_account": {"bank": "中国工商银行", "account_no": "6222021234567890123"},
        "contacts": [{"name": "李明", "phone": "13800001111"}, {"name": "王芳", "phone": "13900002222"}],
    }
    masked = mask_document(document, Customer)
    assert masked["identity_document"] == {"type": "resident_id", "number": "**************1234"}
    assert masked["bank_account"] == {"bank": "中国工商银行", "account_no": "***************0123"}
    assert [c["phone"] for c in masked["contacts"]] == ["*******1111", "*******2222"]
    assert [c["name"] for c in masked["contacts"]] == ["李明", "王芳"]
    assert masked["name"] == "李记餐馆"
    # The stored document itself is left untouched.
    assert document["identity_document"]["number"] == "411302199001011234"  # type: ignore[index]


def test_absent_pii_fields_are_fine() -> None:
    assert mask_document({"customer_no": "1"}, Customer) == {"customer_no": "1"}
