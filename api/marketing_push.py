"""The hub's inbound SOAP endpoint for the marketing system: WSDL at GET /soap/marketing?wsdl, pushes at POST.

The marketing system pushes ApplicationChanged notifications carrying the whole application record (and
its customer). The hub answers only once the record is stored in the push inbox (store.submissions), in
the transaction the answer reports; the marketing poller stages it from there, deduplicated against what
the listing brought, so push and poll never make a case or a timeline entry twice.

Hostile input costs bounded time and memory: the body is read in chunks and at most max_bytes are kept
(a bigger body is read on to drain_bytes and thrown away, so the sender still gets its fault, or the
connection is closed); the XML parser loads no DTD, expands no entity, opens no network or file and
refuses deep nesting; parsing runs in a worker thread, so the event loop keeps serving. Every refusal is
a soap:Client fault; a storage failure is a soap:Server fault ("send it again").

A notification is taken whole or refused whole: it carries one version of one application (and its
customer), and a soap:Client fault means nothing of it was stored, so the sender keeps it, fixes it and
sends it again. The fields the hub's mappings require (mappings/marketing/application.yaml and
customer.yaml) are required by the served WSDL too (api/push_requirements.py), and each record is run
through its mapping before it is stored: a record the mapping would park (a missing field, an unknown
code) is refused at once, with the fields named in the faultstring.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from lxml import etree
from starlette.concurrency import run_in_threadpool

from adapters.marketing.legacy import APPLICATION_FIELDS, CUSTOMER_FIELDS, record_from_xml
from api.push_requirements import missing_fields, require_in_schema, requirement_of
from ground.errors import InvalidRecordError, MalformedInputError
from ground.settings import PROJECT_ROOT
from ground.soap import (
    SOAP_CONTENT_TYPE,
    SOAP_ENV_NS,
    FaultCode,
    WsdlContract,
    build_envelope,
    build_fault,
    parse_envelope,
)
from mappings.codes import load_code_tables
from mappings.engine import Mapping
from mappings.loader import CODES_FOLDER, load_mapping
from store.database import DatabaseError, Engine
from store.submissions import store_push_once

PUSH_PATH = "/soap/marketing"
NAMESPACE = "urn:yekuo:hub:marketing-push:v1"
WSDL_PATH = Path(__file__).with_name("marketing_push.wsdl")
DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_DRAIN_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 16

_WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
_WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
_XSD_NS = "http://www.w3.org/2001/XMLSchema"

log = logging.getLogger(__name__)


def _q(local: str) -> str:
    return f"{{{NAMESPACE}}}{local}"


APPLICATION_MAPPING = "marketing/application"
CUSTOMER_MAPPING = "marketing/customer"


@dataclass(frozen=True)
class PushMappings:
    """The mappings a pushed application and customer go through on their way to canonical records."""

    application: Mapping
    customer: Mapping

    @classmethod
    def of(cls, mappings: AbcMapping[str, Mapping]) -> PushMappings:
        """The two out of the hub's loaded mappings (by name)."""
        return cls(mappings[APPLICATION_MAPPING], mappings[CUSTOMER_MAPPING])

    @classmethod
    def load(cls, config_dir: Path = PROJECT_ROOT) -> PushMappings:
        """Load the two from config_dir/mappings; raises ConfigError (file:line) if either is wrong."""
        mappings_dir = config_dir / "mappings"
        codes = load_code_tables(mappings_dir / CODES_FOLDER, root=config_dir)
        return cls(
            *(
                load_mapping(mappings_dir / f"{name}.yaml", codes, mappings_dir, root=config_dir)
                for name in (APPLICATION_MAPPING, CUSTOMER_MAPPING)
            )
        )


class PushContract(WsdlContract):
    """The push WSDL, its required elements taken from the mappings; validates pushed notifications."""

    def __init__(self, mappings: PushMappings, wsdl_path: Path = WSDL_PATH) -> None:
        self.application = requirement_of(mappings.application)
        self.customer = requirement_of(mappings.customer)
        super().__init__(wsdl_path, prepare=self._require)

    def _require(self, schema: etree._Element) -> None:
        require_in_schema(schema, "Application", self.application)
        require_in_schema(schema, "Customer", self.customer)

    def missing(self, request: etree._Element) -> list[str]:
        """The required fields an ApplicationChanged lacks, as application/... and customer/... paths."""
        found: list[str] = []
        for part, requirement in (("application", self.application), ("customer", self.customer)):
            record = request.find(_q(part))
            if record is not None:
                found.extend(f"{part}/{path}" for path in missing_fields(record, requirement, NAMESPACE))
        return found


def _lacking(request: etree._Element, missing: list[str]) -> str:
    app_no = (request.findtext(f"{_q('application')}/{_q('APP_NO')}") or "").strip() or "without APP_NO"
    return (
        f"application {app_no} lacks fields the hub requires: {', '.join(missing)}; "
        "nothing was stored, send it again complete"
    )


def _mapped(mapping: Mapping, record: dict[str, Any], what: str) -> None:
    """Run a record through its mapping as the pipeline will; a record it would park is refused now."""
    try:
        mapping.apply(record)
    except InvalidRecordError as exc:
        raise MalformedInputError(f"{what} would not map, nothing was stored: {exc}") from exc


def _fault(code: FaultCode, message: str) -> Response:
    # SOAP 1.1 over HTTP answers a fault with status 500.
    return Response(build_fault(code, message), status_code=500, media_type=SOAP_CONTENT_TYPE)


async def _read_bounded(request: Request, max_bytes: int, drain_bytes: int) -> bytes:
    """The body, or MalformedInputError once it passes max_bytes (after draining up to drain_bytes)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > drain_bytes:
        raise MalformedInputError(f"XML body exceeds {max_bytes} bytes ({declared} bytes)")
    body = bytearray()
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > drain_bytes:
            break
        if seen <= max_bytes:
            body += chunk
    if seen > max_bytes:
        raise MalformedInputError(f"XML body exceeds {max_bytes} bytes")
    return bytes(body)


class PushReceiver:
    """Parses, validates and stores one pushed notification."""

    def __init__(
        self,
        engine: Engine,
        contract: PushContract,
        mappings: PushMappings,
        max_bytes: int,
        on_stored: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.contract = contract
        self.mappings = mappings
        self.max_bytes = max_bytes
        self.on_stored = on_stored

    def receive(self, body: bytes) -> Response:
        try:
            request = parse_envelope(body, max_bytes=self.max_bytes, max_depth=MAX_DEPTH)
            if request.tag != _q("ApplicationChanged"):
                raise MalformedInputError(f"unknown operation {request.tag}")
            # Named before the schema check, whose message would name only the first gap in a sequence.
            missing = self.contract.missing(request)
            if missing:
                raise MalformedInputError(_lacking(request, missing))
            self.contract.validate(request)
            application = record_from_xml(request.find(_q("application")), APPLICATION_FIELDS, NAMESPACE)
            customer_element = request.find(_q("customer"))
            customer = (
                record_from_xml(customer_element, CUSTOMER_FIELDS, NAMESPACE)
                if customer_element is not None
                else None
            )
            if customer is not None and customer["CONS_NO"] != application["CONS_NO"]:
                raise MalformedInputError(
                    f"customer {customer['CONS_NO']} is not the customer {application['CONS_NO']} of "
                    f"application {application['APP_NO']}"
                )
            _mapped(self.mappings.application, application, f"application {application['APP_NO']}")
            if customer is not None:
                _mapped(self.mappings.customer, customer, f"customer {customer['CONS_NO']}")
        except MalformedInputError as exc:
            log.warning("refused a marketing push: %s", exc)
            return _fault(FaultCode.CLIENT, str(exc))
        notification_id = request.findtext(_q("notificationId"))
        try:
            receipt = store_push_once(self.engine, application, customer, notification_id=notification_id)
        except DatabaseError:
            log.exception("could not store a marketing push of %s", application["APP_NO"])
            return _fault(FaultCode.SERVER, "the hub could not store the notification; send it again later")
        if self.on_stored is not None and not receipt.duplicate:
            self.on_stored()
        answer = etree.Element(_q("ApplicationChangedResponse"), nsmap={"push": NAMESPACE})
        etree.SubElement(answer, _q("accepted")).text = "true"
        etree.SubElement(answer, _q("duplicate")).text = "true" if receipt.duplicate else "false"
        etree.SubElement(answer, _q("sequence")).text = str(receipt.seq)
        return Response(build_envelope(answer), media_type=SOAP_CONTENT_TYPE)


WSDL_EXAMPLE = '<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" name="MarketingPush">...</definitions>'
ACCEPTED_EXAMPLE = (
    f'<soap:Envelope xmlns:soap="{SOAP_ENV_NS}"><soap:Body><push:ApplicationChangedResponse '
    f'xmlns:push="{NAMESPACE}"><push:accepted>true</push:accepted>'
    "<push:duplicate>false</push:duplicate></push:ApplicationChangedResponse></soap:Body></soap:Envelope>"
)


def marketing_push_router(
    engine: Engine,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    drain_bytes: int = DEFAULT_DRAIN_BYTES,
    on_stored: Callable[[], None] | None = None,
    mappings: PushMappings | None = None,
) -> APIRouter:
    """The push endpoint and its WSDL over the hub database.

    mappings are the ones the hub maps pushed records with (default: loaded from the project's folder);
    the WSDL requires what they require, and a record they would refuse is refused at once.

    on_stored runs after each new notification is stored: the hub wakes the marketing poller with it, so
    the push is taken at once instead of at the next poll.
    """
    push_mappings = mappings or PushMappings.load()
    contract = PushContract(push_mappings)
    receiver = PushReceiver(engine, contract, push_mappings, max_bytes, on_stored)
    router = APIRouter(tags=["marketing push"])

    @router.get(
        PUSH_PATH,
        summary="The WSDL of the marketing push endpoint (GET /soap/marketing?wsdl)",
        response_class=Response,
        responses={200: {"content": {"text/xml": {"example": WSDL_EXAMPLE}}}},
    )
    async def push_wsdl(request: Request) -> Response:
        if not any(name.lower() == "wsdl" for name in request.query_params):
            return Response("the WSDL is at ?wsdl\n", status_code=404, media_type="text/plain")
        return Response(contract.wsdl(str(request.url.replace(query=""))), media_type=SOAP_CONTENT_TYPE)

    @router.post(
        PUSH_PATH,
        summary="SOAP 1.1: the marketing system pushes ApplicationChanged here",
        response_class=Response,
        responses={
            200: {"content": {"text/xml": {"example": ACCEPTED_EXAMPLE}}},
            500: {
                "description": (
                    "a SOAP fault: soap:Client (refused, do not resend as is: a missing or refused "
                    "credential, a record lacking a field the hub's mapping requires, an unknown code) "
                    "or soap:Server (resend)"
                )
            },
        },
        openapi_extra={
            "requestBody": {"required": True, "content": {"text/xml": {"schema": {"type": "string"}}}}
        },
    )
    async def push(request: Request) -> Response:
        try:
            body = await _read_bounded(request, max_bytes, drain_bytes)
        except MalformedInputError as exc:
            log.warning("refused a marketing push: %s", exc)
            return _fault(FaultCode.CLIENT, str(exc))
        return await run_in_threadpool(receiver.receive, body)

    return router
