"""The marketing system's record layout (SG186 field names) and its plain-dict form, read from XML.

A record is a dict of every field of its layout, in layout order: str for codes and text, float for
decimals, None for an absent or empty element, and a list of item dicts for a repeating group (DOCUMENTS,
CONTACTS). The zeep client yields this form from its answers; record_from_xml yields the same form from a
pushed element, so a record version reads the same whichever way it came in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lxml import etree

from ground.errors import MalformedInputError

APPLICATION_FIELDS: tuple[str, ...] = (
    "APP_NO",
    "CONS_NO",
    "BUSI_TYPE_CODE",
    "APPLY_CAP",
    "VOLT_CODE",
    "CUST_CLASS_CODE",
    "IMPORTANCE_CODE",
    "ELEC_ADDR",
    "LONGITUDE",
    "LATITUDE",
    "CHANNEL_CODE",
    "HANDLE_TIME",
    "UPDATE_TIME",
    "STATUS_CODE",
    "RETURN_REASON_CODE",
    "ORG_NO",
    "URBAN_RURAL_FLAG",
    "TRADE_CODE",
    "TEMP_END_DATE",
    "LOAD_TYPE",
    "DOCUMENTS",
)
CUSTOMER_FIELDS: tuple[str, ...] = (
    "CONS_ID",
    "CONS_NO",
    "CONS_NAME",
    "ELEC_ADDR",
    "ELEC_TYPE_CODE",
    "TRADE_CODE",
    "VOLT_CODE",
    "CONTRACT_CAP",
    "STATUS_CODE",
    "ORG_NO",
    "URBAN_RURAL_FLAG",
    "TG_ID",
    "LONGITUDE",
    "LATITUDE",
    "CERT_TYPE_CODE",
    "CERT_NO",
    "BANK_NAME",
    "BANK_ACCT",
    "CONTACTS",
)
DOCUMENT_FIELDS: tuple[str, ...] = ("DOC_TYPE_CODE", "DOC_NAME", "RECEIVED_FLAG")
CONTACT_FIELDS: tuple[str, ...] = ("CONTACT_NAME", "MOBILE", "CONTACT_TYPE")
DECIMAL_FIELDS = frozenset({"APPLY_CAP", "LONGITUDE", "LATITUDE", "CONTRACT_CAP"})
# Repeating group -> (item element, item fields).
GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "DOCUMENTS": ("DOCUMENT", DOCUMENT_FIELDS),
    "CONTACTS": ("CONTACT", CONTACT_FIELDS),
}


def record_from_xml(element: etree._Element, fields: tuple[str, ...], namespace: str) -> dict[str, Any]:
    """The plain-dict form of a record element whose children are the fields, in `namespace`.

    Raises MalformedInputError for an element of another namespace, an unknown field or a decimal that
    is not a number (a schema-validated element has none of these).
    """
    record: dict[str, Any] = dict.fromkeys(fields)
    for child in element:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child)
        if name.namespace != namespace or name.localname not in record:
            raise MalformedInputError(f"unexpected element {child.tag} in {etree.QName(element).localname}")
        field = name.localname
        if field in GROUPS:
            item_name, item_fields = GROUPS[field]
            record[field] = [
                record_from_xml(item, item_fields, namespace)
                for item in child
                if isinstance(item.tag, str) and etree.QName(item).localname == item_name
            ]
            continue
        text = child.text or None
        if text is not None and field in DECIMAL_FIELDS:
            try:
                record[field] = float(text)
            except ValueError:
                raise MalformedInputError(f"{field} is not a number: {text!r}") from None
        else:
            record[field] = text
    for group in GROUPS:
        if group in record and record[group] is None:
            record[group] = []
    return record


def zeep_arguments(value: Any) -> Any:
    """Plain request data as zeep takes it: each repeating group's list wrapped in its item element."""
    if isinstance(value, Mapping):
        converted: dict[str, Any] = {}
        for key, item in value.items():
            if item is None:
                continue
            if key in GROUPS and isinstance(item, list):
                converted[key] = {GROUPS[key][0]: [zeep_arguments(entry) for entry in item]}
            else:
                converted[key] = zeep_arguments(item)
        return converted
    if isinstance(value, list):
        return [zeep_arguments(entry) for entry in value]
    return value
