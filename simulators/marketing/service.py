"""The marketing service's operations: a validated request element in, a response element out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

from lxml import etree

from simulators.marketing.contract import NAMESPACE, Contract, qname
from simulators.marketing.world import (
    APPLICATION_FIELDS,
    CONTACT_FIELDS,
    CUSTOMER_FIELDS,
    DOCUMENT_FIELDS,
    MarketingWorld,
)
from yekuo.errors import MalformedInputError, SourceRejectedError

# Repeating groups: the wrapper element, the name of each item and the item's fields in schema order.
_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "DOCUMENTS": ("DOCUMENT", DOCUMENT_FIELDS),
    "CONTACTS": ("CONTACT", CONTACT_FIELDS),
}


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # xs:decimal has no exponent form, which repr() would produce for very small or large floats.
        return format(Decimal(repr(value)), "f")
    return str(value)


def _append_record(
    parent: etree._Element, name: str, row: Mapping[str, object], fields: Sequence[str]
) -> None:
    record = etree.SubElement(parent, qname(name))
    for field in fields:
        value = row.get(field)
        if value is None:
            continue
        if field in _GROUPS:
            item_name, item_fields = _GROUPS[field]
            group = etree.SubElement(record, qname(field))
            for item in value if isinstance(value, list) else ():
                _append_record(group, item_name, item, item_fields)
        else:
            etree.SubElement(record, qname(field)).text = _text(value)


def _child_text(request: etree._Element, name: str) -> str | None:
    child = request.find(qname(name))
    return None if child is None else str(child.text or "")


class MarketingService:
    """Dispatches a request element to its operation; business refusals raise SourceRejectedError."""

    def __init__(self, world: MarketingWorld, contract: Contract) -> None:
        self.world = world
        self.contract = contract
        self._operations: dict[str, Callable[[etree._Element], etree._Element]] = {
            qname("ListChangedApplications"): self._list_changed_applications,
            qname("GetCustomer"): self._get_customer,
            qname("GetCustomers"): self._get_customers,
        }

    def handle(self, request: etree._Element) -> etree._Element:
        """Validate the request against the schema and run its operation.

        Raises MalformedInputError for an unknown operation or a schema violation, SourceRejectedError when
        the request is well formed but refused.
        """
        operation = self._operations.get(request.tag)
        if operation is None:
            raise MalformedInputError(f"unknown operation {request.tag}")
        self.contract.validate(request)
        return operation(request)

    def _list_changed_applications(self, request: etree._Element) -> etree._Element:
        since_time = _child_text(request, "sinceTime")
        since_key = _child_text(request, "sinceKey")
        if since_key is not None and since_time is None:
            raise SourceRejectedError("sinceKey given without sinceTime")
        page_size = int(request.findtext(qname("pageSize")))
        rows, has_more = self.world.changed_applications(since_time, since_key, page_size)
        response = etree.Element(qname("ListChangedApplicationsResponse"), nsmap={"mkt": NAMESPACE})
        for row in rows:
            _append_record(response, "application", row, APPLICATION_FIELDS)
        etree.SubElement(response, qname("hasMore")).text = _text(has_more)
        return response

    def _get_customer(self, request: etree._Element) -> etree._Element:
        cons_no = _child_text(request, "consNo") or ""
        row = self.world.customer(cons_no)
        if row is None:
            raise SourceRejectedError(f"customer not found: {cons_no}")
        response = etree.Element(qname("GetCustomerResponse"), nsmap={"mkt": NAMESPACE})
        _append_record(response, "customer", row, CUSTOMER_FIELDS)
        return response

    def _get_customers(self, request: etree._Element) -> etree._Element:
        cons_nos = [str(child.text or "") for child in request.iterfind(qname("consNo"))]
        response = etree.Element(qname("GetCustomersResponse"), nsmap={"mkt": NAMESPACE})
        for row in self.world.customers(cons_nos):
            _append_record(response, "customer", row, CUSTOMER_FIELDS)
        return response
