"""Client of the marketing system's SOAP service: zeep underneath, legacy dicts and yekuo errors on top.

Records come back as plain dicts with the legacy SG186 field names: str for codes and text, float for
decimals, None for absent fields and lists of dicts for repeating groups (DOCUMENTS, CONTACTS).
Errors: a soap:Client fault or an HTTP 4xx is a SourceRejectedError; a soap:Server fault, HTTP 5xx, a
refused or reset connection or a timeout is a SourceUnavailableError; a response that is not well-formed
XML, is no SOAP envelope, or holds unexpected elements or values that do not convert is a MalformedInputError;
an unusable WSDL URL or document is a ConfigError.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import requests
import zeep
import zeep.exceptions
import zeep.helpers
from lxml import etree

from yekuo.errors import (
    ConfigError,
    MalformedInputError,
    SourceRejectedError,
    SourceUnavailableError,
    YekuoError,
)
from yekuo.soap import SOAP_ENV_NS, FaultCode, fault_code, parse_envelope

# The service refuses more customers per GetCustomers call (maxOccurs in its WSDL).
MAX_CUSTOMERS_PER_CALL = 100
LEGACY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_LEGACY_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_GROUPS = {"DOCUMENTS": "DOCUMENT", "CONTACTS": "CONTACT"}
_MESSAGE_LIMIT = 300
_MALFORMED_RESPONSE = (
    zeep.exceptions.XMLSyntaxError,
    zeep.exceptions.XMLParseError,
    zeep.exceptions.UnexpectedElementError,
    zeep.exceptions.DTDForbidden,
    zeep.exceptions.EntitiesForbidden,
    zeep.exceptions.ExternalReferenceForbidden,
    etree.LxmlError,
)
_BAD_URL = (
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidURL,
)


def _is_legacy_time(text: str) -> bool:
    if not _LEGACY_TIME.fullmatch(text):
        return False
    try:
        datetime.strptime(text, LEGACY_TIME_FORMAT)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Watermark:
    """How far the marketing system has been read: the last (UPDATE_TIME, APP_NO) seen, in that order.

    Several applications can share one UPDATE_TIME, so the key breaks ties; the next read starts strictly
    after this pair. changed_at is legacy local time "YYYY-MM-DD HH:MM:SS".
    """

    changed_at: str
    key: str

    def __post_init__(self) -> None:
        if not isinstance(self.changed_at, str) or not _is_legacy_time(self.changed_at):
            raise MalformedInputError(
                f"watermark changed_at must be 'YYYY-MM-DD HH:MM:SS', got {self.changed_at!r}"
            )
        if not isinstance(self.key, str) or not self.key:
            raise MalformedInputError(f"watermark key must be a non-empty string, got {self.key!r}")

    def to_dict(self) -> dict[str, str]:
        """The JSON form the hub stores."""
        return {"changed_at": self.changed_at, "key": self.key}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Watermark:
        """Read the stored JSON form back; MalformedInputError names a missing or bad field."""
        missing = [name for name in ("changed_at", "key") if name not in data]
        if missing:
            raise MalformedInputError(f"watermark lacks {', '.join(missing)}: {dict(data)!r}")
        return cls(changed_at=data["changed_at"], key=data["key"])


@dataclass(frozen=True)
class ApplicationPage:
    """One page of changed applications, in (UPDATE_TIME, APP_NO) order."""

    applications: list[dict[str, Any]]
    has_more: bool


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _record(value: Any) -> dict[str, Any]:
    """A zeep record as a plain dict; each repeating group's wrapper becomes the list of its items."""
    record: dict[str, Any] = _plain(zeep.helpers.serialize_object(value, dict))  # type: ignore[no-untyped-call]
    for group, item in _GROUPS.items():
        if group in record:
            wrapper = record[group]
            record[group] = list(wrapper.get(item) or []) if isinstance(wrapper, dict) else []
    return record


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 3] + "..."


def _http_error(what: str, status: int, text: str) -> YekuoError:
    message = f"{what}: HTTP {status}: {_short(text)}"
    if status >= 500 or status in (408, 429):
        return SourceUnavailableError(message)
    if status >= 400:
        return SourceRejectedError(message)
    return MalformedInputError(f"{what}: response is not well-formed XML: {_short(text)}")


def _translate(exc: Exception, what: str) -> YekuoError:
    """The yekuo error for a zeep, requests or lxml exception raised while doing `what`."""
    if isinstance(exc, zeep.exceptions.Fault):
        message = f"{what}: SOAP fault {exc.code}: {exc.message}"
        if fault_code(exc.code) is FaultCode.CLIENT:
            return SourceRejectedError(message)
        return SourceUnavailableError(message)
    if isinstance(exc, zeep.exceptions.TransportError):
        # zeep reports a body that is not XML as a TransportError carrying the HTTP status.
        return _http_error(what, exc.status_code, exc.message)
    if isinstance(exc, _MALFORMED_RESPONSE):
        return MalformedInputError(f"{what}: malformed response: {_short(str(exc))}")
    if isinstance(exc, ValueError | ArithmeticError):
        # zeep converts element text with int(), Decimal() and the like while it reads the response.
        return MalformedInputError(f"{what}: response value of the wrong type: {type(exc).__name__}: {exc}")
    if isinstance(exc, zeep.exceptions.ValidationError):
        return SourceRejectedError(f"{what}: request does not fit the WSDL: {_short(str(exc))}")
    if isinstance(exc, zeep.exceptions.Error):
        return ConfigError(f"{what}: the WSDL cannot be used: {_short(str(exc))}")
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return _http_error(what, exc.response.status_code, str(exc))
    if isinstance(exc, _BAD_URL):
        return ConfigError(f"{what}: bad URL: {_short(str(exc))}")
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
        return ConfigError(f"{what}: {_short(str(exc))}")
    # Whatever else the network stack raised (reset, refused, timed out) is worth another try.
    return SourceUnavailableError(f"{what}: {type(exc).__name__}: {_short(str(exc))}")


def _is_soap_fault(content: bytes) -> bool:
    try:
        return bool(parse_envelope(content).tag == f"{{{SOAP_ENV_NS}}}Fault")
    except MalformedInputError:
        return False


class _HttpStatusCheck:
    """Wraps a zeep transport: an HTTP error answered with anything but a SOAP Fault is judged by its status.

    zeep itself would read an error page by its body: an HTML page that parses as XML becomes an "unknown
    fault" and one with a DOCTYPE a forbidden DTD, and the status would be lost.
    """

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def post_xml(self, address: str, envelope: Any, headers: Mapping[str, str]) -> Any:
        response = self._transport.post_xml(address, envelope, headers)
        status = int(response.status_code)
        if status >= 400 and not _is_soap_fault(response.content):
            raise _http_error(f"marketing call to {address}", status, response.text)
        return response


def _service_proxy(wsdl_url: str, transport: _HttpStatusCheck, endpoint_url: str | None) -> Any:
    settings = zeep.Settings(
        strict=True, xml_huge_tree=False, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    client = zeep.Client(wsdl_url, transport=transport, settings=settings)  # type: ignore[no-untyped-call]
    if endpoint_url is None:
        return client.service
    ports = [port for service in client.wsdl.services.values() for port in service.ports.values()]
    if not ports:
        raise ConfigError(f"marketing WSDL {wsdl_url} defines no service port")
    return client.create_service(ports[0].binding.name, endpoint_url)  # type: ignore[no-untyped-call]


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except (zeep.exceptions.Error, etree.LxmlError, OSError, ValueError, ArithmeticError) as exc:
        raise _translate(exc, what) from exc


class MarketingClient:
    """Calls the marketing system's SOAP operations.

    wsdl_url: where the WSDL is (http(s) URL or file path); it is loaded on the first call, so the hub can
    start while the marketing system is down.
    transport: the zeep transport; by default a real one with timeout_s for loading and for every call.
    endpoint_url: send calls here instead of the WSDL's soap:address (useful behind NAT or a proxy).
    """

    def __init__(
        self,
        wsdl_url: str,
        *,
        transport: zeep.Transport | None = None,
        timeout_s: float = 10.0,
        endpoint_url: str | None = None,
    ) -> None:
        if not wsdl_url:
            raise ConfigError("marketing WSDL URL is empty")
        self.wsdl_url = wsdl_url
        self.endpoint_url = endpoint_url
        self._transport = transport
        self._timeout_s = timeout_s
        self._service: Any = None
        self._owned_transport: zeep.Transport | None = None
        self._lock = threading.Lock()

    def _proxy(self) -> Any:
        with self._lock:
            if self._service is None:
                with _translated(f"loading the marketing WSDL {self.wsdl_url}"):
                    transport = self._transport
                    if transport is None:
                        transport = self._owned_transport = zeep.Transport(  # type: ignore[no-untyped-call]
                            timeout=self._timeout_s, operation_timeout=self._timeout_s
                        )
                    checked = _HttpStatusCheck(transport)
                    self._service = _service_proxy(self.wsdl_url, checked, self.endpoint_url)
            return self._service

    def close(self) -> None:
        """Close the connections of a transport this client made itself; a passed-in one is the caller's."""
        with self._lock:
            if self._owned_transport is not None:
                self._owned_transport.session.close()
            self._owned_transport = None
            self._service = None

    def _call(self, operation: str, **arguments: Any) -> Any:
        proxy = self._proxy()
        with _translated(f"marketing {operation}"):
            return getattr(proxy, operation)(**arguments)

    def list_changed_applications(self, since: Watermark | None, page_size: int) -> ApplicationPage:
        """Applications changed strictly after since (all of them when None), at most page_size."""
        arguments: dict[str, Any] = {"pageSize": page_size}
        if since is not None:
            arguments.update(sinceTime=since.changed_at, sinceKey=since.key)
        response = self._call("ListChangedApplications", **arguments)
        return ApplicationPage(
            applications=[_record(item) for item in response.application or []],
            has_more=bool(response.hasMore),
        )

    def get_customer(self, cons_no: str) -> dict[str, Any]:
        """One customer; SourceRejectedError when the marketing system does not know it."""
        return _record(self._call("GetCustomer", consNo=cons_no))

    def get_customers(self, cons_nos: Sequence[str]) -> list[dict[str, Any]]:
        """The known customers among cons_nos, each once, in the order asked; unknown ones are left out.

        Asks for MAX_CUSTOMERS_PER_CALL customers per call.
        """
        unique = list(dict.fromkeys(cons_nos))
        customers: list[dict[str, Any]] = []
        for start in range(0, len(unique), MAX_CUSTOMERS_PER_CALL):
            batch = unique[start : start + MAX_CUSTOMERS_PER_CALL]
            customers.extend(_record(item) for item in self._call("GetCustomers", consNo=batch) or [])
        return customers
