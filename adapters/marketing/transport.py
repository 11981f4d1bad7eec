"""The zeep transport the marketing client uses: bounded answers, explicit timeouts, a cached WSDL.

zeep reads an answer whole into memory and its timeouts bound each socket read, not the answer. This
transport streams the answer and stops at max_response_bytes, and gives up when the whole answer takes
longer than answer_deadline_s, so a peer that sends without end or drips one byte at a time cannot hold a
poller. The WSDL and its schemas are cached: in memory per client by default, in zeep's SqliteCache when
given a path, so a hub restarted while the marketing system's WSDL URL is down starts from the cached copy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
import zeep
import zeep.cache
from lxml import etree
from requests.structures import CaseInsensitiveDict

from ground.errors import MalformedInputError, SourceUnavailableError
from ground.soap import parse_xml

DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024
# A WSDL and its schemas change when the marketing system is upgraded: a day in the cache is plenty.
WSDL_CACHE_TIMEOUT_S = 24 * 3600
_WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
_XSD_NS = "http://www.w3.org/2001/XMLSchema"


@dataclass(frozen=True)
class BoundedResponse:
    """The parts of an HTTP answer zeep reads, held in memory once they were read within the limits."""

    status_code: int
    headers: CaseInsensitiveDict[str]
    content: bytes
    encoding: str | None

    @property
    def text(self) -> str:
        """The body as text, for error messages."""
        return self.content.decode(self.encoding or "utf-8", errors="replace")


class MemoryCache(zeep.cache.Base):
    """WSDL and XSD documents kept in memory for one client.

    zeep's InMemoryCache keeps its documents in a class attribute, shared by every client of the process,
    so two services at one URL (a restarted simulator, a test server) would see each other's documents.
    """

    def __init__(self, timeout_s: float = WSDL_CACHE_TIMEOUT_S) -> None:
        self._timeout_s = timeout_s
        self._documents: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def add(self, url: str, content: bytes) -> None:
        with self._lock:
            self._documents[url] = (time.monotonic(), bytes(content))

    def get(self, url: str) -> bytes | None:
        with self._lock:
            entry = self._documents.get(url)
            if entry is None or time.monotonic() - entry[0] > self._timeout_s:
                return None
            return entry[1]


def wsdl_cache(path: Path | None) -> zeep.cache.Base:
    """The cache of WSDL and XSD documents: SQLite at path (kept across restarts), else in memory."""
    if path is None:
        return MemoryCache()
    path.parent.mkdir(parents=True, exist_ok=True)
    return zeep.cache.SqliteCache(path=str(path), timeout=WSDL_CACHE_TIMEOUT_S)  # type: ignore[no-untyped-call]


class BoundedTransport(zeep.Transport):
    """A zeep transport whose answers are read within a size and a time limit.

    timeout_s bounds connecting and each read; answer_deadline_s (default 3 x timeout_s) the whole answer.
    Raises MalformedInputError for an answer over max_response_bytes and SourceUnavailableError for one
    that took too long.
    """

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        answer_deadline_s: float | None = None,
        cache: zeep.cache.Base | None = None,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(  # type: ignore[no-untyped-call]
            cache=cache, timeout=timeout_s, operation_timeout=timeout_s, session=session
        )
        self.max_response_bytes = max_response_bytes
        self.answer_deadline_s = answer_deadline_s if answer_deadline_s is not None else 3 * timeout_s

    def post(self, address: str, message: Any, headers: Mapping[str, str]) -> BoundedResponse:
        response = self.session.post(
            address, data=message, headers=headers, timeout=self.operation_timeout, stream=True
        )
        return self._read(response, address)

    def load(self, url: str) -> bytes:
        if urlparse(url).scheme not in ("http", "https"):
            content: bytes = super().load(url)  # type: ignore[no-untyped-call]
            return content
        if self.cache:
            cached = self.cache.get(url)
            if cached:
                return bytes(cached)
        response = self._read(self.session.get(url, timeout=self.load_timeout, stream=True), url)
        if response.status_code >= 400:
            raise requests.HTTPError(f"{response.status_code} loading {url}", response=_status_only(response))
        if self.cache and _is_service_description(response.content):
            self.cache.add(url, response.content)
        return response.content

    def _read(self, response: requests.Response, address: str) -> BoundedResponse:
        started = time.monotonic()
        limit = self.max_response_bytes
        with closing(response):
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise MalformedInputError(f"answer from {address} is {declared} bytes, over {limit}")
            body = bytearray()
            for chunk in response.iter_content(_CHUNK_BYTES):
                body += chunk
                if len(body) > limit:
                    raise MalformedInputError(f"answer from {address} exceeds {limit} bytes")
                if time.monotonic() - started > self.answer_deadline_s:
                    raise SourceUnavailableError(
                        f"answer from {address} took longer than {self.answer_deadline_s:g} s"
                    )
        return BoundedResponse(response.status_code, response.headers, bytes(body), response.encoding)


def _is_service_description(content: bytes) -> bool:
    """Whether content is a WSDL or XML Schema document, the only answers worth keeping in the cache.

    A maintenance page answered with HTTP 200 must not stand in for the WSDL for a day.
    """
    try:
        root = parse_xml(content, max_bytes=len(content) + 1, max_depth=64)
    except MalformedInputError:
        return False
    return etree.QName(root).namespace in (_WSDL_NS, _XSD_NS)


def _status_only(response: BoundedResponse) -> requests.Response:
    """A requests.Response carrying just the status, for requests.HTTPError."""
    carrier = requests.Response()
    carrier.status_code = response.status_code
    return carrier
