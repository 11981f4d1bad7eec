"""Tests of the bounded zeep transport: answer size and time limits, and the WSDL cache."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from adapters.marketing.transport import BoundedTransport, MemoryCache, wsdl_cache
from ground.errors import MalformedInputError, SourceUnavailableError
from simulators.marketing.contract import WSDL_PATH

WSDL = WSDL_PATH.read_bytes()


def test_an_answer_within_the_limits_is_read_whole(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/s").respond_with_data(b"<ok/>", status=200, content_type="text/xml")
    response = BoundedTransport(max_response_bytes=10).post(httpserver.url_for("/s"), b"<q/>", {})
    assert (response.status_code, response.content, response.text) == (200, b"<ok/>", "<ok/>")
    assert response.headers["content-type"] == "text/xml"


def test_a_declared_oversized_answer_is_refused_unread(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/s").respond_with_data(b"x" * 5000, content_type="text/xml")
    with pytest.raises(MalformedInputError, match="is 5000 bytes, over 4096"):
        BoundedTransport(max_response_bytes=4096).post(httpserver.url_for("/s"), b"<q/>", {})


def test_an_endless_streamed_answer_is_cut_at_the_limit(httpserver: HTTPServer) -> None:
    def endless(_: Request) -> Response:
        return Response((b"x" * 1024 for _ in range(100_000)), content_type="text/xml")

    httpserver.expect_request("/s").respond_with_handler(endless)
    with pytest.raises(MalformedInputError, match="exceeds 65536 bytes"):
        BoundedTransport(max_response_bytes=65536).post(httpserver.url_for("/s"), b"<q/>", {})


def test_an_answer_dripping_past_its_deadline_is_unavailable(httpserver: HTTPServer) -> None:
    def drip(_: Request) -> Response:
        def body() -> Iterator[bytes]:
            for _ in range(50):
                time.sleep(0.05)
                yield b" "

        return Response(body(), content_type="text/xml")

    httpserver.expect_request("/s").respond_with_handler(drip)
    transport = BoundedTransport(timeout_s=1, answer_deadline_s=0.3)
    with pytest.raises(SourceUnavailableError, match=r"took longer than 0\.3 s"):
        transport.post(httpserver.url_for("/s"), b"<q/>", {})


def test_the_wsdl_is_loaded_once_and_then_served_from_the_cache(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/marketing").respond_with_data(WSDL, content_type="text/xml")
    httpserver.expect_request("/marketing").respond_with_data("down", status=503)
    transport = BoundedTransport(cache=MemoryCache())
    url = httpserver.url_for("/marketing") + "?wsdl"
    assert transport.load(url) == WSDL
    assert transport.load(url) == WSDL
    assert len(httpserver.log) == 1


def test_a_page_that_is_no_wsdl_is_not_kept(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/marketing").respond_with_data("<html>maintenance</html>")
    httpserver.expect_request("/marketing").respond_with_data(WSDL, content_type="text/xml")
    transport = BoundedTransport(cache=MemoryCache())
    url = httpserver.url_for("/marketing") + "?wsdl"
    assert transport.load(url) == b"<html>maintenance</html>"
    assert transport.load(url) == WSDL


def test_an_http_error_while_loading_carries_its_status(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/marketing").respond_with_data("busy", status=503)
    with pytest.raises(requests.HTTPError) as raised:
        BoundedTransport().load(httpserver.url_for("/marketing"))
    assert raised.value.response is not None and raised.value.response.status_code == 503


def test_memory_caches_belong_to_one_client() -> None:
    first, second = MemoryCache(), MemoryCache()
    first.add("http://sim/marketing?wsdl", b"<a/>")
    assert first.get("http://sim/marketing?wsdl") == b"<a/>"
    assert second.get("http://sim/marketing?wsdl") is None
    assert MemoryCache(timeout_s=0).get("http://sim/marketing?wsdl") is None


def test_the_sqlite_cache_outlives_the_process_that_filled_it(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_oneshot_request("/marketing").respond_with_data(WSDL, content_type="text/xml")
    httpserver.expect_request("/marketing").respond_with_data("down", status=503)
    url = httpserver.url_for("/marketing") + "?wsdl"
    path = tmp_path / "cache" / "wsdl.db"
    assert BoundedTransport(cache=wsdl_cache(path)).load(url) == WSDL
    assert path.exists()
    assert BoundedTransport(cache=wsdl_cache(path)).load(url) == WSDL
    assert isinstance(wsdl_cache(None), MemoryCache)


def test_files_are_read_directly() -> None:
    assert BoundedTransport().load(str(WSDL_PATH)) == WSDL
