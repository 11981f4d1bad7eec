"""The marketing simulator over HTTP: the WSDL at GET /marketing?wsdl, SOAP 1.1 calls at POST /marketing."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response

from simulators.marketing.contract import Contract
from simulators.marketing.service import MarketingService
from simulators.marketing.world import MarketingWorld
from yekuo.errors import MalformedInputError, SourceRejectedError
from yekuo.soap import SOAP_CONTENT_TYPE, FaultCode, build_envelope, build_fault, parse_envelope

ENDPOINT_PATH = "/marketing"
MAX_REQUEST_BYTES = 256 * 1024

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


def create_app(world: MarketingWorld, *, max_request_bytes: int = MAX_REQUEST_BYTES) -> FastAPI:
    """The simulator application serving world."""
    contract = Contract()
    service = MarketingService(world, contract)
    app = FastAPI(title="Marketing system simulator", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.world = world

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
            payload = service.handle(parse_envelope(body, max_bytes=max_request_bytes))
        except (MalformedInputError, SourceRejectedError) as exc:
            return _fault(FaultCode.CLIENT, str(exc))
        except Exception:
            logger.exception("marketing simulator failed on a SOAP call")
            return _fault(FaultCode.SERVER, "internal error in the marketing service")
        return Response(build_envelope(payload), media_type=SOAP_CONTENT_TYPE)

    return app
