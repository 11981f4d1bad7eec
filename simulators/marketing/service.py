"""The marketing service's operations: a validated request element in, a response element out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

from lxml import etree

from ground.errors import MalformedInputError, SourceRejectedError
from simulators.marketing.contract import NAMESPACE, Contract, qname
from simulators.marketing.world import (
    APPLICATION_FIELDS,
    CONTACT_FIELDS,
    CUSTOMER_FIELDS,
    DOCUMENT_FIELDS,
    MarketingWorld,
)

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


def append_record(
    parent: etree._Element,
    name: str,
    row: Mapping[str, object],
    fields: Sequence[str],
    namespace: str = NAMESPACE,
) -> None:
    """Add a legacy row as element `name` with one child per present field, in the given field order."""
    record = etree.SubElement(parent, f"{{{namespace}}}{name}")
    for field in fields:
        value = row.get(field)
        if value is None:
            continue
        if field in _GROUPS:
            item_name, item_fields = _GROUPS[field]
            group = etree.SubElement(record, f"{{{namespace}}}{field}")
            for item in value if isinstance(value, list) else ():
                append_record(group, item_name, item, item_fields, namespace)
        else:
            etree.SubElement(record, f"{{{namespace}}}{field}").text = _text(value)


def _child_text(request: etree._Element, name: str) -> str | None:
    child = request.find(qname(name))
    return None if child is None else str(child.text or "")


def _fields(element: etree._Element | None) -> dict[str, object] | None:
    """A request record as legacy field name -> text, each repeating group as a list of such dicts."""
    if element is None:
        return None
    fields: dict[str, object] = {}
    for child in element:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        if name in _GROUPS:
            fields[name] = [_fields(item) for item in child if isinstance(item.tag, str)]
        else:
            fields[name] = child.text or ""
    return fields


def _respond(name: str, values: Sequence[tuple[str, object]]) -> etree._Element:
    response = etree.Element(qname(name), nsmap={"mkt": NAMESPACE})
    for field, value in values:
        etree.SubElement(response, qname(field)).text = _text(value)
    return response


def request_app_no(request: etree._Element) -> str | None:
    """The application a request is about (its appNo), if it names one."""
    return _child_text(request, "appNo")


class MarketingService:
    """Dispatches a request element to its operation; business refusals raise SourceRejectedError."""

    def __init__(self, world: MarketingWorld, contract: Contract) -> None:
        self.world = world
        self.contract = contract
        self._operations: dict[str, Callable[[etree._Element], etree._Element]] = {
            qname("ListChangedApplications"): self._list_changed_applications,
            qname("GetCustomer"): self._get_customer,
            qname("GetCustomers"): self._get_customers,
            qname("GetApplication"): self._get_application,
            qname("CreateApplication"): self._create_application,
            qname("UpdateApplicationStage"): self._update_application_stage,
            qname("RecordFeasibilityResult"): self._record_feasibility_result,
        }

    def validate(self, request: etree._Element) -> str:
        """Check the request against the schema; return its operation name.

        Raises MalformedInputError for an unknown operation or a schema violation.
        """
        if request.tag not in self._operations:
            raise MalformedInputError(f"unknown operation {request.tag}")
        self.contract.validate(request)
        return str(etree.QName(request).localname)

    def run(self, request: etree._Element) -> etree._Element:
        """Run a validated request; SourceRejectedError when it is well formed but refused."""
        return self._operations[request.tag](request)

    def handle(self, request: etree._Element) -> etree._Element:
        """Validate the request against the schema and run its operation.

        Raises MalformedInputError for an unknown operation or a schema violation, SourceRejectedError when
        the request is well formed but refused.
        """
        self.validate(request)
        return self.run(request)

    def _list_changed_applications(self, request: etree._Element) -> etree._Element:
        since_time = _child_text(request, "sinceTime")
        since_key = _child_text(request, "sinceKey")
        if since_key is not None and since_time is None:
            raise SourceRejectedError("sinceKey given without sinceTime")
        page_size = int(request.findtext(qname("pageSize")))
        rows, has_more = self.world.changed_applications(since_time, since_key, page_size)
        response = etree.Element(qname("ListChangedApplicationsResponse"), nsmap={"mkt": NAMESPACE})
        for row in rows:
            append_record(response, "application", row, APPLICATION_FIELDS)
        etree.SubElement(response, qname("hasMore")).text = _text(has_more)
        return response

    def _get_customer(self, request: etree._Element) -> etree._Element:
        cons_no = _child_text(request, "consNo") or ""
        row = self.world.customer(cons_no)
        if row is None:
            raise SourceRejectedError(f"customer not found: {cons_no}")
        response = etree.Element(qname("GetCustomerResponse"), nsmap={"mkt": NAMESPACE})
        append_record(response, "customer", row, CUSTOMER_FIELDS)
        return response

    def _get_customers(self, request: etree._Element) -> etree._Element:
        cons_nos = [str(child.text or "") for child in request.iterfind(qname("consNo"))]
        response = etree.Element(qname("GetCustomersResponse"), nsmap={"mkt": NAMESPACE})
        for row in self.world.customers(cons_nos):
            append_record(response, "customer", row, CUSTOMER_FIELDS)
        return response

    def _get_application(self, request: etree._Element) -> etree._Element:
        app_no = _child_text(request, "appNo") or ""
        row = self.world.application(app_no)
        if row is None:
            raise SourceRejectedError(f"application not found: {app_no}")
        response = etree.Element(qname("GetApplicationResponse"), nsmap={"mkt": NAMESPACE})
        append_record(response, "application", row, APPLICATION_FIELDS)
        return response

    def _create_application(self, request: etree._Element) -> etree._Element:
        application = _fields(request.find(qname("application"))) or {}
        customer = _fields(request.find(qname("customer")))
        row, created = self.world.create_application(
            _child_text(request, "requestId") or "", application, customer
        )
        return _respond(
            "CreateApplicationResponse",
            [("appNo", row["APP_NO"]), ("consNo", row["CONS_NO"]), ("created", created)],
        )

    def _update_application_stage(self, request: etree._Element) -> etree._Element:
        row, applied = self.world.update_stage(
            _child_text(request, "requestId") or "",
            _child_text(request, "appNo") or "",
            _child_text(request, "statusCode") or "",
            _child_text(request, "changedAt") or "",
            remark=_child_text(request, "remark"),
            operator=_child_text(request, "operator"),
        )
        return _respond(
            "UpdateApplicationStageResponse",
            [
                ("appNo", row["APP_NO"]),
                ("statusCode", row["STATUS_CODE"]),
                ("updateTime", row["UPDATE_TIME"]),
                ("applied", applied),
            ],
        )

    def _record_feasibility_result(self, request: etree._Element) -> etree._Element:
        app_no = _child_text(request, "appNo") or ""
        applied = self.world.record_feasibility(
            _child_text(request, "requestId") or "",
            app_no,
            _child_text(request, "verdict") or "",
            _child_text(request, "assessedAt") or "",
            supply_volt_code=_child_text(request, "supplyVoltCode"),
            remark=_child_text(request, "remark"),
        )
        return _respond("RecordFeasibilityResultResponse", [("appNo", app_no), ("applied", applied)])
