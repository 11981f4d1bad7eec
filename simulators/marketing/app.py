"""The marketing simulator over HTTP: the WSDL at GET /marketing?wsdl, SOAP 1.1 calls at POST /marketing.

Each call runs through the fault plan (simulators/marketing/faults.py): a refusing fault answers instead of
the operation; the other call faults run the operation and then spoil, delay or cut off the answer; record
faults change application records inside the answer.
"""

from __future__ import annotations

import asyncio
import copy
import logging

from fastapi import FastAPI, Request, Response
from lxml import etree
from starlette.types import Receive, Scope, Send

from ground.errors import MalformedInputError, SourceRejectedError
from ground.soap import SOAP_CONTENT_TYPE, SOAP_ENV_NS, FaultCode, build_envelope, build_fault, parse_envelope
from simulators.marketing.contract import NAMESPACE, Contract, qname
from simulators.marketing.faults import (
    MISSING_FIELD_NAMES,
    REFUSING_FAULTS,
    UNKNOWN_VOLT_CODE,
    CallFaults,
    Fault,
    FaultPlan,
    FaultRule,
)
from simulators.marketing.service import MarketingService, request_app_no
from simulators.marketing.world import MarketingWorld

ENDPOINT_PATH = "/marketing"
MAX_REQUEST_BYTES = 256 * 1024
WRONG_NAMESPACE = "urn:yekuo:sim:marketing:v0"

logger = logging.getLogger(__name__)


async def _read_body(request: Request, limit: int) -> bytes:
    # Stop reading as soon as the limit is passed instead of buffering whatever a peer sends.
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise MalformedInputError(f"XML body exceeds {limit} bytes ({declared} bytes)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise MalformedInputError(f"XML body exceeds {limit} bytes")
    return bytes(body)


def _fault(code: FaultCode, message: str) -> Response:
    # SOAP 1.1 over HTTP answers every fault with status 500.
    return Response(build_fault(code, message), status_code=500, media_type=SOAP_CONTENT_TYPE)


def _soap(content: bytes) -> Response:
    return Response(content, media_type=SOAP_CONTENT_TYPE)


class _CutOffAnswer(Response):
    """Announces the whole answer, sends half of it and ends the exchange: the connection is dropped."""

    def __init__(self, content: bytes) -> None:
        super().__init__(content, media_type=SOAP_CONTENT_TYPE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        half = bytes(self.body[: len(self.body) // 2])
        await send({"type": "http.response.body", "body": half, "more_body": True})
        # Returning without the rest makes the server close the connection mid-answer.


def _refusal(rule: FaultRule, operation: str) -> Response:
    if rule.fault is Fault.BUSINESS_FAULT:
        return _fault(FaultCode.CLIENT, f"{operation}: 业务校验不通过 (business rule refused the request)")
    if rule.fault is Fault.SERVER_FAULT:
        return _fault(FaultCode.SERVER, "ORA-12541: TNS:no listener")
    page = "<html><head><title>500 Internal Server Error</title></head><body>Weblogic: 500</body></html>"
    return Response(page, status_code=500, media_type="text/html")


def _xml_bomb(operation: str) -> bytes:
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">' for level in range(1, 10)
    ]
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE soap:Envelope [\n{chr(10).join(levels)}\n]>\n'
        f'<soap:Envelope xmlns:soap="{SOAP_ENV_NS}"><soap:Body>'
        f'<mkt:{operation}Response xmlns:mkt="{NAMESPACE}">&lol9;</mkt:{operation}Response>'
        "</soap:Body></soap:Envelope>"
    ).encode()


def _external_entity(operation: str) -> bytes:
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE soap:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        f'<soap:Envelope xmlns:soap="{SOAP_ENV_NS}"><soap:Body>'
        f'<mkt:{operation}Response xmlns:mkt="{NAMESPACE}">&xxe;</mkt:{operation}Response>'
        "</soap:Body></soap:Envelope>"
    ).encode()


def _spoil_records(payload: etree._Element, faults: CallFaults) -> None:
    """Apply record faults to the application records of an answer."""
    for record in list(payload.iterfind(qname("application"))):
        carried = faults.record_faults(str(record.findtext(qname("APP_NO"))))
        if Fault.MISSING_FIELDS in carried:
            for name in MISSING_FIELD_NAMES:
                for child in record.findall(qname(name)):
                    record.remove(child)
        if Fault.UNKNOWN_CODE in carried:
            volt = record.find(qname("VOLT_CODE"))
            if volt is not None:
                volt.text = UNKNOWN_VOLT_CODE
        if Fault.DUPLICATE in carried:
            record.addnext(copy.deepcopy(record))


async def _spoiled_answer(rule: FaultRule, operation: str, envelope: bytes) -> Response:
    fault = rule.fault
    if fault in (Fault.LATENCY, Fault.TIMEOUT):
        await asyncio.sleep(rule.delay)
        return _soap(envelope)
    if fault is Fault.CONNECTION_RESET:
        return _CutOffAnswer(envelope)
    if fault is Fault.MALFORMED_XML:
        return _soap(envelope[: len(envelope) * 2 // 3])
    if fault is Fault.XML_BOMB:
        return _soap(_xml_bomb(operation))
    if fault is Fault.EXTERNAL_ENTITY:
        return _soap(_external_entity(operation))
    # Fault.WRONG_NAMESPACE: the same answer, every element of the service moved to another namespace.
    return _soap(envelope.replace(NAMESPACE.encode(), WRONG_NAMESPACE.encode()))


def create_app(
    world: MarketingWorld, *, max_request_bytes: int = MAX_REQUEST_BYTES, faults: FaultPlan | None = None
) -> FastAPI:
    """The simulator application serving world, misbehaving as the fault plan says (default: never)."""
    contract = Contract()
    service = MarketingService(world, contract)
    plan = faults if faults is not None else FaultPlan()
    app = FastAPI(title="Marketing system simulator", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.world = world
    app.state.faults = plan

    @app.get(ENDPOINT_PATH)
    async def wsdl(request: Request) -> Response:
        if not any(name.lower() == "wsdl" for name in request.query_params):
            return Response("the WSDL is at ?wsdl\n", status_code=404, media_type="text/plain")
        location = str(request.url.replace(query=""))
        return Response(contract.wsdl(location), media_type=SOAP_CONTENT_TYPE)

    @app.post(ENDPOINT_PATH)
    async def call(request: Request) -> Response:
        try:
            body = await _read_body(request, max_request_bytes)
            element = parse_envelope(body, max_bytes=max_request_bytes)
            operation = service.validate(element)
        except MalformedInputError as exc:
            return _fault(FaultCode.CLIENT, str(exc))
        chosen = plan.begin_call(operation, request_app_no(element))
        rule = chosen.call
        if rule is not None and rule.fault in REFUSING_FAULTS:
            return _refusal(rule, operation)
        try:
            payload = service.run(element)
        except SourceRejectedError as exc:
            return _fault(FaultCode.CLIENT, str(exc))
        except Exception:
            logger.exception("marketing simulator failed on a SOAP call")
            return _fault(FaultCode.SERVER, "internal error in the marketing service")
        _spoil_records(payload, chosen)
        envelope = build_envelope(payload)
        if rule is None:
            return _soap(envelope)
        return await _spoiled_answer(rule, operation, envelope)

    return app
