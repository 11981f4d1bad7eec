"""SOAP 1.1 envelopes and faults, and a hardened XML parser for untrusted documents."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from lxml import etree

from ground.errors import MalformedInputError

_WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
_WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
_XSD_NS = "http://www.w3.org/2001/XMLSchema"

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_CONTENT_TYPE = "text/xml; charset=utf-8"
DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_MAX_DEPTH = 32

_ENVELOPE = f"{{{SOAP_ENV_NS}}}Envelope"
_BODY = f"{{{SOAP_ENV_NS}}}Body"
_FAULT = f"{{{SOAP_ENV_NS}}}Fault"


class FaultCode(StrEnum):
    """SOAP 1.1 fault codes: Client means the request was wrong, Server means the service failed."""

    CLIENT = "Client"
    SERVER = "Server"


def _parser() -> etree.XMLParser:
    # A fresh parser per call: lxml parsers keep state and must not be shared between threads.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, dtd_validation=False
    )


def parse_xml(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH
) -> etree._Element:
    """Parse an untrusted XML document; DTDs, entity declarations, oversized and over-deep input are refused.

    Raises MalformedInputError naming the problem.
    """
    if len(data) > max_bytes:
        raise MalformedInputError(f"XML body exceeds {max_bytes} bytes ({len(data)} bytes)")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        # libxml2 stops on its own depth limit (256) before we could count; report it as a depth problem.
        if exc.code == etree.ErrorTypes.ERR_RESOURCE_LIMIT and "depth" in str(exc.msg):
            raise MalformedInputError(f"XML nesting deeper than {max_depth}") from exc
        raise MalformedInputError(f"malformed XML at line {exc.lineno}: {exc.msg}") from exc
    if root is None:
        raise MalformedInputError("malformed XML at line 1: no root element")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise MalformedInputError("XML document declares a DTD/entities")
    if _depth(root) > max_depth:
        raise MalformedInputError(f"XML nesting deeper than {max_depth}")
    return root


def _depth(root: etree._Element) -> int:
    deepest = 0
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in element if isinstance(child.tag, str))
    return deepest


def body_element(envelope: etree._Element) -> etree._Element:
    """The first element inside the Body of a SOAP 1.1 envelope (the operation or the Fault)."""
    if envelope.tag != _ENVELOPE:
        raise MalformedInputError(f"not a SOAP 1.1 envelope: root element is {envelope.tag}")
    body = envelope.find(_BODY)
    if body is None:
        raise MalformedInputError("SOAP envelope has no Body")
    for child in body:
        if isinstance(child.tag, str):
            return child
    raise MalformedInputError("SOAP Body is empty")


def parse_envelope(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH
) -> etree._Element:
    """Parse an untrusted SOAP 1.1 message and return the first element of its Body."""
    return body_element(parse_xml(data, max_bytes=max_bytes, max_depth=max_depth))


def build_envelope(payload: etree._Element) -> bytes:
    """Serialize a SOAP 1.1 envelope whose Body holds payload (UTF-8, with XML declaration)."""
    envelope = etree.Element(_ENVELOPE, nsmap={"soap": SOAP_ENV_NS})
    body = etree.SubElement(envelope, _BODY)
    body.append(payload)
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"))


def build_fault(code: FaultCode, message: str, detail: etree._Element | None = None) -> bytes:
    """Serialize a SOAP 1.1 envelope carrying a Fault (faultcode soap:Client or soap:Server)."""
    fault = etree.Element(_FAULT, nsmap={"soap": SOAP_ENV_NS})
    # SOAP 1.1 keeps faultcode, faultstring and detail unqualified.
    etree.SubElement(fault, "faultcode").text = f"soap:{code.value}"
    etree.SubElement(fault, "faultstring").text = message
    if detail is not None:
        etree.SubElement(fault, "detail").append(detail)
    return build_envelope(fault)


def fault_code(faultcode: str | None) -> FaultCode | None:
    """Read a faultcode such as 'soap:Client', 'Client' or 'soap:Server.Timeout'; None when not SOAP 1.1."""
    if not faultcode:
        return None
    local = faultcode.rsplit("}", 1)[-1].rsplit(":", 1)[-1].split(".", 1)[0]
    try:
        return FaultCode(local)
    except ValueError:
        return None


class WsdlContract:
    """A hand-written WSDL: served with the address it was fetched from, and the XSD requests must satisfy."""

    def __init__(self, wsdl_path: Path, prepare: Callable[[etree._Element], None] | None = None) -> None:
        """prepare may edit the WSDL's schema element before it is compiled and served."""
        self._wsdl = parse_xml(wsdl_path.read_bytes(), max_bytes=256 * 1024, max_depth=16)
        schema = self._wsdl.find(f"{{{_WSDL_NS}}}types/{{{_XSD_NS}}}schema")
        if prepare is not None:
            prepare(schema)
        self._schema = etree.XMLSchema(copy.deepcopy(schema))
        # An XMLSchema keeps its error log on the instance, so validations must not interleave.
        self._lock = threading.Lock()

    def wsdl(self, location: str) -> bytes:
        """The WSDL with every soap:address pointing at location."""
        document = copy.deepcopy(self._wsdl)
        for address in document.iter(f"{{{_WSDL_SOAP_NS}}}address"):
            address.set("location", location)
        return bytes(etree.tostring(document, xml_declaration=True, encoding="utf-8"))

    def validate(self, element: etree._Element) -> None:
        """Raise MalformedInputError listing every schema violation of a message element."""
        with self._lock:
            if self._schema.validate(element):
                return
            problems = [f"{error.path}: {error.message}" for error in self._schema.error_log]
        name = etree.QName(element).localname
        raise MalformedInputError(f"{name} does not satisfy the schema: " + "; ".join(problems))
