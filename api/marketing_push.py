"""The hub's inbound SOAP endpoint for the marketing system: WSDL at GET /soap/marketing?wsdl, pushes at POST.

The protocol (the WSDL, reading a notification, the answers) is adapters/marketing/push.py. The hub
answers only once the record is stored in the push inbox (store.submissions), in the transaction the
answer reports; the marketing poller stages it from there, deduplicated against what the listing
brought, so push and poll never make a case or a timeline entry twice. A refused notification is a
soap:Client fault and nothing of it was stored; a storage failure is a soap:Server fault ("send it
again"). Parsing runs in a worker thread, so the event loop keeps serving.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from adapters.marketing.push import (
    DEFAULT_DRAIN_BYTES,
    NAMESPACE,
    PushReader,
    accepted,
    read_bounded,
)
from api.context import Context
from ground.errors import MalformedInputError
from ground.soap import SOAP_CONTENT_TYPE, SOAP_ENV_NS, FaultCode, build_fault
from store.database import DatabaseError, Engine
from store.submissions import store_push_once

PUSH_PATH = "/soap/marketing"

log = logging.getLogger(__name__)


def _fault(code: FaultCode, message: str) -> Response:
    # SOAP 1.1 over HTTP answers a fault with status 500.
    return Response(build_fault(code, message), status_code=500, media_type=SOAP_CONTENT_TYPE)


class PushReceiver:
    """Reads pushed notifications, stores them and answers; a body past drain_bytes is not read on.

    on_stored runs after each new notification is stored: the hub wakes the marketing poller with it, so
    the push is taken at once instead of at the next poll.
    """

    def __init__(
        self,
        engine: Engine,
        reader: PushReader,
        on_stored: Callable[[], None] | None = None,
        drain_bytes: int = DEFAULT_DRAIN_BYTES,
    ) -> None:
        self.engine = engine
        self.reader = reader
        self.on_stored = on_stored
        self.drain_bytes = drain_bytes

    def receive(self, body: bytes) -> Response:
        try:
            notification = self.reader.read(body)
        except MalformedInputError as exc:
            log.warning("refused a marketing push: %s", exc)
            return _fault(FaultCode.CLIENT, str(exc))
        application = notification.application
        try:
            receipt = store_push_once(
                self.engine, application, notification.customer, notification_id=notification.notification_id
            )
        except DatabaseError:
            log.exception("could not store a marketing push of %s", application["APP_NO"])
            return _fault(FaultCode.SERVER, "the hub could not store the notification; send it again later")
        if self.on_stored is not None and not receipt.duplicate:
            self.on_stored()
        return Response(accepted(receipt.seq, duplicate=receipt.duplicate), media_type=SOAP_CONTENT_TYPE)


WSDL_EXAMPLE = '<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" name="MarketingPush">...</definitions>'
ACCEPTED_EXAMPLE = (
    f'<soap:Envelope xmlns:soap="{SOAP_ENV_NS}"><soap:Body><push:ApplicationChangedResponse '
    f'xmlns:push="{NAMESPACE}"><push:accepted>true</push:accepted>'
    "<push:duplicate>false</push:duplicate></push:ApplicationChangedResponse></soap:Body></soap:Envelope>"
)


router = APIRouter(tags=["marketing push"])


async def push_receiver(context: Context) -> PushReceiver:
    """The push receiver of the app (a dependency)."""
    if context.marketing_push is None:
        raise LookupError("the API context holds no marketing push receiver")
    return context.marketing_push


Receiver = Annotated[PushReceiver, Depends(push_receiver)]


@router.get(
    PUSH_PATH,
    summary="The WSDL of the marketing push endpoint (GET /soap/marketing?wsdl)",
    response_class=Response,
    responses={200: {"content": {"text/xml": {"example": WSDL_EXAMPLE}}}},
)
async def push_wsdl(request: Request, receiver: Receiver) -> Response:
    if not any(name.lower() == "wsdl" for name in request.query_params):
        return Response("the WSDL is at ?wsdl\n", status_code=404, media_type="text/plain")
    return Response(
        receiver.reader.contract.wsdl(str(request.url.replace(query=""))), media_type=SOAP_CONTENT_TYPE
    )


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
async def push(request: Request, receiver: Receiver) -> Response:
    try:
        body = await read_bounded(
            request.stream(),
            request.headers.get("content-length", ""),
            receiver.reader.max_bytes,
            receiver.drain_bytes,
        )
    except MalformedInputError as exc:
        log.warning("refused a marketing push: %s", exc)
        return _fault(FaultCode.CLIENT, str(exc))
    return await run_in_threadpool(receiver.receive, body)
