"""Tests of the marketing system's push side: notifications in the hub's contract, sent in order, retried."""

from __future__ import annotations

from datetime import datetime

import httpx2
import pytest
from lxml import etree
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from adapters.marketing.push import PushContract, PushMappings
from ground.errors import SourceRejectedError, SourceUnavailableError
from ground.soap import FaultCode, build_envelope, build_fault, parse_envelope
from simulators.marketing.push import PUSH_NAMESPACE, Pusher, notification, send
from simulators.marketing.seed import generate_world
from simulators.marketing.world import MarketingWorld

START = datetime(2026, 11, 2, 8, 30)
NS = {"push": PUSH_NAMESPACE}


@pytest.fixture
def world() -> MarketingWorld:
    return generate_world(seed=41, customers=10, applications=15, start=START)


def _ack(duplicate: bool = False) -> bytes:
    answer = etree.Element(f"{{{PUSH_NAMESPACE}}}ApplicationChangedResponse", nsmap={"push": PUSH_NAMESPACE})
    for name, value in (
        ("accepted", "true"),
        ("duplicate", "true" if duplicate else "false"),
        ("sequence", "1"),
    ):
        etree.SubElement(answer, f"{{{PUSH_NAMESPACE}}}{name}").text = value
    return build_envelope(answer)


def test_every_notification_satisfies_the_hubs_push_contract(world: MarketingWorld) -> None:
    contract = PushContract(PushMappings.load())
    for row in world.all_applications():
        request = parse_envelope(notification(row, world, "n-1"))
        assert contract.missing(request) == []
        contract.validate(request)
        assert request.findtext("push:application/push:APP_NO", namespaces=NS) == row["APP_NO"]
        assert request.findtext("push:customer/push:CONS_NO", namespaces=NS) == row["CONS_NO"]


def test_send_reads_the_acknowledgement(httpserver: HTTPServer, world: MarketingWorld) -> None:
    httpserver.expect_oneshot_request("/soap/marketing", method="POST").respond_with_data(
        _ack(), content_type="text/xml"
    )
    httpserver.expect_oneshot_request("/soap/marketing", method="POST").respond_with_data(
        _ack(duplicate=True), content_type="text/xml"
    )
    row = world.all_applications()[0]
    with httpx2.Client() as client:
        assert send(client, httpserver.url_for("/soap/marketing"), notification(row, world)) is False
        assert send(client, httpserver.url_for("/soap/marketing"), notification(row, world)) is True
    [(request, _), *_] = httpserver.log
    assert request.headers["SOAPAction"] == f'"{PUSH_NAMESPACE}#ApplicationChanged"'


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            build_fault(FaultCode.CLIENT, "ApplicationChanged does not satisfy the schema"),
            500,
            SourceRejectedError,
        ),
        (build_fault(FaultCode.SERVER, "could not store"), 500, SourceUnavailableError),
        (b"<html>bad gateway</html", 502, SourceUnavailableError),
    ],
)
def test_send_tells_refusals_from_failures(
    httpserver: HTTPServer, world: MarketingWorld, body: bytes, status: int, error: type[Exception]
) -> None:
    httpserver.expect_request("/soap/marketing").respond_with_data(
        body, status=status, content_type="text/xml"
    )
    with httpx2.Client() as client, pytest.raises(error):
        send(client, httpserver.url_for("/soap/marketing"), notification(world.all_applications()[0], world))


def test_send_to_nobody_is_unavailable(world: MarketingWorld) -> None:
    with httpx2.Client() as client, pytest.raises(SourceUnavailableError, match="ConnectError"):
        send(client, "http://127.0.0.1:9/soap/marketing", notification(world.all_applications()[0], world))


def test_pusher_sends_every_change_in_order_and_retries_until_taken(
    httpserver: HTTPServer, world: MarketingWorld
) -> None:
    refusals = {"left": 2}
    received: list[str] = []

    def handler(request: Request) -> Response:
        if refusals["left"]:
            refusals["left"] -= 1
            return Response(build_fault(FaultCode.SERVER, "busy"), status=500, content_type="text/xml")
        app_no = parse_envelope(request.get_data()).findtext("push:application/push:APP_NO", namespaces=NS)
        received.append(str(app_no))
        return Response(_ack(), content_type="text/xml")

    httpserver.expect_request("/soap/marketing").respond_with_handler(handler)
    numbers = [row["APP_NO"] for row in world.all_applications()[:4]]
    with Pusher(httpserver.url_for("/soap/marketing"), world, max_backoff_s=0.05) as pusher:
        for number in numbers:
            world.advance(number)
        pusher.drain()
    assert received == numbers
    assert (pusher.sent, pusher.failed) == (4, 0)


def test_pusher_gives_a_refused_notification_up_and_goes_on(
    httpserver: HTTPServer, world: MarketingWorld
) -> None:
    httpserver.expect_oneshot_request("/soap/marketing").respond_with_data(
        build_fault(FaultCode.CLIENT, "wrong"), status=500, content_type="text/xml"
    )
    httpserver.expect_request("/soap/marketing").respond_with_data(_ack(), content_type="text/xml")
    rows = world.all_applications()
    with Pusher(httpserver.url_for("/soap/marketing"), world) as pusher:
        world.advance(rows[0]["APP_NO"])
        world.advance(rows[1]["APP_NO"])
        pusher.drain()
    assert (pusher.sent, pusher.failed) == (1, 1)
